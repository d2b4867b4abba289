"""Hypothesis on notification bodies: nesting, types, sizes and ids, against the parser and the live endpoint.

The parser may only answer a Notification whose every focus and patient is a checked FHIR id (or raise
InputError, TooLarge included); the endpoint may only answer 2xx or 4xx, never 5xx.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapters.references import is_fhir_id, parse_reference
from fhir_adapters.subscriptions import parse_notification
from services.core.errors import InputError
from services.core.settings import get_settings
from tests.conftest import notification_headers, registered

BASE = "http://fhir.example/fhir"
MAX_EVENTS = 20
SUBSCRIPTION = "Subscription/fuzz-sub"  # registered for the live run, so its events get dispatched

# Ids a hostile or broken sender tries: good ones, path steps, queries, encodings, control bytes, sizes.
ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
    st.sampled_from([".", "..", "../x", "x/../../y", "x?_format=xml", "a%2Fb", "a b", "pätient", "a\x00b"]),
    st.sampled_from(["a\r\nX: y", "#p1", "urn:uuid:1", "", "x" * 65, "x" * 500]),
    st.text(max_size=80),
)
types = st.sampled_from(
    ["Patient", "Encounter", "Observation", "DocumentReference", "Subscription", "Nonsense"]
)
references = st.one_of(
    st.builds(lambda t, i: f"{t}/{i}", types, ids),
    st.builds(lambda t, i: f"{BASE}/{t}/{i}", types, ids),
    st.builds(lambda t, i: f"http://elsewhere.example/fhir/{t}/{i}", types, ids),
    st.builds(lambda t, i, v: f"{t}/{i}/_history/{v}", types, ids, ids),
    st.just(SUBSCRIPTION),
    ids,
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


# A value of the right shape most of the time, anything at all otherwise.
def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, strategy, any_json)


event_numbers = st.one_of(
    st.integers(min_value=0, max_value=2**31 - 1).map(str),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["1e20", "-1", "", "٣", "99999999999"]),
    st.floats(),
)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """A rest-hook resource: type, id, meta and a patient reference, each possibly wrong."""
    resource: dict[str, Any] = {"resourceType": draw(maybe(types))}
    if draw(st.booleans()):
        resource["id"] = draw(maybe(ids))
    if draw(st.booleans()):
        resource["meta"] = draw(maybe(st.fixed_dictionaries({"versionId": maybe(ids)})))
    key = draw(st.sampled_from(["subject", "patient", "for", "beneficiary"]))
    resource[key] = draw(maybe(st.fixed_dictionaries({"reference": maybe(references)})))
    return resource


@st.composite
def backport_bundles(draw: st.DrawFn) -> dict[str, Any]:
    """A Backport history Bundle: a Parameters first, events with numbers, focus and context."""
    params: list[Any] = [
        {
            "name": "type",
            "valueCode": draw(maybe(st.sampled_from(["heartbeat", "event-notification", "handshake"]))),
        },
        {"name": "subscription", "valueReference": {"reference": draw(maybe(references))}},
        {"name": "events-since-subscription-start", "valueString": draw(maybe(event_numbers))},
    ]
    for _ in range(draw(st.integers(0, MAX_EVENTS + 3))):
        parts = [
            {"name": "event-number", "valueString": draw(maybe(event_numbers))},
            {
                "name": "focus",
                "valueReference": draw(maybe(st.fixed_dictionaries({"reference": references}))),
            },
            {"name": "additional-context", "valueReference": {"reference": draw(maybe(references))}},
        ]
        params.append({"name": "notification-event", "part": draw(maybe(st.just(parts)))})
    entries: list[Any] = [
        {"resource": {"resourceType": "Parameters", "parameter": draw(maybe(st.just(params)))}}
    ]
    entries += [{"resource": r} for r in draw(st.lists(resources(), max_size=3))]
    return {"resourceType": "Bundle", "type": "history", "entry": draw(maybe(st.just(entries)))}


def nested(depth: int) -> Any:
    body: Any = {"resourceType": "Encounter", "id": "e1"}
    for _ in range(depth):
        body = {"resourceType": "Bundle", "entry": [{"resource": body}]}
    return body


notification_bodies = st.one_of(
    resources(),
    backport_bundles(),
    st.builds(
        lambda rs: {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in rs]},
        st.lists(resources(), max_size=MAX_EVENTS + 5),
    ),
    st.integers(1, 60).map(nested),
    any_json,
)


def fuzz(examples: int) -> settings:
    """Reproducible hypothesis settings for `examples` inputs."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _check_parsed(body: Any) -> str:
    try:
        note = parse_notification(body, base_url=BASE, max_events=MAX_EVENTS)
    except InputError as exc:
        return type(exc).__name__
    assert len(note.events) <= MAX_EVENTS
    for event in note.events:
        if event.focus is not None:
            assert str(parse_reference(event.focus)) == event.focus
        assert event.patient_id is None or is_fhir_id(event.patient_id)
        assert event.number is None or 0 <= event.number < 2**31
    if note.subscription is not None:
        assert str(parse_reference(note.subscription, types={"Subscription"})) == note.subscription
    return f"parsed {note.type}"


def test_parser_admits_only_checked_ids() -> None:
    """Whatever the body, the parser raises InputError or answers events with checked ids only."""
    seen: Counter[str] = Counter()

    @fuzz(2000)
    @given(body=notification_bodies)
    def parse(body: Any) -> None:
        seen[_check_parsed(body)] += 1

    parse()
    print(f"\nnotification parser: {sum(seen.values())} bodies: {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= 1000 and any(k.startswith("parsed") for k in seen)


def test_endpoint_never_answers_5xx(fuzz_api: str) -> None:
    """The same strategies (and raw bytes) POSTed to the running API: every answer 2xx or 4xx."""
    registered(SUBSCRIPTION.removeprefix("Subscription/"))
    live_base = get_settings().fhir_base_url
    statuses: Counter[int] = Counter()
    as_sent = notification_bodies.map(lambda b: json.dumps(b, default=str).replace(BASE, live_base).encode())
    with httpx.Client(base_url=fuzz_api, headers=notification_headers(), timeout=30) as client:

        @fuzz(400)
        @given(
            body=st.one_of(
                as_sent,
                as_sent,
                # Other encodings of the same bodies (415 since issue 19: JSON is UTF-8 only).
                as_sent.map(lambda b: b.decode().encode("utf-16")),
                as_sent.map(lambda b: b"\xef\xbb\xbf" + b),
                st.binary(max_size=200),
                st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),
            ),
            path=st.sampled_from(
                ["/v1/notifications", "/v1/notifications/Encounter/e1", "/v1/notifications/x/y"]
            ),
        )
        def post(body: bytes, path: str) -> None:
            answer = client.post(path, content=body)
            statuses[answer.status_code] += 1
            assert answer.status_code < 500, (body[:200], answer.text)

        post()
    print(f"\nnotification endpoint: {sum(statuses.values())} requests: {dict(sorted(statuses.items()))}")
    assert httpx.get(f"{fuzz_api}/healthz", timeout=10).status_code == 200
