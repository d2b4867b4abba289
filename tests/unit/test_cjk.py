"""Korean and traditional-Chinese drafts: composed statements in the locale's words and dates, accepted by the
verifier in that language; the verifier reads concepts, numbers, units, dates and hedges without spaces."""

from __future__ import annotations

from typing import Any

import pytest

from clinical_notes import cjk
from clinical_notes.compose import compose
from clinical_notes.concepts import content_stems, filler
from clinical_notes.draft import NoteDraft, Section, Statement
from clinical_notes.evidence import quantities_in
from clinical_notes.kinds import get_kind
from clinical_notes.language import CHINESE, KOREAN, Wording
from clinical_notes.prompts import messages
from clinical_notes.render import render_markdown
from clinical_notes.verifier import Verifier
from fhir_adapters.condense import condense
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import PatientRecord, record_from_bundle_json
from tests.unit.test_compose_french import french_record, of_patient

CJK = [KOREAN, CHINESE]


def korean_record() -> PatientRecord:
    """A record whose own words are Korean, as a Korean hospital's FHIR server writes them."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-05-01"},
        of_patient(
            "Condition",
            "htn",
            clinicalStatus={"coding": [{"code": "active"}]},
            code={"text": "고혈압"},
            onsetDateTime="2015-04-01",
        ),
        of_patient(
            "Condition",
            "dm",
            clinicalStatus={"coding": [{"code": "active"}]},
            code={"text": "제2형 당뇨병"},
            onsetDateTime="2018-09-10",
        ),
        of_patient(
            "Observation",
            "k",
            status="final",
            code={"text": "칼륨"},
            effectiveDateTime="2024-03-12",
            valueQuantity={"value": 5.9, "unit": "mmol/L"},
        ),
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    return record_from_bundle_json(bundle)


def check(
    record: PatientRecord, words: Wording, text: str, cites: list[str], title: str = "Assessment"
) -> set[str]:
    """The rules a single model statement breaks."""
    note = NoteDraft(
        kind="soap", sections=[Section(title=title, statements=[Statement(text=text, citations=cites)])]
    )
    return {v.rule for v in Verifier(RecordEvidence(record), wording=words).verify(note).violations}


@pytest.mark.parametrize("words", CJK, ids=lambda w: w.code)
def test_composed_statements_are_in_the_language_and_pass(words: Wording) -> None:
    record = french_record()
    timeline = condense(record)
    verifier = Verifier(RecordEvidence(record), wording=words)
    for name in ("progress", "soap", "triage"):
        kind = get_kind(name)
        composed = compose(kind, timeline, words)
        note = NoteDraft(kind=name, sections=[Section(title=t, statements=s) for t, s in composed.items()])
        report = verifier.verify(note)
        assert report.passed, report.violations
        texts = " ".join(s.text for sts in composed.values() for s in sts)
        assert cjk.has_cjk(texts)
        assert "2010-03-12" not in texts  # dates as the locale writes them
    problems = compose(get_kind("progress"), timeline, words)["Active problems"][0].text
    assert words.day("2010-03-12") in problems
    assert words.day("2010-03-12") == {"ko": "2010년 3월 12일", "zh-Hant": "2010年3月12日"}[words.code]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024년 3월 12일에 측정", "2024-03-12"),
        ("2024. 3. 12. 측정", "2024-03-12"),
        ("2024년 3월", "2024-03"),
        ("2024年3月12日測量", "2024-03-12"),
        ("民國113年3月12日", "2024-03-12"),
    ],
)
def test_dates_as_the_locales_write_them(text: str, iso: str) -> None:
    assert iso in cjk.for_checking(text)


def test_numbers_and_unit_words_touching_the_text_are_read() -> None:
    found = quantities_in(cjk.for_checking("칼륨6.1mmol/L이고 72세이며 體重70公斤"))
    assert [(q.value, q.unit) for q in found] == [(6.1, "mmol/L"), (72.0, "years"), (70.0, "kg")]


def test_particles_and_segmentation_do_not_hide_a_concept() -> None:
    assert "고혈압" in content_stems("고혈압이 조절되지 않습니다")
    assert "hyperten" in content_stems("고혈압이 조절되지 않습니다")  # the English concept too
    assert "hyperten" in content_stems("高血壓控制不佳")
    assert "hyperten" not in content_stems("혈압 140/90 mmHg")  # 혈압 (blood pressure) is not 고혈압
    assert not content_stems("환자의 결과를 검토했습니다")  # generic words name nothing


@pytest.mark.parametrize(
    ("words", "grounded", "other"),
    [
        (KOREAN, "고혈압이 조절되지 않을 가능성이 있습니다.", "당뇨병 조절을 고려하십시오."),
        (CHINESE, "高血壓可能控制不佳。", "建議考慮糖尿病控制。"),
    ],
    ids=["ko", "zh-Hant"],
)
def test_grounding_on_a_record_in_korean(words: Wording, grounded: str, other: str) -> None:
    record = korean_record()
    assert check(record, words, grounded, ["Condition/htn"]) == set()
    assert "ungrounded" in check(record, words, other, ["Condition/htn"])


@pytest.mark.parametrize(
    ("words", "right", "wrong_value", "wrong_date"),
    [
        (
            KOREAN,
            "칼륨 5.9 mmol/L (2024년 3월 12일)",
            "칼륨 6.4 mmol/L (2024년 3월 12일)",
            "칼륨 5.9 mmol/L (2024년 5월 2일)",
        ),
        (
            CHINESE,
            "鉀 5.9 mmol/L（2024年3月12日）",
            "鉀 6.4 mmol/L（2024年3月12日）",
            "鉀 5.9 mmol/L（2024年5月2日）",
        ),
    ],
    ids=["ko", "zh-Hant"],
)
def test_numbers_and_dates_must_be_in_the_cited_resource(
    words: Wording, right: str, wrong_value: str, wrong_date: str
) -> None:
    record = korean_record()
    assert check(record, words, right, ["Observation/k"], title="Plan") == set()
    assert "number_unsupported" in check(record, words, wrong_value, ["Observation/k"], title="Plan")
    assert "date_unsupported" in check(record, words, wrong_date, ["Observation/k"], title="Plan")


@pytest.mark.parametrize(
    ("words", "definitive", "hedged"),
    [
        (KOREAN, "환자는 고혈압을 앓고 있습니다.", "고혈압 조절 불량을 시사합니다."),
        (CHINESE, "病人確診高血壓。", "提示高血壓控制不佳。"),
    ],
    ids=["ko", "zh-Hant"],
)
def test_assessments_must_be_hedged(words: Wording, definitive: str, hedged: str) -> None:
    record = korean_record()
    assert "definitive_diagnosis" in check(record, words, definitive, ["Condition/htn"])
    assert "definitive_diagnosis" not in check(record, words, hedged, ["Condition/htn"])


def test_filler_and_titles_say_nothing() -> None:
    assert filler("이 문서는 환자의 병력 요약입니다.")
    assert filler("以下是病人的病史摘要。")
    record = korean_record()
    assert "hollow_statement" in check(record, KOREAN, "활성 문제", ["Condition/htn"])
    assert "hollow_statement" in check(record, CHINESE, "結果已檢視。", ["Condition/htn"])


@pytest.mark.parametrize("words", CJK, ids=lambda w: w.code)
def test_prompt_and_markdown_in_the_language(words: Wording) -> None:
    kind = get_kind("progress")
    system = messages(kind, "timeline", words=words)[0]["content"]
    assert words.prompt_rule in system
    note = NoteDraft(kind="progress", sections=[Section(title="Active problems", statements=[])])
    markdown = render_markdown(note, kind, {}, words=words)
    assert words.title("progress", kind.title) in markdown and words.banner in markdown
