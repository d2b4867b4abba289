"""Deterministic triage rules: NEWS2 (and when it is not computable), critical labs, allergy conflicts."""

from __future__ import annotations

from typing import Any

from clinical_notes.draft import Flag
from clinical_notes.rules import merge_flags, rule_flags
from clinical_notes.triage import news2
from fhir_adapters.condense import condense
from fhir_adapters.record import record_from_bundle_json

LOINC = "http://loinc.org"
VITAL = [{"coding": [{"code": "vital-signs"}]}]
LAB = [{"coding": [{"code": "laboratory"}]}]


def obs(
    rid: str,
    code: str,
    value: float,
    unit: str,
    when: str = "2024-03-01T08:00:00Z",
    category: list[dict[str, Any]] = VITAL,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": category,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
    }


def timeline(*resources: dict[str, Any]):  # type: ignore[no-untyped-def]
    entries = [{"resource": {"resourceType": "Patient", "id": "p1"}}, *({"resource": r} for r in resources)]
    return condense(
        record_from_bundle_json({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )


def vitals(rr: float, spo2: float, temp: float, sbp: float, hr: float) -> list[dict[str, Any]]:
    return [
        obs("rr", "9279-1", rr, "/min"),
        obs("sat", "59408-5", spo2, "%"),
        obs("t", "8310-5", temp, "Cel"),
        obs("sbp", "8480-6", sbp, "mm[Hg]"),
        obs("hr", "8867-4", hr, "/min"),
    ]


def test_news2_high_band_is_critical() -> None:
    score = news2(timeline(*vitals(rr=26, spo2=90, temp=39.5, sbp=88, hr=135)))
    assert score.score == 3 + 3 + 2 + 3 + 3 and score.band == "high"
    flag = score.flag()
    assert flag.severity == "critical" and flag.source == "rule" and "Observation/rr" in flag.citations
    assert "assumed room air, alert" in flag.rationale


def test_news2_normal_vitals_score_zero_low_band() -> None:
    score = news2(timeline(*vitals(rr=16, spo2=98, temp=37.0, sbp=125, hr=72)))
    assert score.score == 0 and score.band == "low" and score.flag().severity == "info"


def test_single_parameter_of_three_is_low_medium() -> None:
    score = news2(timeline(*vitals(rr=16, spo2=98, temp=37.0, sbp=125, hr=38)))
    assert score.score == 3 and score.band == "low-medium" and score.flag().severity == "warning"


def test_no_vitals_is_not_computable_not_zero() -> None:
    score = news2(timeline())
    assert score.score is None and score.not_computable is not None
    assert score.flag().title == "NEWS2 not computable"


def test_vitals_from_different_days_are_not_one_set() -> None:
    resources = vitals(rr=16, spo2=98, temp=37.0, sbp=125, hr=72)
    resources[0]["effectiveDateTime"] = "2024-02-20T08:00:00Z"
    assert news2(timeline(*resources)).not_computable == (
        "the latest vital signs were not taken within 24 hours of each other"
    )


def test_critical_labs_and_creatinine_rise() -> None:
    flags, _ = rule_flags(
        timeline(
            obs("k", "2823-3", 6.8, "mmol/L", category=LAB),
            obs("na", "2951-2", 138, "mmol/L", category=LAB),
            obs("lac", "2524-7", 2.5, "mmol/L", category=LAB),
            obs("cr0", "2160-0", 0.9, "mg/dL", when="2024-02-28T08:00:00Z", category=LAB),
            obs("cr1", "2160-0", 1.4, "mg/dL", when="2024-03-01T08:00:00Z", category=LAB),
        )
    )
    by_title = {f.title: f for f in flags}
    assert by_title["Critical potassium"].severity == "critical"
    assert by_title["Critical potassium"].citations == ["Observation/k"]
    assert by_title["Raised lactate"].severity == "warning"
    assert set(by_title["Creatinine rise (consider acute kidney injury)"].citations) == {
        "Observation/cr1",
        "Observation/cr0",
    }
    assert not any("sodium" in t.lower() for t in by_title)


def test_drug_allergy_conflict_by_class() -> None:
    flags, _ = rule_flags(
        timeline(
            {
                "resourceType": "AllergyIntolerance",
                "id": "a1",
                "patient": {"reference": "Patient/p1"},
                "criticality": "high",
                "code": {"text": "Penicillin"},
            },
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"text": "Amoxicillin 500 MG"},
            },
        )
    )
    conflict = next(f for f in flags if f.title.startswith("Possible allergy conflict"))
    assert conflict.severity == "critical" and conflict.citations == [
        "MedicationRequest/m1",
        "AllergyIntolerance/a1",
    ]


def test_merge_keeps_rules_drops_duplicate_model_flags_and_sorts() -> None:
    rule = Flag(
        severity="critical",
        title="Critical potassium",
        rationale="x",
        citations=["Observation/k"],
        source="rule",
    )
    duplicate = Flag(severity="warning", title="High K", rationale="y", citations=["Observation/k"])
    extra = Flag(severity="info", title="Other", rationale="z", citations=["Observation/q"])
    merged = merge_flags(
        [Flag(severity="info", title="NEWS2", rationale="", source="rule"), rule], [duplicate, extra]
    )
    assert [f.title for f in merged] == ["Critical potassium", "NEWS2", "Other"]


def test_old_critical_value_is_not_flagged_as_current() -> None:
    flags, _ = rule_flags(
        timeline(
            obs("k", "2823-3", 6.8, "mmol/L", when="2024-01-01T08:00:00Z", category=LAB),
            obs("na", "2951-2", 138, "mmol/L", when="2024-03-01T08:00:00Z", category=LAB),
        )
    )
    assert not any(f.title == "Critical potassium" for f in flags)
