"""The review app in headless Chromium: SMART launch from the EHR, the drafts with their evidence, decisions.

The EHR side is deploy/smart_dev_server.py (an authorization server in front of sekmet-fhir, which checks
every token); the app is the real `ehrsum api`; the FHIR server is read back afterwards with the EHR's own
setup token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from deploy.processes import stop
from deploy.smart_dev_server import Launch, SmartEhr
from services.audit.service import list_records
from services.core.db import session_scope
from services.jobs.models import Draft
from services.review.sessions import COOKIE
from tests.conftest import free_port, start_api_on
from tests.support.review_records import ReviewRecord, seed

pytestmark = pytest.mark.browser
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CLIENT_ID = "ehrsum-review"
CLINICIAN = "Practitioner/dr-review"
WAIT_S = 20


@dataclass
class Review:
    """Everything a test needs: the EHR, the app, the record, the browser."""

    ehr: SmartEhr
    app: str
    record: ReviewRecord
    browser: webdriver.Chrome

    def fhir(self, path: str, **params: str) -> dict[str, Any]:
        """Read the FHIR server as the EHR does (setup token), not as the app."""
        headers = {"Authorization": f"Bearer {self.ehr.setup_token}", "Accept": "application/fhir+json"}
        response = httpx.get(f"{self.ehr.fhir_base}/{path}", params=params, headers=headers, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def app_calls(self, since: int) -> set[str]:
        """Who made the FHIR calls after call number `since`."""
        return {caller for _, _, caller in self.ehr.calls[since:]}


def wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    """A wait that retries while the page is being replaced (a form's answer loading)."""
    # Chromium may also answer "Node with given id does not belong to the document" (a plain
    # WebDriverException) for an element read while the next page replaces it; the wait still times out.
    return WebDriverWait(browser, WAIT_S, ignored_exceptions=(WebDriverException,))


def chromium() -> webdriver.Chrome:
    """Debian's Chromium through its own chromedriver; selenium-manager is never asked to download."""
    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1366,900",
        # Air-gapped like a hospital network: nothing of the browser's own phones home.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


@pytest.fixture(scope="module")
def review(postgres_db: str, redis_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    """The EHR with sekmet behind it, the record and drafts, the app, a browser; nothing signed in yet."""
    app_port = free_port()
    app = f"http://127.0.0.1:{app_port}"
    ehr = SmartEhr(
        workdir=tmp_path_factory.mktemp("smart-ehr"),
        client_id=CLIENT_ID,
        redirect_uri=f"{app}/review/callback",
        signed_in=Launch(patient="", user=CLINICIAN),
    ).start(free_port())
    record = seed(ehr.fhir_base, ehr.setup_token, ["approve", "reject", "edit", "conflict"])
    ehr.signed_in.patient = record.patient
    proc, _ = start_api_on(
        tmp_path_factory.mktemp("review-api") / "api.log",
        app_port,
        EHRSUM_FHIR_BASE_URL=ehr.fhir_base,
        EHRSUM_REVIEW_CLIENT_ID=CLIENT_ID,
        EHRSUM_REVIEW_URL=app,
    )
    browser = chromium()
    try:
        yield Review(ehr, app, record, browser)
    finally:
        browser.quit()
        stop(proc)
        ehr.stop()


def ehr_launch(review: Review) -> None:
    """The EHR opens the app in the patient's chart: `iss` and `launch`; returns once its script has run."""
    launch = review.ehr.launch(review.record.patient)
    review.browser.get(f"{review.app}/review/launch?iss={review.ehr.fhir_base}&launch={launch}")
    chips = "article.draft a.chip[role=button]"
    wait(review.browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, chips))


def card(review: Review, role: str) -> Any:
    """The article of one draft."""
    return review.browser.find_element(By.ID, f"draft-{review.record.drafts[role].split('/')[1]}")


def test_ehr_launch_shows_the_drafts_with_their_evidence(review: Review) -> None:
    before = len(review.ehr.calls)
    ehr_launch(review)
    browser = review.browser
    assert "Not a medical device" in browser.find_element(By.CSS_SELECTOR, "header .banner").text
    assert CLINICIAN in browser.find_element(By.CSS_SELECTOR, "header .who").text
    # The patient as the record names them, read with the clinician's token, to confirm the chart.
    assert (
        "Ada Quill · female · born 1961-04-02"
        in browser.find_element(By.CSS_SELECTOR, "header .patient").text
    )
    first = card(review, "approve")
    # Of the pending drafts, the one with a critical flag comes first (the others are newer).
    assert browser.find_elements(By.CSS_SELECTOR, "article.draft")[0] == first
    # The draft with a critical flag shows its flags before its statements.
    html = first.get_attribute("innerHTML")
    assert html.index('class="flags"') < html.index('class="statements"')
    assert "CRITICAL" in first.find_element(By.CSS_SELECTOR, ".flag.critical").text
    statements = first.find_elements(By.CSS_SELECTOR, "li.statement")
    assert len(statements) == 5
    authors = [s.find_element(By.CSS_SELECTOR, ".author").text for s in statements]
    assert (
        authors.count("Composed from the record") == 3 and authors.count("Written by the language model") == 2
    )
    checks = [s.find_element(By.CSS_SELECTOR, ".check").text for s in statements]
    assert checks[:4] == ["Verified now against its sources"] * 4
    # "Potassium 5.1 mmol/L" is not what the cited result says (6.2): the live check says so.
    assert checks[4].startswith("Check failed") and "5.1" in checks[4]

    # A citation chip, operated from the keyboard, opens the cited result read live.
    chip = statements[0].find_element(By.CSS_SELECTOR, "a.chip")
    assert chip.text == "Hemoglobin A1c" and chip.get_attribute("role") == "button"
    chip.send_keys(Keys.ENTER)
    panel = browser.find_element(By.ID, chip.get_attribute("aria-controls"))
    wait(browser).until(lambda _: "Reference range" in panel.text)
    assert chip.get_attribute("aria-expanded") == "true"
    for fact in ("8.1", "%", "4.0 to 5.6 %", "2026-11-20T08:30:00Z", "final"):
        assert fact in panel.text
    other = statements[1].find_element(By.CSS_SELECTOR, "a.chip")
    other.send_keys(Keys.SPACE)  # a button answers Space as well as Enter
    wait(browser).until(lambda _: other.get_attribute("aria-expanded") == "true")
    other.send_keys(Keys.SPACE)
    wait(browser).until(lambda _: other.get_attribute("aria-expanded") == "false")
    assert not browser.find_element(By.ID, other.get_attribute("aria-controls") or "").is_displayed()
    a1c = review.record.refs["a1c"]
    assert any(m == "GET" and p.startswith(f"/fhir/{a1c}") for m, p, _ in review.ehr.calls[before:])
    # Every FHIR call since the launch carried the clinician's token, none the service's or the EHR's.
    assert review.app_calls(before) == {f"{CLIENT_ID}:{CLINICIAN}"}

    # Labels for every control, names for every button, nothing loaded from outside the service.
    for control in browser.find_elements(By.CSS_SELECTOR, "textarea, input:not([type=hidden])"):
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
    assert all(b.text.strip() for b in browser.find_elements(By.TAG_NAME, "button"))
    for element in browser.find_elements(By.CSS_SELECTOR, "[src], link[href]"):
        url = element.get_attribute("src") or element.get_attribute("href") or ""
        assert url.startswith(f"{review.app}/review/static/"), url
    # A workstation-on-wheels screen (1024 px wide): nothing scrolls sideways.
    browser.set_window_size(1024, 768)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.set_window_size(1366, 900)
    console = browser.get_log("browser")  # type: ignore[no-untyped-call]
    assert not [e for e in console if "Content Security Policy" in e["message"]]


def test_pages_carry_a_content_security_policy(review: Review) -> None:
    cookie = review.browser.get_cookie(COOKIE)
    assert cookie is not None and cookie["httpOnly"]
    page = httpx.get(f"{review.app}/review/", cookies={COOKIE: cookie["value"]}, timeout=30)
    policy = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in policy
        and "script-src 'self'" in policy
        and "frame-ancestors 'self'" in policy
    )
    assert page.headers["cache-control"] == "no-store"
    assert (
        "<script>" not in page.text
        and " style=" not in page.text
        and "http" not in page.text.split("<body>")[0]
    )
    # Only the configured FHIR server may launch the app; nothing is fetched from another.
    elsewhere = httpx.get(
        f"{review.app}/review/launch", params={"iss": "http://127.0.0.1:9/fhir"}, timeout=10
    )
    assert elsewhere.status_code == 400 and "not configured" in elsewhere.text
    # Without a session there is nothing to show; the page says to launch the app from the chart.
    anonymous = httpx.get(f"{review.app}/review/", timeout=10)
    assert anonymous.status_code == 401 and "launch the app" in anonymous.text
    # A callback whose state is not this browser's request is refused before any code is traded.
    forged = httpx.get(f"{review.app}/review/callback", params={"state": "x", "code": "y"}, timeout=10)
    assert forged.status_code == 401
    started = httpx.get(f"{review.app}/review/launch", timeout=10)
    assert started.status_code == 302 and "code_challenge_method=S256" in started.headers["location"]
    for state in ("x", "é"):
        forged = httpx.get(
            f"{review.app}/review/callback",
            params={"state": state, "code": "y"},
            cookies={COOKIE: started.cookies[COOKIE]},
            timeout=10,
        )
        assert forged.status_code == 401 and "does not match" in forged.text


