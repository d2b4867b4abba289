"""Property tests: Bundle parsing, condensation and budget fitting never crash; must-keep facts survive."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinical_notes.budget import fit_budget
from clinical_notes.screen import triage
from clinical_notes.timeline_text import render_timeline
from clinical_notes.tokens import EstimateCounter
from fhir_adapters.condense import condense
from fhir_adapters.record import record_from_bundle_json
from services.core.errors import InputError

TODAY = date(2026, 1, 1)
FUZZ = settings(
    max_examples=800,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TRIED: dict[str, int] = {}

# Arbitrary JSON, the shape a hostile or broken server could send.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
any_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)

# Plausible but often wrong field values: good ones, malformed dates, wrong types.
dates = st.sampled_from(
    ["2020-01-01", "2024-03-05T10:00:00Z", "1999", "2021-02", "2024-13-45", "", "yesterday", "2030-01-01"]
)
codes = st.sampled_from(["active", "resolved", "inactive", "entered-in-error", "confirmed", "", "??"])
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.integers(-(10**6), 10**6),
)
messy = st.one_of(any_json, dates, codes)


def _concept(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(messy)
    code = draw(st.sampled_from(["2823-3", "2951-2", "8867-4", "38341003", "x"]))
    return {"coding": [{"system": "http://loinc.org", "code": code, "display": draw(st.text(max_size=20))}]}


def _status(draw: st.DrawFn) -> Any:
    return {"coding": [{"code": draw(codes)}]} if draw(st.booleans()) else draw(messy)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """One clinical resource of a type condensation reads, with fields that may be malformed."""
    type_name = draw(
        st.sampled_from(
            [
                "Condition",
                "MedicationRequest",
                "AllergyIntolerance",
                "Observation",
                "Encounter",
                "Procedure",
                "Immunization",
                "DocumentReference",
                "DiagnosticReport",
                "Unknown",
            ]
        )
    )
    r: dict[str, Any] = {
        "resourceType": type_name,
        "id": draw(st.from_regex(r"[A-Za-z0-9\-]{1,12}", fullmatch=True)),
    }
    subject = {"reference": draw(st.sampled_from(["Patient/p1", "Patient/other", "urn:uuid:p1", ""]))}
    r["patient" if type_name == "AllergyIntolerance" else "subject"] = subject
    fields: dict[str, Any] = {
        "code": _concept(draw),
        "clinicalStatus": _status(draw),
        "verificationStatus": _status(draw),
        "status": draw(
            st.sampled_from(["final", "active", "finished", "completed", "entered-in-error", "x"])
        ),
        "intent": "order",
        "onsetDateTime": draw(dates),
        "effectiveDateTime": draw(dates),
        "authoredOn": draw(dates),
        "period": {"start": draw(dates), "end": draw(dates)},
        "category": [{"coding": [{"code": draw(st.sampled_from(["laboratory", "vital-signs", "x"]))}]}],
        "valueQuantity": {"value": draw(numbers), "unit": draw(st.sampled_from(["mmol/L", "%", "/min", ""]))},
        "referenceRange": [{"low": {"value": draw(numbers)}, "high": {"value": draw(numbers)}}],
        "interpretation": [{"coding": [{"code": draw(st.sampled_from(["H", "L", "HH", "N", "A"]))}]}],
        "medicationCodeableConcept": _concept(draw),
        "vaccineCode": _concept(draw),
        "occurrenceDateTime": draw(dates),
        "performedDateTime": draw(dates),
        "class": {"code": draw(st.sampled_from(["AMB", "EMER", "IMP", ""]))},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": draw(st.sampled_from(["aGVsbG8=", "!!", ""])),
                }
            }
        ],
        "component": [{"code": _concept(draw), "valueQuantity": {"value": draw(numbers)}}],
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    for name in chosen:
        r[name] = fields[name] if draw(st.integers(0, 9)) else draw(messy)
    return r


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    """A Bundle with one Patient and up to 40 entries, some of them broken."""
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": draw(dates), "gender": draw(codes)}
    entries: list[Any] = [{"fullUrl": "urn:uuid:p1", "resource": patient}]
    for r in draw(st.lists(resources(), max_size=40)):
        entries.append(
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r} if draw(st.integers(0, 9)) else draw(messy)
        )
    bundle_type = draw(
        st.sampled_from(["collection", "searchset", "transaction", "document", "batch-response"])
    )
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def _count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


@FUZZ
@given(any_json)
def test_arbitrary_json_is_a_bundle_or_an_input_error(value: Any) -> None:
    _count("arbitrary JSON")
    try:
        record = record_from_bundle_json(value)
    except InputError:
        return
    condense(record, today=TODAY)


@FUZZ
@given(bundles(), st.integers(min_value=0, max_value=4000))
def test_messy_bundles_condense_and_fit_keeping_must_keep_facts(bundle: dict[str, Any], budget: int) -> None:
    _count("messy Bundles")
    try:
        record = record_from_bundle_json(copy.deepcopy(bundle))
    except InputError:
        return
    full = condense(record, today=TODAY)
    render_timeline(full)
    screened, flags = triage(full)  # the triage screen says what it could not assess; it never raises
    assert screened.statement and all(f.rationale for f in flags)
    fitted = fit_budget(full, budget, EstimateCounter())
    text = render_timeline(fitted)
    assert {p.ref for p in fitted.problems if p.active} == {p.ref for p in full.problems if p.active}
    assert {m.ref for m in fitted.medications if m.active} == {m.ref for m in full.medications if m.active}
    assert {a.ref for a in fitted.allergies} == {a.ref for a in full.allergies}
    for series in full.labs:
        if series.latest_abnormal is not None:
            kept = next(s for s in fitted.labs if s.code == series.code and s.name == series.name)
            assert kept.latest_abnormal is not None
            assert kept.latest_abnormal.ref == series.latest_abnormal.ref
            assert f"[{fitted.key(series.latest_abnormal.ref)}]" in text


def test_zz_report_inputs_tried() -> None:
    """Print how many inputs each property saw (run with -s to see it)."""
    print(f"\nfuzz inputs tried: {TRIED}")
    assert sum(TRIED.values()) > 0
