"""Hostile input at boundaries that need no server: ids, references, notification bodies, URLs, settings."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from fhir_adapters.client import FhirClient
from fhir_adapters.compartment import patient_of
from fhir_adapters.lifecycle import replacement_decision
from fhir_adapters.record import fetch_record
from fhir_adapters.references import fhir_id, parse_reference
from fhir_adapters.subscriptions import parse_notification
from services.api.guard import nesting_depth
from services.core.errors import ConfigError, FhirError, InputError, TooLarge
from services.core.settings import Settings, get_settings
from tests.support.hostile_bodies import (
    ENCOUNTER_OK,
    EVENT_TYPE,
    INVALID_SHAPES,
    SUBSCRIPTION,
    backport,
)

BASE = "http://fhir.example/fhir"
HOSTILE_IDS = [
    ".",
    "..",
    "../../Patient/x",
    "x?_format=xml",
    "a b",
    "a%2Fb",
    "pätient",
    "a\x00b",
    "a\r\nX-Injected: 1",
    "x" * 500,
    "",
]


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_ids_are_refused(value: str) -> None:
    """Item 1, 2: every id that would step out of a URL path segment, or is not FHIR's, is an InputError."""
    with pytest.raises(InputError):
        fhir_id(value)
    with pytest.raises(InputError):
        parse_reference(f"Patient/{value}")


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/../../Patient/x",
        "Patient/x?_format=xml",
        "Patient/x/$everything",
        "Nonsense/x",
        "HumanName/x",  # a datatype, not a resource
        "patient/x",
        "x",
        "http://elsewhere.example/fhir/Patient/x",
        "http://fhir.example/other/Patient/x",
        "https://fhir.example/fhir/Patient/x",  # another origin: the scheme differs
        "http://fhir.example/fhir/Patient/x?_format=xml",
        "http://fhir.example/fhir/../fhir2/Patient/x",
        "http://fhir.example/fhir/Patient/a%2F..%2Fb",
    ],
)
def test_references_are_type_slash_id_or_under_our_base(reference: str) -> None:
    """Item 1: a reference is `Type/id` of a known type, or an absolute URL under the configured base."""
    with pytest.raises(InputError):
        parse_reference(reference, base_url=BASE)


def test_good_references_parse() -> None:
    assert str(parse_reference("Patient/p-1.2")) == "Patient/p-1.2"
    assert str(parse_reference("Encounter/e1/_history/3")) == "Encounter/e1"
    assert str(parse_reference(f"{BASE}/Patient/p1", base_url=BASE)) == "Patient/p1"
    assert str(parse_reference("http://FHIR.example:80/fhir/Patient/p1", base_url=BASE)) == "Patient/p1"
    with pytest.raises(InputError):
        parse_reference(f"{BASE}/Patient/p1")  # absolute, where no base is configured
    with pytest.raises(InputError):
        parse_reference("Patient/p1", types={"Subscription"})


@pytest.mark.parametrize(
    "subject",
    ["Patient/../../Patient/x", "Patient/x?_format=xml", "Patient/a b", "Patient/..", "Patient/" + "x" * 500],
)
def test_notification_with_a_hostile_subject_is_refused(subject: str) -> None:
    """Item 1: the body's patient reference is parsed strictly; a bad one refuses the notification."""
    body = {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "1"},
        "subject": {"reference": subject},
    }
    with pytest.raises(InputError):
        parse_notification(body, base_url=BASE)


def test_contained_and_placeholder_references_name_no_patient() -> None:
    for reference in ("#p1", "urn:uuid:0f5c1f0e-6f65-4d5e-9d4c-2b9e0c8f1a11"):
        assert patient_of({"resourceType": "Encounter", "subject": {"reference": reference}}) is None


@pytest.mark.parametrize("path_focus", ["Encounter/..", "Encounter/a%2Fb", "Nonsense/x", "Encounter/x?y=1"])
def test_put_resource_url_is_parsed_strictly(path_focus: str) -> None:
    with pytest.raises(InputError):
        parse_notification(None, path_focus=path_focus)


def test_url_and_body_must_name_the_same_resource() -> None:
    body = {"resourceType": "Encounter", "id": "e2", "meta": {"versionId": "1"}}
    with pytest.raises(InputError):
        parse_notification(body, path_focus="Encounter/e1")


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Bundle", "type": "history", "entry": 5},
        {"resourceType": "Bundle", "type": "history", "entry": [5, "x", None, []]},
        {"resourceType": "Encounter", "id": "e1", "meta": "x"},
        {"resourceType": "Bundle", "entry": [{"resource": 5}, {"resource": {"resourceType": "Encounter"}}]},
        backport({"name": ["type"], "valueCode": "heartbeat"}, SUBSCRIPTION),
        backport(EVENT_TYPE, SUBSCRIPTION, {"name": "notification-event", "part": "x"}),
        backport(EVENT_TYPE, SUBSCRIPTION, {"name": "notification-event", "part": [5, {"name": {}}]}),
    ],
)
def test_malformed_bodies_parse_or_are_input_errors(body: dict[str, Any]) -> None:
    """Item 5: wrong types anywhere are InputError at worst, never another exception (a 500)."""
    with contextlib.suppress(InputError):
        parse_notification(body, base_url=BASE)