def test_approve_and_reject_with_a_reason(review: Review) -> None:
    browser = review.browser
    browser.get(f"{review.app}/review/")
    card(review, "approve").find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(lambda b: "Draft approved." in b.find_element(By.ID, "main").text)
    ref = review.record.drafts["approve"]
    doc = review.fhir(ref)
    assert doc["docStatus"] == "final" and doc["authenticator"] == {"reference": CLINICIAN}
    provenance = review.fhir("Provenance", target=ref)["entry"][0]["resource"]
    assert {"reference": CLINICIAN} in [a["who"] for a in provenance["agent"]]
    assert "Approved by Practitioner/dr-review" in card(review, "approve").text
    with session_scope() as session:
        audited = list_records(session=session, actor=CLINICIAN, action="fhir write PUT")
    assert f"DocumentReference/{ref.split('/')[1]}" in {r for a in audited for r in a.resource_ids}

    rejected = card(review, "reject")
    rejected.find_element(By.TAG_NAME, "textarea").send_keys("Summarizes an outdated potassium result.")
    rejected.find_element(By.CSS_SELECTOR, "button.reject").click()
    wait(browser).until(lambda b: "Draft rejected." in b.find_element(By.ID, "main").text)
    doc = review.fhir(review.record.drafts["reject"])
    assert doc["status"] == "entered-in-error"
    assert doc["extension"][0]["valueString"] == "Summarizes an outdated potassium result."
    with session_scope() as session:
        assert session.get(Draft, ref).state.value == "approved"  # type: ignore[union-attr]
        assert session.get(Draft, review.record.drafts["reject"]).state.value == "rejected"  # type: ignore[union-attr]


