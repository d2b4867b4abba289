"""The demo ends on the clinician's page: `bash deploy/demo.sh` prints one URL; opened in headless Chromium
it launches the review app for the summarized patient as the demo practitioner, drafts and chips shown.

REVIEW_SCREENSHOT=docs/review.png keeps the page as docs/review-app.md shows it (taken from the demo's own
stack).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.test_review_app import chromium, wait
from tests.conftest import REDIS_URL, REPO, free_port
from tests.support.redis_db import MAIN_SESSION_DBS, claim_redis_db

pytestmark = pytest.mark.browser
SCREENSHOT = os.environ.get("REVIEW_SCREENSHOT")
URL = re.compile(r"http://127\.0\.0\.1:\d+/ehr/launch\?patient=[A-Za-z0-9\-.]+")


@pytest.fixture(scope="module")
def demo(llm_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh `bash deploy/demo.sh` on free ports, sharing the session's CPU vLLM; stopped at the end."""
    # A Redis db of the demo's own: the session's worker would take the demo's job and not find it.
    broker = claim_redis_db(REDIS_URL, MAIN_SESSION_DBS)
    redis.Redis.from_url(broker).flushdb()
    state = tmp_path_factory.mktemp("demo") / "state"
    ports = {name: str(free_port()) for name in ("fhir", "smart", "api")}
    args = [
        f"--state={state}",
        f"--fhir-port={ports['fhir']}",
        f"--smart-port={ports['smart']}",
        f"--api-port={ports['api']}",
        f"--llm-url={llm_server}",
    ]
    # The demo's own settings only: none of this session's EHRSUM_* but the cache.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRSUM_")}
    env.update(EHRSUM_BROKER_URL=broker, EHRSUM_CACHE=os.environ.get("EHRSUM_CACHE", str(REPO / ".cache")))
    done = subprocess.run(
        ["bash", "deploy/demo.sh", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500
    )
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        found = URL.findall(done.stdout)
        assert len(found) == 1, done.stdout[-2000:]
        yield {"url": found[0], "api": f"http://127.0.0.1:{ports['api']}", "stdout": done.stdout}
    finally:
        stopped = subprocess.run(
            ["bash", "deploy/demo.sh", "stop", f"--state={state}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert stopped.returncode == 0, stopped.stderr
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{ports['api']}/healthz", timeout=2)


def test_the_demos_url_opens_the_clinicians_page_with_the_drafts(
    demo: dict[str, str], tmp_path: Path
) -> None:
    browser = chromium(tmp_path)
    try:
        browser.get(demo["url"])
        chips = "article.draft button.chip"
        wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, chips))
        assert "Practitioner/demo-clinician" in browser.find_element(By.CSS_SELECTOR, "header .who").text
        assert "Not a medical device" in browser.find_element(By.CSS_SELECTOR, "header .banner").text
        patient = demo["url"].rsplit("=", 1)[1]
        assert browser.current_url.startswith(f"{demo['api']}/review/")
        drafts = browser.find_elements(By.CSS_SELECTOR, "article.draft")
        # The two drafts the demo printed, both awaiting review, each with its statements' authors.
        titles = " ".join(d.text for d in drafts)
        assert len(drafts) == 2 and "Progress" in titles and "Triage" in titles, titles[:500]
        for draft in drafts:
            assert draft.find_elements(By.CSS_SELECTOR, "li.statement .author")
            assert draft.find_element(By.CSS_SELECTOR, "button.approve").is_enabled()
        assert f"Patient/{patient}" in demo["stdout"] or patient in browser.page_source
        # A citation chip opens the cited resource's facts, read live with the clinician's token.
        chip = browser.find_elements(By.CSS_SELECTOR, chips)[0]
        chip.send_keys(Keys.ENTER)
        panel = browser.find_element(By.ID, chip.get_attribute("aria-controls") or "")
        wait(browser).until(
            lambda _: "Loading" not in panel.text and chip.get_attribute("aria-expanded") == "true"
        )
        assert panel.text.strip()
        if SCREENSHOT:
            shot = Path(SCREENSHOT)
            browser.set_window_size(1366, 1700)
            browser.execute_script("window.scrollTo(0, 0)")
            browser.save_screenshot(str(shot.with_suffix(".tmp.png")))
            shutil.move(shot.with_suffix(".tmp.png"), shot)
    finally:
        browser.quit()