@pytest.mark.parametrize("number", [10**20, -1, 1e20, "1e20", "99999999999", True, {"x": 1}])
def test_event_numbers_must_fit_the_counter(number: Any) -> None:
    """Item 5: an event number of 1e20 reached an INTEGER column (500); now it is refused at parsing."""
    event = {"name": "notification-event", "part": [{"name": "event-number", "valueString": number}]}
    with pytest.raises(InputError):
        parse_notification(backport(EVENT_TYPE, SUBSCRIPTION, event), base_url=BASE)


@pytest.mark.parametrize("reference", ["s1", "", "Subscription/", "Patient/s1", "Subscription/a/b/c"])
def test_subscription_reference_must_be_a_subscription(reference: str) -> None:
    """Item 9: a subscription id without "/" crashed recover_gap (IndexError); it is refused at the door."""
    sub = {"name": "subscription", "valueReference": {"reference": reference}}
    with pytest.raises(InputError):
        parse_notification(backport({"name": "type", "valueCode": "heartbeat"}, sub), base_url=BASE)


def test_events_per_notification_are_capped() -> None:
    """Item 6: a Bundle of 10,000 entries is refused before any event is built."""
    entries = [{"resource": {"resourceType": "Encounter", "id": f"e{i}"}} for i in range(10_000)]
    with pytest.raises(TooLarge):
        parse_notification({"resourceType": "Bundle", "type": "collection", "entry": entries}, max_events=100)
    events = [
        {"name": "notification-event", "part": [{"name": "event-number", "valueString": str(i)}]}
        for i in range(101)
    ]
    with pytest.raises(TooLarge):
        parse_notification(backport(EVENT_TYPE, SUBSCRIPTION, *events), base_url=BASE, max_events=100)
    assert len(parse_notification({"resourceType": "Bundle", "entry": entries[:100]}).events) == 100


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert nesting_depth(b'"\\"[[["') == 0
    assert nesting_depth(b"[" * 10_000 + b"]" * 10_000) == 10_000
    assert nesting_depth(b"") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://elsewhere.example/fhir/Patient?_offset=50",
        "https://127.0.0.1:8090/fhir/Patient",
        "http://127.0.0.1:8091/fhir/Patient",
        "http://127.0.0.1:8090/other/Patient",
        "Patient/../../Patient/x/$everything",
        "../admin",
    ],
)
def test_client_sends_nothing_outside_the_base(url: str) -> None:
    """Items 1, 10: a path or next link that leaves the configured server is refused before any request."""
    client = FhirClient("http://127.0.0.1:8090/fhir")
    with pytest.raises(FhirError, match="outside the configured FHIR server"):
        client.target(url)
    assert str(client.target("http://127.0.0.1:8090/fhir/Patient?_offset=50")).endswith("?_offset=50")
    asyncio.run(client.aclose())


@pytest.mark.parametrize("patient", [".", "..", "x/../y"])
def test_fetch_refuses_a_hostile_patient_id(patient: str) -> None:
    """Item 2: the worker's fetch checks the id itself, so `.` can never become GET /fhir/Patient."""

    async def fetch() -> None:
        async with FhirClient("http://127.0.0.1:9/fhir", max_retries=0) as client:
            await fetch_record(client, patient)

    with pytest.raises(InputError):
        asyncio.run(fetch())


DRAFT = {"resourceType": "DocumentReference", "id": "d1", "meta": {"versionId": "1"}, "content": []}


@pytest.mark.parametrize(
    ("status", "doc_status", "authenticator"),
    [
        ("current", "preliminary", {"reference": "Practitioner/dr"}),
        ("entered-in-error", "final", {"reference": "Practitioner/dr"}),
        ("current", "final", None),
        ("current", "final", {"reference": "Device/bot"}),
        ("current", "final", {"reference": "Patient/p1"}),
        ("current", "final", {"display": "Dr. Someone"}),
        ("current", "final", "Practitioner/dr"),
    ],
)
def test_only_a_final_document_by_a_practitioner_replaces_a_draft(
    status: str, doc_status: str, authenticator: Any
) -> None:
    """Item 11: anything else that says it replaces our draft is no decision."""
    replacement = {"resourceType": "DocumentReference", "id": "r1", "status": status, "docStatus": doc_status}
    if authenticator is not None:
        replacement["authenticator"] = authenticator
    assert replacement_decision(DRAFT, replacement) is None


