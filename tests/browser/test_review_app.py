"""The review app as an EHR runs it: HTTPS, inside the EHR's iframe from another site, in headless Chromium.

The EHR side is deploy/smart_dev_server.py (an authorization server in front of sekmet-fhir, which checks
every token) and a chart page on https://localhost that frames the app; the app is the real `ehrsum api`
serving HTTPS on https://127.0.0.1 with a certificate of a test CA (trustme) that Chromium trusts through a
throwaway NSS database. Chromium blocks unpartitioned third-party cookies, as browsers increasingly do: the
session lives in the EHR's partition or not at all. The FHIR server is read back with the EHR's own token.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import trustme
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from deploy.processes import stop
from deploy.smart_dev_server import SmartEhr
from services.audit.service import list_records
from services.core.db import session_scope
from services.jobs.models import Draft
from services.review.sessions import COOKIE
from tests.conftest import free_port, start_api_on, start_api_tls
from tests.support.review_records import ReviewRecord, seeded_ehr

pytestmark = pytest.mark.browser
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CLIENT_ID = "ehrsum-review"
CLINICIAN = "Practitioner/dr-review"
WAIT_S = 20
ROLES = ["approve", "reject", "edit", "conflict", "foreign"]


class Chart:
    """The EHR's chart page on another site (https://localhost): it frames the app as an EHR does."""

    def __init__(self, context: ssl.SSLContext, app: str) -> None:
        self.app = app
        chart = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
                if not src.startswith(f"{chart.app}/review/"):
                    self.send_error(404)
                    return
                body = (
                    '<!doctype html><html lang="en"><head><title>Chart</title></head><body>'
                    "<h1>Patient chart</h1>"
                    f'<iframe id="app" title="AI drafts" src="{escape(src)}" '
                    'style="width:100%;height:90vh"></iframe>'
                    "</body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"https://localhost:{self.server.server_address[1]}"

    def url(self, src: str) -> str:
        """The chart page framing `src`."""
        return f"{self.origin}/chart?src={quote(src, safe='')}"


@dataclass
class Review:
    """Everything a test needs: the EHR and its chart page, the app, the record, the browser."""

    ehr: SmartEhr
    chart: Chart
    app: str
    trust: ssl.SSLContext
    record: ReviewRecord
    browser: webdriver.Chrome
    proc: subprocess.Popen[bytes]

    def fhir(self, path: str, **params: str) -> dict[str, Any]:
        """Read the FHIR server as the EHR does (setup token), not as the app."""
        headers = {"Authorization": f"Bearer {self.ehr.setup_token}", "Accept": "application/fhir+json"}
        response = httpx.get(f"{self.ehr.fhir_base}/{path}", params=params, headers=headers, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def app_calls(self, since: int) -> set[str]:
        """Who made the FHIR calls after call number `since`."""
        return {caller for _, _, caller in self.ehr.calls[since:]}

    def http(self, sid: str | None = None) -> httpx.Client:
        """A client of the app that trusts its test CA (with the session `sid` when given)."""
        cookies = {COOKIE: sid} if sid else None
        return httpx.Client(base_url=self.app, verify=self.trust, timeout=30, cookies=cookies)

    def session(self) -> dict[str, Any]:
        """The app's session cookie as Chromium keeps it (partitioned cookies too, with their attributes)."""
        cookies = self.browser.execute_cdp_cmd("Storage.getCookies", {})["cookies"]
        return next(c for c in cookies if c["name"] == COOKIE)

    def csrf(self) -> str:
        """The form token of the signed-in page in the frame."""
        return str(self.browser.find_element(By.NAME, "csrf").get_attribute("value"))

    def open(self, path: str = "/review/") -> None:
        """Open the chart page with the app at `path` in its frame, and work inside the frame."""
        self.browser.switch_to.default_content()
        self.browser.get(self.chart.url(f"{self.app}{path}"))
        frame = wait(self.browser).until(lambda b: b.find_element(By.ID, "app"))
        self.browser.switch_to.frame(frame)
        wait(self.browser).until(lambda b: b.find_elements(By.TAG_NAME, "main"))


def wait(browser: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    """A wait that retries while the page is being replaced (a form's answer loading)."""
    # Chromium may also answer "Node with given id does not belong to the document" (a plain
    # WebDriverException) for an element read while the next page replaces it; the wait still times out.
    return WebDriverWait(browser, WAIT_S, ignored_exceptions=(WebDriverException,))


def trusting_home(home: Path, ca: Path) -> None:
    """A home directory whose NSS database (Chromium's trust store on Linux) trusts the test CA."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{nssdb}", "-A", "-n", "ehrsum-test-ca", "-t", "C,,", "-i", str(ca)],
        check=True,
    )


def chromium(home: Path) -> webdriver.Chrome:
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
    # Third-party cookies blocked (Chrome's setting, the default of Safari and Firefox's strict mode):
    # only a Partitioned cookie keeps the app's session inside the EHR's frame.
    options.add_experimental_option(
        "prefs", {"profile.cookie_controls_mode": 1, "profile.block_third_party_cookies": True}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), env={**os.environ, "HOME": str(home)})
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def review(postgres_db: str, redis_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    """The EHR with sekmet behind it, its chart page, the record and drafts, the app over HTTPS, a browser."""
    tls = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tls / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(tls / "server.pem"))
    cert.private_key_pem.write_to_path(str(tls / "key.pem"))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(serving)

    app_port = free_port()
    app = f"https://127.0.0.1:{app_port}"
    chart = Chart(serving, app)
    ehr, record = seeded_ehr(
        tmp_path_factory.mktemp("smart-ehr"),
        free_port(),
        client_id=CLIENT_ID,
        app=app,
        user=CLINICIAN,
        roles=ROLES,
    )
    proc, _ = start_api_tls(
        tmp_path_factory.mktemp("review-api") / "api.log",
        app_port,
        tls / "server.pem",
        tls / "key.pem",
        trust,
        EHRSUM_FHIR_BASE_URL=ehr.fhir_base,
        EHRSUM_REVIEW_CLIENT_ID=CLIENT_ID,
        EHRSUM_REVIEW_URL=app,
        EHRSUM_REVIEW_FRAME_ANCESTORS=chart.origin,
    )
    home = tmp_path_factory.mktemp("chromium-home")
    trusting_home(home, tls / "ca.pem")
    browser = chromium(home)
    try:
        yield Review(ehr, chart, app, trust, record, browser, proc)
    finally:
        browser.quit()
        stop(proc)
        chart.server.shutdown()
        ehr.stop()


def ehr_launch(review: Review) -> None:
    """The EHR opens the app in its frame on the patient's chart (`iss` and `launch`); returns once the
    page's script has run."""
    launch = review.ehr.launch(review.record.patient)
    review.open(f"/review/launch?iss={quote(review.ehr.fhir_base, safe='')}&launch={launch}")
    wait(review.browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "article.draft form.chip button"))


def card(review: Review, role: str) -> Any:
    """The article of one draft."""
    return review.browser.find_element(By.ID, f"draft-{review.record.drafts[role].split('/')[1]}")


def main_text(browser: webdriver.Chrome) -> str:
    return str(browser.find_element(By.ID, "main").text)


def raw_tls(review: Review, head: bytes, body: bytes = b"", chunks: int = 0) -> tuple[int, float]:
    """Send a request head (and part of a body, or `chunks` chunked pieces of 64 KiB) over TLS; the status
    of the answer and how long it took, without sending the rest."""
    target = urlsplit(review.app)
    started = time.monotonic()
    with review.trust.wrap_socket(
        socket.create_connection((target.hostname, target.port), timeout=15), server_hostname=target.hostname
    ) as sock:
        sock.sendall(head + b"\r\n" + body)
        try:
            for _ in range(chunks):
                sock.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
        except OSError:
            pass  # the app answered and closed: it stopped reading, as it should
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_ehr_launch_in_its_frame_shows_the_drafts_with_their_evidence(review: Review) -> None:
    before = len(review.ehr.calls)
    ehr_launch(review)
    browser = review.browser
    # The session lives in the EHR's partition: HTTPS only, never sent cross-site unpartitioned.
    cookie = review.session()
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "None"
    assert cookie["path"] == "/review" and "localhost" in str(cookie.get("partitionKey"))
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
    # "Potassium 5.1 mmol/L" is not what the cited result says (6.2): the live check says so, and the
    # draft cannot be approved as it is without a reason.
    assert checks[4].startswith("Check failed") and "5.1" in checks[4]
    assert first.find_element(By.CSS_SELECTOR, "button.approve").text == "Approve despite failed checks"
    assert first.find_element(By.NAME, "override_reason").get_attribute("required") is not None

    # A citation chip, a button operated from the keyboard, opens the cited result read live.
    chip = statements[0].find_element(By.CSS_SELECTOR, "button.chip")
    assert chip.text == "Hemoglobin A1c"
    chip.send_keys(Keys.ENTER)
    panel = browser.find_element(By.ID, chip.get_attribute("aria-controls"))
    wait(browser).until(lambda _: "Reference range" in panel.text)
    assert chip.get_attribute("aria-expanded") == "true"
    for fact in ("8.1", "%", "4.0 to 5.6 %", "2026-11-20T08:30:00Z", "final"):
        assert fact in panel.text
    other = statements[1].find_element(By.CSS_SELECTOR, "button.chip")
    other.send_keys(Keys.SPACE)  # a button answers Space as well as Enter
    wait(browser).until(lambda _: other.get_attribute("aria-expanded") == "true")
    other.send_keys(Keys.SPACE)
    wait(browser).until(lambda _: other.get_attribute("aria-expanded") == "false")
    assert not browser.find_element(By.ID, other.get_attribute("aria-controls") or "").is_displayed()
    # Cited results are asked for within the patient's compartment, never read by id alone.
    calls = review.ehr.calls[before:]
    assert any(
        m == "GET"
        and p.startswith("/fhir/Observation?")
        and f"patient=Patient%2F{review.record.patient}" in p
        for m, p, _ in calls
    )
    assert not [p for m, p, _ in calls if m == "GET" and p.startswith("/fhir/Observation/")]
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
    with review.http() as app:
        page = app.get("/review/", headers={"Cookie": f"{COOKIE}={review.session()['value']}"})
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert f"frame-ancestors {review.chart.origin}" in policy
        assert page.headers["cache-control"] == "no-store"
        assert (
            "<script>" not in page.text
            and " style=" not in page.text
            and "http" not in page.text.split("<body>")[0]
        )
        # Only the configured FHIR server may launch the app; nothing is fetched from another.
        elsewhere = app.get("/review/launch", params={"iss": "http://127.0.0.1:9/fhir"})
        assert elsewhere.status_code == 400 and "not configured" in elsewhere.text
        # Without a session there is nothing to show; the page says to launch the app from the chart.
        anonymous = app.get("/review/")
        assert anonymous.status_code == 401 and "launch the app" in anonymous.text
        # A callback whose state is not this browser's request is refused before any code is traded.
        forged = app.get("/review/callback", params={"state": "x", "code": "y"})
        assert forged.status_code == 401
        started = app.get("/review/launch")
        assert started.status_code == 302 and "code_challenge_method=S256" in started.headers["location"]
        attributes = [a.strip() for a in started.headers["set-cookie"].split(";")]
        assert {"HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/review"} <= set(attributes)
        for state in ("x", "é"):
            forged = app.get(
                "/review/callback",
                params={"state": state, "code": "y"},
                headers={"Cookie": f"{COOKIE}={started.cookies[COOKIE]}"},
            )
            assert forged.status_code == 401 and "does not match" in forged.text


def test_a_citation_of_another_patient_is_never_read_or_shown(review: Review) -> None:
    before = len(review.ehr.calls)
    review.open()
    foreign = card(review, "foreign")
    statement = foreign.find_elements(By.CSS_SELECTOR, "li.statement")[0]
    assert (
        statement.find_element(By.CSS_SELECTOR, ".chip.outside").text
        == "Source outside this patient's record"
    )
    assert statement.find_element(By.CSS_SELECTOR, ".check").text.startswith("Check failed")
    assert not statement.find_elements(By.CSS_SELECTOR, "button.chip")
    page = main_text(review.browser)
    assert "Troponin" not in page and "9.9" not in page and "Bram" not in page
    other = review.record.refs["other"]
    # Asked for only within our patient's compartment (the server returned nothing), never read by id.
    assert not [p for _, p, _ in review.ehr.calls[before:] if p.startswith(f"/fhir/{other}")]

    # The evidence of it, asked for with this page's own form token, is refused without a read.
    sid, csrf = review.session()["value"], review.csrf()
    before = len(review.ehr.calls)
    with review.http(sid) as app:
        answer = app.post("/review/evidence", data={"ref": other, "csrf": csrf})
        assert answer.status_code == 403 and "not a resource of the patient in context" in answer.text
        assert "Troponin" not in answer.text
        # Nor can the draft be approved as it is: its statement's source is not the patient's.
        version = foreign.find_element(By.NAME, "version").get_attribute("value")
        ref = review.record.drafts["foreign"]
        form = {"csrf": csrf, "version": str(version)}
        blocked = app.post(f"/review/drafts/{ref.split('/')[1]}/approve", data=form)
        assert blocked.status_code == 409 and "fail their check now (section 1, statement 1;" in blocked.text
    assert not [p for _, p, _ in review.ehr.calls[before:] if p.startswith(f"/fhir/{other}")]
    with session_scope() as session:
        shown = list_records(session=session, action="review evidence shown", limit=1000)
    assert other not in {r for row in shown for r in row.resource_ids}
    assert review.fhir(ref)["docStatus"] == "preliminary"


def test_evidence_cannot_be_read_from_another_site(review: Review) -> None:
    sid, a1c = review.session()["value"], review.record.refs["a1c"]
    before = len(review.ehr.calls)
    with review.http(sid) as app:
        # A link or an image on another site is a GET: there is no GET of evidence at all.
        assert app.get("/review/evidence", params={"ref": a1c}).status_code == 405
        # A form posted from another site has no form token, or the browser says where it comes from.
        no_token = app.post("/review/evidence", data={"ref": a1c, "csrf": "guess"})
        assert no_token.status_code == 403
        cross = app.post(
            "/review/evidence",
            data={"ref": a1c, "csrf": "guess"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403 and "another site" in cross.text
    assert review.ehr.calls[before:] == []


def test_approval_of_a_failed_check_needs_a_recorded_reason_and_decisions_are_final(review: Review) -> None:
    browser = review.browser
    review.open()
    ref = review.record.drafts["approve"]
    draft_id = ref.split("/")[1]
    sid, csrf = review.session()["value"], review.csrf()
    # Sent without a reason (a page that skipped its own check): 409, the failing statement named, nothing
    # written.
    with review.http(sid) as app:
        form = {"csrf": csrf, "version": 'W/"1"'}
        blocked = app.post(f"/review/drafts/{draft_id}/approve", data=form)
    assert (
        blocked.status_code == 409
        and "1 statement(s) fail their check now (section 2, statement 2" in blocked.text
    )
    assert review.fhir(ref)["docStatus"] == "preliminary"

    approving = card(review, "approve")
    approving.find_element(By.NAME, "override_reason").send_keys("Potassium checked by phone with the lab.")
    approving.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(lambda b: "Draft approved." in main_text(b))
    doc = review.fhir(ref)
    assert doc["docStatus"] == "final" and doc["authenticator"] == {"reference": CLINICIAN}
    override = [e for e in doc["extension"] if e["url"] == "urn:ehr-summarizer:approval-override-reason"]
    assert override == [
        {
            "url": "urn:ehr-summarizer:approval-override-reason",
            "valueString": "Potassium checked by phone with the lab.",
        }
    ]
    provenance = review.fhir("Provenance", target=ref)["entry"][0]["resource"]
    assert {"reference": CLINICIAN} in [a["who"] for a in provenance["agent"]]
    assert "Approved by Practitioner/dr-review" in card(review, "approve").text
    with session_scope() as session:
        audited = list_records(session=session, actor=CLINICIAN, action="fhir write PUT")
    assert f"DocumentReference/{draft_id}" in {r for a in audited for r in a.resource_ids}

    # A decision is final: rejecting the approved draft, at its current version, is 409 and changes nothing.
    with review.http(sid) as app:
        form = {"csrf": csrf, "version": f'W/"{doc["meta"]["versionId"]}"', "reason": "Changed my mind."}
        again = app.post(f"/review/drafts/{draft_id}/reject", data=form)
    assert again.status_code == 409 and "already approved" in again.text
    assert review.fhir(ref)["docStatus"] == "final" and review.fhir(ref)["status"] == "current"

    rejected = card(review, "reject")
    rejected.find_element(By.NAME, "reason").send_keys("Summarizes an outdated potassium result.")
    rejected.find_element(By.CSS_SELECTOR, "button.reject").click()
    wait(browser).until(lambda b: "Draft rejected." in main_text(b))
    doc = review.fhir(review.record.drafts["reject"])
    assert doc["status"] == "entered-in-error"
    assert doc["extension"][0]["valueString"] == "Summarizes an outdated potassium result."
    with session_scope() as session:
        assert session.get(Draft, ref).state.value == "approved"  # type: ignore[union-attr]
        assert session.get(Draft, review.record.drafts["reject"]).state.value == "rejected"  # type: ignore[union-attr]


def test_edit_and_approve_writes_a_replacement(review: Review) -> None:
    browser = review.browser
    review.open()
    card(review, "edit").find_element(By.LINK_TEXT, "Edit, then approve").click()
    box = wait(browser).until(lambda b: b.find_element(By.ID, "sections[1].statements[1]"))
    # The statement whose check fails is fixed; another one is removed.
    box.clear()
    box.send_keys("Potassium 6.2 mmol/L is high; repeat today.")
    browser.find_element(By.ID, "remove-sections[1].statements[0]").click()
    browser.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait(browser).until(lambda b: "Edited note approved." in main_text(b))
    ref = review.record.drafts["edit"]
    original = review.fhir(ref)
    assert original["docStatus"] == "preliminary" and original["status"] == "current"  # kept as written
    docs = review.fhir("DocumentReference", subject=f"Patient/{review.record.patient}")["entry"]
    replacements = [e["resource"] for e in docs if e["resource"].get("relatesTo")]
    assert len(replacements) == 1
    new = replacements[0]
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": ref}}]
    assert new["docStatus"] == "final" and new["authenticator"] == {"reference": CLINICIAN}
    assert "extension" not in new  # nothing failing was kept: no override
    text = base64.b64decode(new["content"][0]["attachment"]["data"]).decode()
    assert "Potassium 6.2 mmol/L is high; repeat today." in text and "may suggest" not in text
    with session_scope() as session:
        row = session.get(Draft, ref)
    assert (
        row is not None
        and row.state.value == "replaced"
        and row.replaced_by == f"DocumentReference/{new['id']}"
    )
    assert row.change_ratio is not None and 0 < row.change_ratio < 0.4
    assert "Edited and approved as a new document" in card(review, "edit").text


def test_a_draft_changed_since_it_was_opened_is_not_overwritten(review: Review) -> None:
    """Whatever the FHIR server does with If-Match: here a gateway drops it, and nothing is overwritten."""
    browser = review.browser
    review.open()
    ref = review.record.drafts["conflict"]
    doc = review.fhir(ref)
    headers = {"Authorization": f"Bearer {review.ehr.setup_token}", "If-Match": 'W/"1"'}
    moved = httpx.put(
        f"{review.ehr.fhir_base}/{ref}", json={**doc, "description": "Retitled in the EHR"}, headers=headers
    )
    assert moved.status_code == 200
    review.ehr.drop_if_match = True
    try:
        conflict = card(review, "conflict")
        conflict.find_element(By.NAME, "override_reason").send_keys("Reviewed.")
        conflict.find_element(By.CSS_SELECTOR, "button.approve").click()
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
    finally:
        review.ehr.drop_if_match = False
    replacing = review.fhir("DocumentReference", subject=f"Patient/{review.record.patient}")["entry"]
    assert not [
        e
        for e in replacing
        if {"code": "replaces", "target": {"reference": ref}} in e["resource"].get("relatesTo", [])
    ]
    assert review.fhir(ref)["meta"]["versionId"] == "3" and "authenticator" not in review.fhir(ref)


def test_forms_are_refused_before_their_body_is_read(review: Review) -> None:
    """30 MB form or multipart bodies: refused by headers alone (no session 401, multipart 415, over the
    limit 413), at once, without the app's memory growing or a file spooled."""
    sid = review.session()["value"]
    pid = review.proc.pid
    before = rss_kib(pid)
    target = b"POST /review/drafts/x/edit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    big = b"Content-Length: 30000000\r\n"
    cases = [
        (target + form + big, 401),
        (
            target
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            + big
            + f"Cookie: {COOKIE}={sid}\r\n".encode(),
            415,
        ),
        (target + form + big + f"Cookie: {COOKIE}={sid}\r\n".encode(), 413),
    ]
    for head, expected in cases:
        status, took = raw_tls(review, head, b"csrf=" + b"a" * 65536)
        assert status == expected and took < 3, (expected, status, took)
    chunked = target + form + b"Transfer-Encoding: chunked\r\n" + f"Cookie: {COOKIE}={sid}\r\n".encode()
    assert raw_tls(review, chunked, chunks=100)[0] == 413  # 6.5 MB streamed, over the 256 KiB limit
    assert rss_kib(pid) - before < 20_000
    # The refusals are audited with the route and no text of the path (a name in place of an id here).
    phi = "Ada Quill diabetes"
    with review.http() as app:
        app.post(f"/review/drafts/{phi}/approve", data={"csrf": "x", "version": "1"})
    with session_scope() as session:
        rows = list_records(session=session, action="review POST /review/drafts/{draft_id}/{decision}")
    assert rows and rows[0].resource_ids == [f"(not an id: {len(phi)} chars)", "approve"]


def test_standalone_launch_opens_the_signed_in_users_patient(review: Review) -> None:
    review.browser.switch_to.default_content()
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
    with review.http() as tls:
        assert tls.get("/review/launch").status_code == 302