def test_edit_and_approve_writes_a_replacement(review: Review) -> None:
    browser = review.browser
    browser.get(f"{review.app}/review/")
    card(review, "edit").find_element(By.LINK_TEXT, "Edit, then approve").click()
    box = wait(browser).until(lambda b: b.find_element(By.ID, "sections[1].statements[1]"))
    box.clear()
    box.send_keys("Potassium 6.2 mmol/L is high; repeat today.")
    browser.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(lambda b: "Edited note approved." in b.find_element(By.ID, "main").text)
    ref = review.record.drafts["edit"]
    original = review.fhir(ref)
    assert original["docStatus"] == "preliminary" and original["status"] == "current"  # kept as written
    docs = review.fhir("DocumentReference", subject=f"Patient/{review.record.patient}")["entry"]
    replacements = [e["resource"] for e in docs if e["resource"].get("relatesTo")]
    assert len(replacements) == 1
    new = replacements[0]
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": ref}}]
    assert new["docStatus"] == "final" and new["authenticator"] == {"reference": CLINICIAN}
    with session_scope() as session:
        row = session.get(Draft, ref)
    assert (
        row is not None
        and row.state.value == "replaced"
        and row.replaced_by == f"DocumentReference/{new['id']}"
    )
    assert row.change_ratio is not None and 0 < row.change_ratio < 0.2
    assert "Edited and approved as a new document" in card(review, "edit").text