def test_a_final_document_by_a_practitioner_is_recorded_as_such() -> None:
    replacement = {
        "resourceType": "DocumentReference",
        "id": "r1",
        "status": "current",
        "docStatus": "final",
        "authenticator": {"reference": "Practitioner/dr-1"},
    }
    decision = replacement_decision(DRAFT, replacement)
    assert decision is not None and decision.state == "replaced"
    assert decision.authenticator == "Practitioner/dr-1" and decision.replaced_by == "DocumentReference/r1"


def test_unknown_ehrsum_variables_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 12: a misspelt EHRSUM_* name stops the process at start with one line, naming it."""
    monkeypatch.setenv("EHRSUM_SMART_CLIENT_ID", "x")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match="EHRSUM_SMART_CLIENT_ID") as caught:
            get_settings()
        assert "\n" not in str(caught.value)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"fhir_auth": "smart"}, "EHRSUM_FHIR_CLIENT_ID"),
        ({"fhir_auth": "basic", "fhir_username": "u"}, "EHRSUM_FHIR_PASSWORD"),
        ({"fhir_auth": "bearer"}, "EHRSUM_FHIR_TOKEN"),
        ({"api_dev_token_enabled": True}, "EHRSUM_API_DEV_TOKEN"),
        ({"fhir_base_url": "fhir.example/fhir"}, "EHRSUM_FHIR_BASE_URL"),
        ({"api_trusted_proxies": ["not-an-address"]}, "EHRSUM_API_TRUSTED_PROXIES"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(values: dict[str, Any], named: str) -> None:
    """Item 12: cross-field checks run when the settings are read, not at first use."""
    with pytest.raises(ValueError, match=named):
        Settings.model_validate(values)


def test_tooling_variables_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EHRSUM_CACHE", "EHRSUM_TEST_PG", "EHRSUM_BENCH_REDIS", "EHRSUM_REDIS_PASSWORD"):
        monkeypatch.setenv(name, "x")
    assert Settings().fhir_auth == "none"


def test_sqlite_database_is_private(tmp_path: Path) -> None:
    """Item 14: the embedded SQLite database (PHI) is created 0600 in a directory created 0700."""
    from services.core.db import engine_for

    data = tmp_path / "data"
    engine = engine_for(f"sqlite:///{data / 'ehrsum.db'}")
    with engine.connect():
        pass
    engine.dispose()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "ehrsum.db").st_mode) == 0o600


def test_openapi_declares_the_bearer_and_secret_schemes() -> None:
    """Item 14: generated clients and the docs page know the bearer token and the notification secret."""
    from services.api.app import create_app

    document = create_app().openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["notificationSecret"]["in"] == "header"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path in ("/healthz", "/readyz"):
                assert "security" not in operation
            elif path.startswith("/v1/notifications"):
                assert operation["security"] == [{"notificationSecret": []}]
            else:
                assert operation["security"] == [{"bearer": []}], path


def test_generated_records_are_private(tmp_path: Path) -> None:
    """Item 14: generated patient records are written 0600 in 0700 directories, older ones tightened."""
    from deploy.patients import _write_compact, private

    written = _write_compact({"resourceType": "Bundle"}, tmp_path / "records" / "one.json")
    older = tmp_path / "records" / "older.json"
    older.write_text("{}")
    older.chmod(0o644)
    private(tmp_path / "records")
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(older).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "records").st_mode) == 0o700


def test_cli_writes_private_files(tmp_path: Path) -> None:
    """Item 14: `ehrsum` runs with umask 077, so the embedded database and beat's schedule stay ours."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRSUM_")}
    env["EHRSUM_DATA_DIR"] = str(tmp_path / "var")
    ehrsum = Path(sys.executable).with_name("ehrsum")
    done = subprocess.run([str(ehrsum), "init-db"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert stat.S_IMODE(os.stat(tmp_path / "var").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "var" / "ehrsum.db").st_mode) == 0o600
    bad = subprocess.run(
        [str(ehrsum), "init-db"], env={**env, "EHRSUM_FHIR_AUTHH": "smart"}, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "EHRSUM_FHIR_AUTHH" in bad.stderr


# ---------------------------------------------------------------- issue 19: shapes, caps, encodings, audit


@pytest.mark.parametrize("body", INVALID_SHAPES)
def test_invalid_fhir_structure_is_input_error(body: dict[str, Any]) -> None:
    """Issue 19: a number or string for `entry`, `resource` missing or a list, `meta` or `subject` a string,
    `reference` a number, no `id`: each was answered 200 (read as absent); now InputError (400)."""
    with pytest.raises(InputError):
        parse_notification(body, base_url=BASE)


def test_the_event_cap_is_exact() -> None:
    """Issue 19: a cap of 100 let 101 through."""
    entries = [{"resource": {**ENCOUNTER_OK, "id": f"e{i}"}} for i in range(101)]
    rest = {"resourceType": "Bundle", "type": "collection"}
    assert len(parse_notification({**rest, "entry": entries[:100]}, max_events=100).events) == 100
    with pytest.raises(TooLarge):
        parse_notification({**rest, "entry": entries}, max_events=100)

    def event(i: int) -> dict[str, Any]:
        number = {"name": "event-number", "valueString": str(i)}
        focus = {"name": "focus", "valueReference": {"reference": f"Encounter/e{i}"}}
        return {"name": "notification-event", "part": [number, focus]}

    full = parse_notification(backport(EVENT_TYPE, SUBSCRIPTION, *map(event, range(100))), max_events=100)
    assert len(full.events) == 100
    with pytest.raises(TooLarge):
        parse_notification(backport(EVENT_TYPE, SUBSCRIPTION, *map(event, range(101))), max_events=100)
    with pytest.raises(TooLarge):  # 100 events but 101 resources
        parse_notification(backport(EVENT_TYPE, SUBSCRIPTION, event(1), entries=entries), max_events=100)


@pytest.mark.parametrize("notification_type", ["handshake", "heartbeat"])
def test_a_handshake_or_heartbeat_carries_no_events(notification_type: str) -> None:
    """Issue 19: a 100-entry handshake made 100 jobs."""
    event = {"name": "notification-event", "part": [{"name": "event-number", "valueString": "1"}]}
    with pytest.raises(InputError, match="carries no events"):
        parse_notification(
            backport({"name": "type", "valueCode": notification_type}, SUBSCRIPTION, event), base_url=BASE
        )
    with pytest.raises(InputError, match="carries no events"):
        parse_notification(
            backport(
                {"name": "type", "valueCode": notification_type},
                SUBSCRIPTION,
                entries=[{"resource": ENCOUNTER_OK}],
            ),
            base_url=BASE,
        )


DEEP = "[" * 40 + "]" * 40


@pytest.mark.parametrize(
    "body",
    [
        DEEP.encode("utf-16"),
        DEEP.encode("utf-16-le"),
        ('{"a": "\u225b' + DEEP + '"}').encode("utf-16-le"),  # U+225B: a 0x22 byte opens a fake string
        DEEP.encode("utf-32"),
        codecs.BOM_UTF8 + b"{}",
        b'{"a": "\xff"}',
    ],
)
def test_json_is_utf8_only(body: bytes) -> None:
    """Issue 19: UTF-16/32 and BOM bodies were accepted, and UTF-16 hid brackets from the depth scan."""
    from starlette.datastructures import Headers

    from services.api.guard import BodyRefused, json_text

    with pytest.raises(BodyRefused) as refused:
        json_text(Headers({"content-type": "application/fhir+json"}), body)
    assert refused.value.status == 415


@pytest.mark.parametrize(
    ("content_type", "refused"),
    [
        ("application/json", False),
        ("application/fhir+json; charset=utf-8", False),
        ("application/json; charset=UTF-8", False),
        ("", False),
        ("application/json; charset=utf-16", True),
        ("application/fhir+json; charset=latin-1", True),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data; boundary=x", True),
        ("text/plain", True),
    ],
)
def test_json_media_types_and_charsets(content_type: str, refused: bool) -> None:
    from starlette.datastructures import Headers

    from services.api.guard import BodyRefused, json_text

    headers = Headers({"content-type": content_type} if content_type else {})
    if refused:
        with pytest.raises(BodyRefused):
            json_text(headers, b"{}")
    else:
        json_text(headers, b"{}")
    json_text(headers, b"")  # no body: nothing to refuse


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("d1", "d1"),
        ("Encounter", "Encounter"),
        ("x" * 60_000, "(not an id: 60000 chars)"),
        ("Ada Quill, type 2 diabetes", "(not an id: 26 chars)"),
        ("../../etc", "(not an id: 9 chars)"),
        ("..", "(not an id: 2 chars)"),
    ],
)
def test_audit_rows_hold_only_ids(value: str, kept: str) -> None:
    """Issue 19: a refused request's path text went verbatim into the audit table (60 KB, a name)."""
    from services.api.guard import audited_id

    assert audited_id(value) == kept
