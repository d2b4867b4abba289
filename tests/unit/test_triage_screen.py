"""The triage screen of an encounter: inputs read from FHIR, ESI A/B/D, supporting scores, bad input.

The CTAS and KTAS rules, complaints in other languages and the tiers are in test_triage_scales.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from clinical_notes.complaints import normalize, read_complaint
from clinical_notes.rules import rule_flags
from clinical_notes.screen import Screen, screen
from fhir_adapters.condense import condense
from fhir_adapters.record import record_from_bundle_json

LOINC = "http://loinc.org"
VITAL = [{"coding": [{"code": "vital-signs"}]}]
START = "2024-03-01T08:00:00Z"
ENC = "Encounter/e1"


def obs(
    rid: str, code: str, value: float | str, unit: str | None = None, encounter: str | None = ENC
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": VITAL,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": "2024-03-01T08:05:00Z",
    }
    if encounter:
        resource["encounter"] = {"reference": encounter}
    if isinstance(value, str):
        resource["valueString"] = value
    else:
        resource["valueQuantity"] = {"value": value, **({"unit": unit} if unit else {})}
    return resource


def bp(rid: str, systolic: float, unit: str = "mm[Hg]") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": VITAL,
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": "2024-03-01T08:05:00Z",
        "encounter": {"reference": ENC},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "unit": unit},
            }
        ],
    }


def vitals(
    hr: float = 80, rr: float = 16, sbp: float = 125, spo2: float = 98, temp: float = 37.0
) -> list[dict[str, Any]]:
    return [
        obs("hr", "8867-4", hr, "/min"),
        obs("rr", "9279-1", rr, "/min"),
        bp("bp", sbp),
        obs("sat", "2708-6", spo2, "%"),
        obs("t", "8310-5", temp, "Cel"),
    ]


def encounter(
    encounter_class: str = "EMER",
    reason: str | None = None,
    rid: str = "e1",
    start: str = START,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": encounter_class},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": start},
        **extra,
    }
    if reason:
        resource["reasonCode"] = [{"text": reason}]
    return resource


def timeline(*resources: dict[str, Any], birth: str | None = "1970-01-01"):  # type: ignore[no-untyped-def]
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if birth:
        patient["birthDate"] = birth
    entries = [{"resource": patient}, *({"resource": r} for r in resources)]
    return condense(
        record_from_bundle_json({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )


def run(*resources: dict[str, Any], birth: str | None = "1970-01-01") -> Screen:
    return screen(timeline(*resources, birth=birth))


def titles(result: Screen) -> dict[str, str]:
    return {f.title: f.severity for f in result.flags}


# --- complaint normalizer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("CP", "chest pain"),
        ("SOB", "shortness of breath"),
        ("AMS", "altered mental status"),
        ("SI", "suicidal ideation"),
        ("OD", "overdose"),
        ("s/p fall", "status post fall"),
        ("ETOH", "alcohol"),
        ("N/V/D", "nausea vomiting diarrhea"),
        ("LOC", "loss of consciousness"),
        ("Chest Pain!!", "chest pain"),
        ("abd pain, N/V", "abdominal pain, nausea vomiting"),
        ("suicidial", "suicidal"),
        ("abdmoinal pain", "abdominal pain"),
        ("haematemesis", "hematemesis"),
        ("SI joint pain", "si joint pain"),
    ],
)
def test_normalizer_expands_abbreviations_and_fixes_spelling(written: str, normalized: str) -> None:
    assert normalize(written) == normalized


@pytest.mark.parametrize(
    ("complaint", "concept"),
    [
        ("CP", "chest_pain"),
        ("L sided weakness", "stroke"),
        ("left side motor weakness", "stroke"),
        ("mental change", "confusion"),
        ("SI/HI", "suicidal"),
        ("s/p OD", "overdose"),
        ("vomitting blood", "gi_bleed"),
        ("unresponsvie", "unresponsive"),
        ("s/p arrest", "cardiac_arrest"),
        ("severe flank pain", "severe_pain"),
    ],
)
def test_concepts_found_in_hurried_text(complaint: str, concept: str) -> None:
    assert read_complaint(complaint).has(concept)


@pytest.mark.parametrize(
    "complaint",
    ["denies chest pain", "hx of CVA, fall", "obstructive sleep apnea", "SI joint pain", "no SI"],
)
def test_negated_historical_and_lookalike_mentions_are_not_findings(complaint: str) -> None:
    found = read_complaint(complaint)
    assert not [f for f in found.findings if f.concept.point in ("A", "B")], found.findings


def test_complaint_in_a_language_the_lexicon_lacks_is_unread_not_silently_passed() -> None:
    spanish = read_complaint("dolor de pecho")
    assert spanish.unread == "appears to be in Spanish (dolor, pecho), which the lexicon lacks"
    assert read_complaint("胸が痛い").unread == "is in Japanese, which the complaint lexicon lacks"
    assert read_complaint("chest pain").unread is None


# --- inputs read from FHIR ------------------------------------------------------------------------------


def test_complaints_from_reason_observation_triage_note_and_diagnosis() -> None:
    note = base64.b64encode(b"Triage level: ESI Level 2\nChief complaint: CP radiating to L arm\n").decode()
    result = run(
        encounter(reason="Chest pain"),
        obs("cc", "8661-1", "SOB"),
        {
            "resourceType": "DocumentReference",
            "id": "d1",
            "status": "current",
            "type": {"coding": [{"system": LOINC, "code": "54094-8"}]},
            "subject": {"reference": "Patient/p1"},
            "context": {"encounter": [{"reference": ENC}]},
            "content": [{"attachment": {"contentType": "text/plain", "data": note}}],
        },
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": ENC},
            "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
            "code": {"text": "Sepsis"},
        },
        *vitals(),
    )
    sources = " ".join(result.complaints)
    for expected in ("(chief complaint)", "(triage note)", "(reason for visit)", "(encounter diagnosis)"):
        assert expected in sources
    assert "ESI Level" not in sources  # the note's label is never read
    chest = next(f for f in result.flags if "chest pain" in f.title)
    assert chest.severity == "warning" and chest.complaint == "CP radiating to L arm"
    assert set(chest.citations) >= {"DocumentReference/d1", ENC}
    assert any(f.title == "High-risk complaint: possible sepsis" for f in result.flags)


def test_admission_is_screened_at_the_ed_visit_it_began_with() -> None:
    admission = encounter("IMP", rid="adm", start="2024-03-01T13:00:00Z")
    result = run(admission, encounter(reason="CP", partOf={"reference": "Encounter/adm"}), *vitals())
    assert result.encounter == ENC and result.encounter_class == "EMER"


# --- ESI decision points ---------------------------------------------------------------------------------


def test_quiet_adult_visit_meets_no_criterion() -> None:
    result = run(encounter(reason="ankle sprain"), *vitals())
    assert result.severity == "info"
    assert result.statement.startswith("Meets no ESI level-1 or level-2 criterion")
    assert result.level is None and result.consider is None


def test_statement_names_complaint_and_what_to_consider() -> None:
    result = run(encounter(reason="CP"), *vitals(hr=118))
    assert result.statement.startswith(
        "Meets ESI level 2 (emergent): chest pain (possible acute coronary syndrome) ('CP')."
    )
    assert "heart rate 118 /min > 100" not in result.statement  # level 2 is met: nothing lower to consider
    quiet = run(encounter(reason="cough"), *vitals(hr=118))
    considered = "Danger-zone vital signs: consider level 2 (heart rate 118 /min > 100)"
    assert f"Consider ESI level 2 (emergent): {considered}" in quiet.statement
    assert quiet.severity == "info" and quiet.consider == 2


@pytest.mark.parametrize(
    ("spo2", "severity", "consider"),
    [(89, "critical", None), (90, "info", 2), (91, "info", 2), (92, "info", None)],
)
def test_spo2_edges_a_below_90_d_below_92_is_only_considered(
    spo2: float, severity: str, consider: int | None
) -> None:
    result = run(encounter(reason="cough"), *vitals(spo2=spo2))
    assert result.severity == severity and result.consider == consider


@pytest.mark.parametrize(("hr", "flagged"), [(100, False), (101, True)])
def test_adult_danger_zone_heart_rate(hr: float, flagged: bool) -> None:
    result = run(encounter(reason="cough"), *vitals(hr=hr))
    assert any(t.startswith("Danger-zone") for t in titles(result)) is flagged


@pytest.mark.parametrize(
    ("birth", "hr", "rr", "flagged"),
    [
        ("2024-01-10", 180, 50, False),  # 7 weeks: HR > 180 or RR > 50
        ("2024-01-10", 181, 30, True),
        ("2022-06-01", 160, 40, False),  # 21 months: HR > 160 or RR > 40
        ("2022-06-01", 150, 41, True),
        ("2018-06-01", 140, 30, False),  # 5 years: HR > 140 or RR > 30
        ("2018-06-01", 141, 20, True),
        ("2010-06-01", 101, 16, True),  # 13 years: adult limits
    ],
)
def test_paediatric_danger_zone_by_age(birth: str, hr: float, rr: float, flagged: bool) -> None:
    result = run(encounter(reason="cough"), *vitals(hr=hr, rr=rr), birth=birth)
    assert any(t.startswith("Danger-zone") for t in titles(result)) is flagged


def test_unknown_age_uses_adult_limits_and_says_so() -> None:
    result = run(encounter(reason="cough"), *vitals(hr=105), birth=None)
    assert (
        "Danger-zone vital signs (over 8 years: age not recorded, adult limits used): consider level 2"
        in (titles(result))
    )
    assert "Age not recorded" in titles(result)


def test_fever_in_a_newborn_is_at_least_level_2_in_an_infant_only_considered() -> None:
    result = run(encounter(reason="fussy"), *vitals(hr=150, rr=40, temp=38.2), birth="2024-02-20")
    assert titles(result)["Fever in a newborn (28 days or younger)"] == "warning"
    infant = run(encounter(reason="fussy"), *vitals(hr=150, rr=40, temp=38.2), birth="2024-01-10")
    assert titles(infant)["Fever in an infant of 1 to 3 months"] == "info" and infant.consider == 2


@pytest.mark.parametrize(
    ("pain", "considered"), [(6, False), (7, True), ("8", True), ("7-8", True), ("UTA", False)]
)
def test_severe_pain_at_seven_is_considered_never_raised(pain: float | str, considered: bool) -> None:
    result = run(encounter(reason="ankle sprain"), *vitals(), obs("pain", "72514-3", pain))
    assert (titles(result).get("Severe pain: consider level 2") == "info") is considered
    assert result.severity == "info" and (result.consider == 2) is considered


@pytest.mark.parametrize(
    ("reading", "title", "severity"),
    [
        (("gcs", "9269-2", 8), "Unresponsive", "critical"),
        (("gcs", "9269-2", 13), "Reduced consciousness: confused, lethargic or disoriented", "warning"),
        (
            ("avpu", "80288-4", "Responds to voice"),
            "Reduced consciousness: confused, lethargic or disoriented",
            "warning",
        ),
        (("avpu", "80288-4", "Unresponsive"), "Unresponsive", "critical"),
    ],
)
def test_consciousness(reading: tuple[str, str, Any], title: str, severity: str) -> None:
    result = run(encounter(reason="fall"), *vitals(), obs(*reading))
    assert titles(result)[title] == severity


def test_life_threatening_complaint_is_critical() -> None:
    result = run(encounter(reason="cardiac arrest, CPR in progress"))
    assert titles(result)["Life-threatening complaint: cardiac arrest"] == "critical"
    assert result.statement.startswith("Meets ESI level 1 (resuscitation): cardiac arrest")
    assert result.level == 1


# --- sepsis screens, shock index, NEWS2, missing vitals -----------------------------------------------------


def test_qsofa_at_its_limits_is_a_supporting_score() -> None:
    result = run(encounter(reason="weak"), *vitals(rr=22, sbp=100))
    assert titles(result)["qSOFA 2"] == "info"
    assert "Supporting scores, not criteria of the scale: qSOFA 2" in result.statement
    assert not any(
        t.startswith("qSOFA") for t in titles(run(encounter(reason="weak"), *vitals(rr=21, sbp=101)))
    )


def test_sirs_names_the_suspected_infection_and_stays_at_info() -> None:
    febrile = vitals(hr=95, temp=38.4)
    assert titles(run(encounter(reason="fever, productive cough"), *febrile))[
        "SIRS 2 of 3 with suspected infection"
    ] == ("info")
    assert titles(run(encounter(reason="ankle sprain"), *febrile))["SIRS 2 of 3"] == "info"


@pytest.mark.parametrize(("hr", "flagged"), [(99, False), (100, True)])
def test_shock_index_at_one(hr: float, flagged: bool) -> None:
    result = run(encounter(reason="dizzy"), *vitals(hr=hr, sbp=100))
    assert any(t.startswith("Shock index") for t in titles(result)) is flagged


def test_news2_scored_on_the_presentation_set_beside_the_scale() -> None:
    result = run(encounter(reason="weak"), *vitals(hr=135, rr=26, sbp=88, spo2=90, temp=39.5))
    news = next(f for f in result.flags if f.title.startswith("NEWS2"))
    assert news.title == "NEWS2 14 (high risk) at presentation" and news.severity == "info"
    assert "NEWS2 14 (high risk) at presentation" in result.statement


def test_ed_visit_without_vitals_is_said_not_assessed_an_office_visit_is_not() -> None:
    found = run(encounter(reason="found down"))
    flag = next(f for f in found.flags if f.title == "No triage vital signs recorded")
    assert (
        flag.severity == "info" and flag.not_assessed and "cannot rule levels 1 and 2 out" in flag.rationale
    )
    assert "No triage vital signs recorded" not in titles(run(encounter("AMB", reason="check up")))


# --- bad input --------------------------------------------------------------------------------------------


def test_no_encounter_is_said_not_assessed() -> None:
    result = run(*[obs(f"x{i}", "8867-4", 80, "/min", encounter=None) for i in range(1)])
    assert result.encounter is None and result.severity == "info"
    assert result.statement == "Not assessed: the record has no encounter."


def test_fahrenheit_and_kpa_are_converted_and_shown() -> None:
    resources = vitals()
    resources[4] = obs("t", "8310-5", 101.3, "F")
    resources[2] = bp("bp", 12, unit="kPa")
    result = run(encounter(reason="fever, cough"), *resources)
    news = next(f for f in result.flags if f.title.startswith("NEWS2"))
    assert "temperature 101.3 °F (38.5 °C)" in news.values
    assert "systolic BP 12 kPa (90 mmHg)" in news.values


def test_impossible_values_are_not_assessed_with_the_reason() -> None:
    resources = vitals()
    resources[0] = obs("hr", "8867-4", 0, "/min")
    resources[3] = obs("sat", "2708-6", 140, "%")
    result = run(encounter(reason="cough"), *resources)
    found = {f.title: f.rationale for f in result.flags if f.not_assessed}
    assert (
        "Heart rate not assessed" in found
        and "systolic BP 125 mmHg in the same set show a pulse" in found["Heart rate not assessed"]
    )
    assert "SpO2 140 % is not a possible reading" in found["SpO2 not assessed"]
    assert not any(f.title.startswith("Shock index") for f in result.flags)


def test_unit_of_the_wrong_dimension_is_not_assessed() -> None:
    resources = vitals()
    resources[0] = obs("hr", "8867-4", 80, "mm[Hg]")
    found = {f.title: f.rationale for f in run(encounter(reason="cough"), *resources).flags}
    assert "unit 'mm[Hg]' is not a rate per minute" in found["Heart rate not assessed"]


def test_foreign_complaint_is_said_not_read() -> None:
    result = run(encounter(reason="dolor de pecho"), *vitals())
    unread = next(f for f in result.flags if f.title == "Complaint not read")
    assert "in Spanish" in unread.rationale and unread.not_assessed and unread.severity == "info"


# --- the note kind uses the same rules ---------------------------------------------------------------------


def test_rule_flags_keep_news2_first_and_add_the_screen() -> None:
    flags, score = rule_flags(timeline(encounter(reason="CP"), *vitals()))
    assert flags[0].title.startswith("NEWS2") and score.score == 0
    assert any(f.title == "High-risk complaint: chest pain (possible acute coronary syndrome)" for f in flags)
    assert sum(f.title.startswith("NEWS2") for f in flags) == 1


def test_children_are_not_given_adult_sepsis_screens_and_the_age_is_said_in_whole_years() -> None:
    result = run(encounter(reason="fever, cough"), *vitals(hr=130, rr=30, temp=38.9), birth="2006-09-01")
    skipped = next(f for f in result.flags if f.title == "Sepsis screens and shock index not assessed")
    assert "the patient is 17 years old" in skipped.rationale and skipped.not_assessed
    assert not any(f.title.startswith(("qSOFA", "SIRS", "Shock index")) for f in result.flags)