def test_a_draft_changed_since_it_was_opened_is_not_overwritten(review: Review) -> None:
    browser = review.browser
    browser.get(f"{review.app}/review/")
    ref = review.record.drafts["conflict"]
    doc = review.fhir(ref)
    headers = {"Authorization": f"Bearer {review.ehr.setup_token}", "If-Match": 'W/"1"'}
    moved = httpx.put(
        f"{review.ehr.fhir_base}/{ref}", json={**doc, "description": "Retitled in the EHR"}, headers=headers
    )
    assert moved.status_code == 200
    card(review, "conflict").find_element(By.CSS_SELECTOR, "button.approve").click()
    alert = wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
    assert "changed on the server" in alert.text and "Nothing was overwritten" in alert.text
    after = review.fhir(ref)
    assert after["docStatus"] == "preliminary" and after["meta"]["versionId"] == "2"
    assert "authenticator" not in after

    # An edit saved after the draft moved on is refused the same way: no replacement is written.
    card(review, "conflict").find_element(By.LINK_TEXT, "Edit, then approve").click()
    box = wait(browser).until(lambda b: b.find_element(By.ID, "sections[0].statements[0]"))
    box.send_keys(" Repeat today.")
    headers["If-Match"] = 'W/"2"'
    assert httpx.put(f"{review.ehr.fhir_base}/{ref}", json=after, headers=headers).status_code == 200
    browser.find_element(By.CSS_SELECTOR, "button.approve").click()
    alert = wait(browser).until(lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]"))
    assert "changed on the server" in alert.text
    replacing = review.fhir("DocumentReference", subject=f"Patient/{review.record.patient}")["entry"]
    assert not [
        e
        for e in replacing
        if {"code": "replaces", "target": {"reference": ref}} in e["resource"].get("relatesTo", [])
    ]


def test_standalone_launch_opens_the_signed_in_users_patient(review: Review) -> None:
    review.browser.get(f"{review.app}/review/launch")
    wait(review.browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "article.draft"))
    banner = review.browser.find_element(By.CSS_SELECTOR, "header .patient").text
    assert f"Patient/{review.record.patient}" in banner


def test_launches_are_limited_per_address(review: Review, tmp_path: Path) -> None:
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    proc, _ = start_api_on(
        tmp_path / "api.log",
        port,
        EHRSUM_FHIR_BASE_URL=review.ehr.fhir_base,
        EHRSUM_REVIEW_CLIENT_ID=CLIENT_ID,
        EHRSUM_REVIEW_URL=app,
        EHRSUM_REVIEW_LAUNCHES_PER_MINUTE="2",
    )
    answers: list[httpx.Response] = []
    try:
        # Counted per address and minute in Redis: the third of a minute is over 2 (five span a new minute).
        while len(answers) < 5 and (not answers or answers[-1].status_code != 429):
            answers.append(httpx.get(f"{app}/review/launch", timeout=10))
    finally:
        stop(proc)
    assert answers[-1].status_code == 429 and answers[-1].headers["retry-after"] == "60"
    assert "Too many launches" in answers[-1].text
    assert all(a.status_code == 302 for a in answers[:-1])
    # The same address under the usual limit is still let through.
    assert httpx.get(f"{review.app}/review/launch", timeout=10).status_code == 302
