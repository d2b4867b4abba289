"""Approve and reject through our API with the service pointed at the second FHIR server (Medplum)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.processes import stop
from tests.conftest import start_api
from tests.support.drafts import make_draft
from tests.support.identity import IdentityProvider

pytestmark = pytest.mark.e2e


def _etag(fhir: str, ref: str) -> str:
    return f'W/"{httpx.get(f"{fhir}/{ref}", timeout=10).json()["meta"]["versionId"]}"'


def _decide(api: str, ref: str, verb: str, headers: dict[str, str]) -> httpx.Response:
    url = f"{api}/v1/{ref.replace('DocumentReference', 'drafts')}/{verb}"
    return httpx.post(url, headers=headers, timeout=30)


def test_api_approve_reject_and_stale_version_on_the_second_server(
    medplum_server: str,
    medplum_patients: list[str],
    identity: IdentityProvider,
    postgres_db: str,
    redis_broker: str,
    tmp_path: Path,
) -> None:
    proc, api = start_api(tmp_path / "api.log", EHRSUM_FHIR_BASE_URL=medplum_server)
    try:
        token = identity.token("drafts.approve drafts.read", subject="dr-medplum")
        approver = {"Authorization": f"Bearer {token}"}
        patient = medplum_patients[1]
        kinds = ("soap", "triage", "progress")
        to_approve, to_reject, stale = (make_draft(medplum_server, patient, kind=k) for k in kinds)

        reviewed = _etag(medplum_server, to_approve)
        answer = _decide(api, to_approve, "approve", {**approver, "If-Match": reviewed})
        assert answer.status_code == 200 and answer.json()["state"] == "approved", answer.text
        doc: dict[str, Any] = httpx.get(f"{medplum_server}/{to_approve}", timeout=10).json()
        assert doc["docStatus"] == "final" and doc["authenticator"]["identifier"]["value"] == "dr-medplum"

        answer = _decide(api, to_reject, "reject", {**approver, "If-Match": _etag(medplum_server, to_reject)})
        assert answer.status_code == 200 and answer.json()["state"] == "rejected", answer.text
        assert httpx.get(f"{medplum_server}/{to_reject}", timeout=10).json()["status"] == "entered-in-error"

        reviewed = _etag(medplum_server, stale)
        current = httpx.get(f"{medplum_server}/{stale}", timeout=10).json()
        edited = {**current, "description": "edited in the EHR"}
        assert httpx.put(f"{medplum_server}/{stale}", json=edited, timeout=10).status_code == 200
        answer = _decide(api, stale, "approve", {**approver, "If-Match": reviewed})
        assert answer.status_code == 412 and answer.json()["issue"][0]["code"] == "conflict"
        assert httpx.get(f"{medplum_server}/{stale}", timeout=10).json()["docStatus"] == "preliminary"
    finally:
        stop(proc)
