#!/usr/bin/env python3
"""Review page: seconds to render a patient's drafts and FHIR calls per page, by number of drafts (a table).

.venv/bin/python bench/review_page.py [--drafts 1,5,20] [--pages 20]

Loopback only: sekmet-fhir behind the development SMART authorization server (deploy/smart_dev_server.py),
`ehrsum api` with the review app, a throwaway Postgres database and Redis db 13. A clinician signs in
through the real EHR launch (PKCE, code exchange) with httpx, which loads the page once; then GET
/review/ PAGES times. Each page reads the Patient, searches DocumentReference, searches each cited
resource type once within the patient's compartment and re-runs the verifier on every statement.
Each seeded draft has 5 statements and 1-2 flags citing 3 resources.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import BIN, REDIS_URL, database, flush_redis, free_port, percentile, spawn, stop_group
from deploy.processes import wait_http

CLIENT_ID = "ehrsum-review"


def main() -> None:
    """Print p50/p95 page seconds and FHIR calls per page for each number of drafts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", default="1,5,20")
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    flush_redis()
    with database() as db_url, tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"EHRSUM_DATABASE_URL": db_url, "EHRSUM_BROKER_URL": REDIS_URL})
        # Imported once the environment names the bench's database: the seeder records drafts there.
        from deploy.smart_dev_server import Launch, SmartEhr
        from tests.support.review_records import seed

        port = free_port()
        app = f"http://127.0.0.1:{port}"
        ehr = SmartEhr(
            Path(tmp) / "ehr", CLIENT_ID, f"{app}/review/callback", Launch("", "Practitioner/bench")
        )
        ehr.start(free_port())
        env = {
            "EHRSUM_FHIR_BASE_URL": ehr.fhir_base,
            "EHRSUM_REVIEW_CLIENT_ID": CLIENT_ID,
            "EHRSUM_REVIEW_URL": app,
        }
        api = spawn([str(BIN / "ehrsum"), "api", "--port", str(port)], env, Path(tmp) / "api.log")
        try:
            wait_http(f"{app}/healthz", 60, api, Path(tmp) / "api.log")
            print("| drafts | statements | FHIR calls per page | page p50 s | page p95 s |")
            print("| --- | --- | --- | --- | --- |")
            for count in (int(n) for n in args.drafts.split(",")):
                record = seed(ehr.fhir_base, ehr.setup_token, [f"d{i}" for i in range(count)])
                ehr.signed_in.patient = record.patient
                with httpx.Client(follow_redirects=True, timeout=60) as browser:
                    assert browser.get(f"{app}/review/launch").status_code == 200
                    seconds = []
                    before = len(ehr.calls)
                    for _ in range(args.pages):
                        start = time.perf_counter()
                        page = browser.get(f"{app}/review/")
                        seconds.append(time.perf_counter() - start)
                        shown = page.text.count('class="statement author')
                        assert page.status_code == 200 and shown == 5 * count
                    calls = (len(ehr.calls) - before) / args.pages
                print(
                    f"| {count} | {5 * count} | {calls:.0f} | {percentile(seconds, 50):.3f} "
                    f"| {percentile(seconds, 95):.3f} |"
                )
        finally:
            stop_group(api)
            ehr.stop()


if __name__ == "__main__":
    main()
