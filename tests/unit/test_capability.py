"""Reading a CapabilityStatement: the fetch plan, reference parameters and subscriptions it allows."""

from __future__ import annotations

from typing import Any

from fhir_adapters.capability import BACKPORT_TOPIC_EXT, parse_capabilities

TOPIC = "http://example.org/SubscriptionTopic/encounter-start"


def statement(*resources: dict[str, Any], operations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    rest = {"mode": "server", "resource": list(resources), "operation": operations or []}
    return {"resourceType": "CapabilityStatement", "software": {"name": "X", "version": "1"}, "rest": [rest]}


def searchable(type_name: str, *params: str, **extra: Any) -> dict[str, Any]:
    interaction = [{"code": "search-type"}, {"code": "create"}]
    return {
        "type": type_name,
        "interaction": interaction,
        "searchParam": [{"name": p} for p in params],
        **extra,
    }


def test_everything_declared_on_patient_or_server_wide() -> None:
    on_patient = searchable("Patient", operation=[{"name": "everything"}])
    assert parse_capabilities(statement(on_patient)).fetch_plan() == "$everything"
    server_wide = [{"name": "x", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
    assert parse_capabilities(statement(searchable("Patient"), operations=server_wide)).everything
    assert parse_capabilities(statement(searchable("Patient"))).fetch_plan() == "search"


def test_reference_parameter_follows_the_declaration() -> None:
    declared = parse_capabilities(
        statement(searchable("Observation", "subject", "patient"), searchable("Immunization", "patient"))
    )
    assert declared.patient_param("Observation") == "subject"
    assert declared.patient_param("Immunization") == "patient"
    assert declared.patient_param("Condition") is None  # not declared searchable: not searched
    assert not declared.supports_param("Observation", "_lastUpdated")


def test_nothing_declared_means_try_everything_then_search() -> None:
    unknown = parse_capabilities({"resourceType": "OperationOutcome"})
    assert not unknown.declared and unknown.fetch_plan() == "$everything"
    assert unknown.patient_param("Condition") == "patient"
    assert unknown.supports_param("Condition", "_lastUpdated")


def test_subscriptions_only_as_declared() -> None:
    criteria = ["Encounter?status=in-progress", "DocumentReference", TOPIC]
    wanted = [{"criteria": c} for c in criteria]
    topic = {"url": BACKPORT_TOPIC_EXT, "valueCanonical": TOPIC}
    with_topic = parse_capabilities(statement(searchable("Subscription", extension=[topic])))
    assert with_topic.subscriptions and with_topic.subscribable(wanted) == wanted
    without_topics = parse_capabilities(statement(searchable("Subscription")))
    assert without_topics.subscribable(wanted) == wanted[:2]
    assert parse_capabilities(statement(searchable("Patient"))).subscribable(wanted) == []
