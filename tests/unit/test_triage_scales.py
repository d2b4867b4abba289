"""The hospital's triage scale: CTAS and KTAS rules at their limits, tiers, complaints as written, bad
input."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes.complaint_proposals import NONE, TITLE, proposal_flag, proposal_schema
from clinical_notes.complaints import read_complaint
from clinical_notes.compose import compose
from clinical_notes.kinds import get_kind
from clinical_notes.rules import rule_flags
from clinical_notes.screen import Screen, screen
from clinical_notes.triage_context import ScaleName
from tests.unit.test_triage_screen import bp, encounter, obs, timeline, vitals

ADULT = "1970-01-01"


def run(*resources: dict[str, Any], scale: ScaleName = "ctas", birth: str | None = ADULT) -> Screen:
    return screen(timeline(*resources, birth=birth), scale=scale)


def criteria(result: Screen) -> dict[str, tuple[int | None, bool, str]]:
    """Each criterion met: its level, whether decisive, its tier."""
    return {f.title: (f.level, f.decisive, f.severity) for f in result.flags if f.level is not None}


def pain(value: float | str) -> dict[str, Any]:
    return obs("pain", "72514-3", value)


def bp_panel(systolic: float, diastolic: float) -> dict[str, Any]:
    panel = bp("bp", systolic)
    panel["component"].append(
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"},
        }
    )
    return panel


# --- first-order modifiers at their limits -------------------------------------------------------------


@pytest.mark.parametrize(
    ("gcs", "level", "severity"),
    [(9, 1, "critical"), (10, 2, "warning"), (13, 2, "warning"), (14, None, None)],
)
def test_consciousness_gcs_3_to_9_is_level_1_and_10_to_13_level_2(
    gcs: int, level: int | None, severity: str | None
) -> None:
    result = run(encounter(reason="fall"), *vitals(), obs("gcs", "9269-2", gcs))
    found = [f for f in result.flags if "level of consciousness:" in f.rule]
    assert [(f.level, f.severity) for f in found] == ([(level, severity)] if level else [])


@pytest.mark.parametrize(
    ("avpu", "level"), [("Alert", None), ("Verbal", 2), ("Pain", 1), ("Unresponsive", 1)]
)
def test_avpu_is_read_through_its_gcs_equivalent(avpu: str, level: int | None) -> None:
    result = run(encounter(reason="fall"), *vitals(), obs("avpu", "67775-7", avpu))
    assert result.level == (level or 5)


@pytest.mark.parametrize(
    ("spo2", "level", "severity"),
    [(89, 1, "critical"), (91, 2, "warning"), (92, 3, "info"), (95, None, None)],
)
def test_spo2_bands_of_respiratory_distress(spo2: float, level: int | None, severity: str | None) -> None:
    result = run(encounter(reason="cough"), *vitals(spo2=spo2))
    found = [(f.level, f.severity) for f in result.flags if f.title.startswith("Respiratory distress")]
    assert found == ([(level, severity)] if level else [])


def test_hypotension_is_compromise_and_with_reduced_consciousness_shock() -> None:
    compromise = run(encounter(reason="dizziness"), *vitals(sbp=88))
    assert criteria(compromise)["Haemodynamic compromise: hypotension"] == (2, True, "warning")
    assert run(encounter(reason="dizziness"), *vitals(sbp=90)).severity == "info"
    shock = run(encounter(reason="dizziness"), *vitals(sbp=88), obs("avpu", "67775-7", "Verbal"))
    assert criteria(shock)["Shock: hypotension with a decreased level of consciousness"] == (
        1,
        True,
        "critical",
    )


def test_tachycardia_alone_is_only_considered() -> None:
    result = run(encounter(reason="general weakness"), *vitals(hr=120))
    assert criteria(result)["Tachycardia: consider level 2"] == (2, False, "info")
    assert result.severity == "info" and result.level == 3 and result.consider == 2
    assert "Consider CTAS level 2 (Emergent): Tachycardia: consider level 2 (heart rate 120 /min)" in (
        result.statement
    )


@pytest.mark.parametrize(
    ("temp", "hr", "rr", "title", "level"),
    [
        (38.0, 95, 22, "Fever, looks septic (3 SIRS criteria)", 2),  # fever is 38.0 or more since 2008
        (38.4, 95, 20, "Fever with 2 of 3 SIRS criteria", 3),
        (37.9, 95, 22, None, None),
    ],
)
def test_fever_looks_septic_with_all_three_sirs_criteria(
    temp: float, hr: float, rr: float, title: str | None, level: int | None
) -> None:
    result = run(encounter(reason="fever"), *vitals(temp=temp, hr=hr, rr=rr))
    fever = {t: v for t, v in criteria(result).items() if t.startswith("Fever")}
    assert fever == ({title: (level, True, "warning" if level == 2 else "info")} if title else {})


@pytest.mark.parametrize(
    ("complaint", "score", "title", "level"),
    [
        ("abdominal pain", 8, "Severe central acute pain", 2),
        ("abdominal pain", 7, "Moderate central acute pain", 3),
        ("abd pain", 3, "Mild central acute pain", 4),
        ("chronic abdominal pain", 9, "Severe central chronic pain", 3),
        ("ankle pain", 9, "Severe peripheral acute pain", 3),
        ("knee pain", 5, "Moderate peripheral acute pain", 4),
        ("cough", 9, "Severe pain, site not read: consider level 2", 2),
    ],
)
def test_pain_by_site_severity_and_course(complaint: str, score: float, title: str, level: int) -> None:
    result = run(encounter(reason=complaint), *vitals(), pain(score))
    assert criteria(result)[title][0] == level
    assert result.severity == ("warning" if title.startswith("Severe central acute") else "info")


def test_hypertension_needs_a_symptom_for_level_2() -> None:
    with_headache = run(encounter(reason="headache"), *vitals()[:2], bp_panel(230, 120), *vitals()[3:])
    assert criteria(with_headache)["Hypertension (SBP >= 220 or DBP >= 130) with symptoms"] == (
        2,
        True,
        "warning",
    )
    without = run(encounter(reason="ankle sprain"), *vitals()[:2], bp_panel(205, 100), *vitals()[3:])
    assert criteria(without)["Hypertension (SBP 200-219 or DBP 110-129) without symptoms"][0] == 4


# --- complaint-specific modifiers and the tiers --------------------------------------------------------


def test_chest_pain_reads_as_cardiac_unless_the_complaint_says_chest_wall() -> None:
    cardiac = run(encounter(reason="CP"), *vitals())
    assert criteria(cardiac)["Chest pain with cardiac features"] == (2, True, "warning")
    assert cardiac.statement.startswith(
        "Meets CTAS level 2 (Emergent): Chest pain with cardiac features ('CP')."
    )
    wall = run(encounter(reason="pain, chest wall"), *vitals(), pain(3))
    assert wall.severity == "info" and wall.level == 4


def test_stroke_signs_are_decisive_in_esi_and_considered_in_ctas_by_onset() -> None:
    ctas = run(encounter(reason="L sided weakness"), *vitals())
    assert criteria(ctas)["Symptoms of stroke: consider level 2"] == (2, False, "info")
    assert ctas.severity == "info" and ctas.consider == 2
    esi = run(encounter(reason="L sided weakness"), *vitals(), scale="esi")
    assert esi.severity == "warning" and esi.level == 2


def test_no_discretionary_criterion_ever_raises_a_warning() -> None:
    resources = (
        encounter(reason="suicidal ideation, overdose, scrotal pain"),
        *vitals(hr=130, spo2=93),
        pain(9),
    )
    scales: tuple[ScaleName, ...] = ("esi", "ctas", "ktas")
    for scale in scales:
        result = run(*resources, scale=scale)
        considered = [f for f in result.flags if f.level is not None and not f.decisive]
        assert considered, scale
        assert all(f.severity == "info" for f in considered)


def test_ktas_speaks_its_own_words_and_reads_korean() -> None:
    result = run(encounter(reason="흉통"), *vitals(), scale="ktas")
    assert result.statement.startswith(
        "Meets KTAS level 2 (긴급 Emergency): Chest pain with cardiac features ('흉통')"
    )
    assert result.scale == "ktas" and result.severity == "warning"
    assert "Korean, read as 'chest pain' → Chest pain - cardiac features" in result.complaints[0]


def test_a_child_is_not_given_adult_vital_sign_modifiers() -> None:
    result = run(
        encounter(reason="fever"), *vitals(sbp=80, temp=39, hr=150, rr=30), birth="2014-01-01", scale="ktas"
    )
    assert "Paediatric vital-sign modifiers not assessed" in {f.title for f in result.flags}
    assert not any(f.title.startswith(("Haemodynamic", "Fever")) for f in result.flags)


def test_graded_level_of_a_quiet_visit_is_5_and_said() -> None:
    result = run(encounter(reason="ankle sprain"), *vitals())
    assert result.level == 5 and result.severity == "info"
    assert result.statement.startswith(
        "Meets no CTAS level-1 or level-2 criterion on what the record shows; graded CTAS level 5 "
        "(Non urgent): no modifier of a more urgent level applies"
    )


def test_the_triage_draft_speaks_the_scale_and_cites_what_it_names() -> None:
    t = timeline(encounter(reason="abdominal pain"), *vitals(hr=120), pain(9))
    flags, _ = rule_flags(t, "ctas")
    assert any(f.title == "Severe central acute pain" and f.severity == "warning" for f in flags)
    [line] = compose(get_kind("triage"), t, scale="ctas")["Findings"][:1]
    assert "Meets CTAS level 2 (Emergent): Severe central acute pain (pain score 9)" in line.text
    assert "Consider CTAS level" not in line.text  # tachycardia is no lower level than the one met
    assert {"Encounter/e1", "Observation/pain"} <= set(line.citations)


# --- complaints as written -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "language", "normalized", "listed"),
    [
        (
            "가슴 통증, 호흡곤란",
            "ko",
            "chest pain, dyspnea",
            ["Chest pain - cardiac features", "Shortness of breath"],
        ),
        ("흉통 없음, 발열", "ko", "no chest pain, fever", ["Fever"]),
        ("胸痛", "zh", "chest pain", ["Chest pain - cardiac features"]),
        ("無胸痛，發燒", "zh", "no chest pain, fever", ["Fever"]),  # noqa: RUF001 (as written in Chinese)
        ("douleur thoracique depuis ce matin", "fr", "chest pain", ["Chest pain - cardiac features"]),
        (
            "DT + dyspnée",
            "fr",
            "chest pain, dyspnea",
            ["Chest pain - cardiac features", "Shortness of breath"],
        ),
        ("pas de fièvre, céphalées", "fr", "no fever, headache", ["Headache"]),
        ("Pain, chest", "en", "chest pain", ["Chest pain - cardiac features"]),
        ("Blood Pressure, Low", "en", "low blood pressure", ["Hypotension"]),
        ("sorethroat", "en", "sore throat", ["Sore throat"]),
        ("G/W-General weakness", "en", "general weakness general weakness", ["General weakness"]),
        # A Synthea reason code as written: the demo's patient came in for it and it read as unmapped.
        ("opioid_drug_addiction", "en", "opioid drug addiction", ["Substance misuse/intoxication"]),
        ("alcohol withdrawal", "en", "alcohol withdrawal", ["Substance withdrawal"]),
    ],
)
def test_complaints_in_korean_chinese_french_and_shorthand_map_to_the_list(
    written: str, language: str, normalized: str, listed: list[str]
) -> None:
    read = read_complaint(written)
    assert (read.language, read.normalized, [c.name for c in read.complaints]) == (
        language,
        normalized,
        listed,
    )
    assert read.unmapped is None


def test_a_negated_foreign_complaint_raises_nothing() -> None:
    assert not read_complaint("흉통 없음").has("chest_pain")
    assert not read_complaint("无胸痛").has("chest_pain")
    assert not read_complaint("pas de douleur thoracique").has("chest_pain")


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("dolor de pecho", "appears to be in Spanish (dolor, pecho), which the lexicon lacks"),
        (
            "боль в груди",
            "is in Russian or another Cyrillic-script language, which the complaint lexicon lacks",
        ),
        ("??? ??", "has no letters to read (it may have been damaged on its way here)"),
        (
            "paperwork for work",
            "names no complaint of the presenting-complaint list (CEDIS) the lexicon holds",
        ),
        ("피곤함", "is in Korean, but none of its words is in the Korean table"),
    ],
)
def test_an_unmapped_complaint_is_said_unmapped_with_the_reason(written: str, why: str) -> None:
    assert read_complaint(written).unmapped == why
    result = run(encounter(reason=written), *vitals())
    said = next(f for f in result.flags if f.title in ("Complaint unmapped", "Complaint not read"))
    assert why in said.rationale and said.severity == "info" and said.not_assessed
    assert said.complaint == written  # the model may be asked to propose a mapping for it


def test_a_model_proposal_is_the_model_s_info_flag_and_none_is_nothing() -> None:
    flag = proposal_flag("paperwork for work", ["Encounter/e1"], {"complaint": "Medical device problem"})
    assert flag is not None and flag.source == "model" and flag.severity == "info"
    assert flag.title == f"{TITLE}: Medical device problem" and "not the record's" in flag.rationale
    assert proposal_flag("x", [], {"complaint": NONE}) is None
    assert proposal_flag("x", [], {"complaint": "Cardiac arrest!"}) is None
    assert NONE in proposal_schema()["properties"]["complaint"]["enum"]


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["esi", "ctas", "ktas"])
def test_bad_input_is_said_at_info_in_every_scale(scale: ScaleName) -> None:
    resources = vitals()
    resources[0] = obs("hr", "8867-4", 0, "/min")
    resources[3] = obs("sat", "2708-6", 140, "%")
    result = run(encounter(reason=None), *resources, pain(11), scale=scale)
    said = {f.title: f for f in result.flags if f.not_assessed}
    assert "a pulse" in said["Heart rate not assessed"].rationale
    assert "SpO2 140 % is not a possible reading" in said["SpO2 not assessed"].rationale
    assert "pain score 11 is not a possible reading" in said["Pain score not assessed"].rationale
    assert "No complaint recorded" in said
    assert all(f.severity == "info" for f in said.values())
    assert not any(
        f.title.startswith(("Severe", "Haemodynamic", "Respiratory distress")) for f in result.flags
    )
    bare = run(encounter(reason="abdominal pain"), scale=scale)
    assert "No triage vital signs recorded" in {f.title for f in bare.flags} and bare.severity == "info"
    no_sat = run(encounter(reason="abdominal pain"), *[r for r in vitals() if r["id"] != "sat"], scale=scale)
    assert no_sat.statement.endswith("Not assessed: NEWS2 not computable; SpO2 not recorded.")


def test_negative_pain_and_no_encounter_are_said() -> None:
    result = run(encounter(reason="abdominal pain"), *vitals(), pain(-1))
    assert "pain score -1 is not a possible reading" in next(
        f.rationale for f in result.flags if f.title == "Pain score not assessed"
    )
    empty = screen(timeline(birth=ADULT), scale="ktas")
    assert empty.statement == "Not assessed: the record has no encounter." and empty.scale == "ktas"
