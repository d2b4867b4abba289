#!/usr/bin/env python3
"""The discharge medication guide on generated records with admissions, printing tables.

    .venv/bin/python bench/discharge_eval.py [--population 400] [--seed 11] [--patients 12]

Records: clinosim patients discharged from a stay with discharge orders (a simulated population, so
they also take medicines at home before the stay). The expected changes are worked out here from the raw
FHIR JSON, independently of fhir_adapters/discharge.py: the discharge orders (category discharge) of the
latest finished inpatient encounter against the home orders (any other category but inpatient, active or
on hold, written before the stay or during it) by drug name; a drug in both is changed when its dose or
its frequency differs. Every started, changed and stopped medicine must be named in its section of the
guide in each language, the guide must pass the verifier, and its reading level is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinical_notes.compose import compose, sections  # noqa: E402
from clinical_notes.discharge import CHANGED, STARTED, STOPPED  # noqa: E402
from clinical_notes.draft import NoteDraft  # noqa: E402
from clinical_notes.kinds import get_kind  # noqa: E402
from clinical_notes.language import wording  # noqa: E402
from clinical_notes.readability import describe, readability  # noqa: E402
from clinical_notes.verifier import Verifier  # noqa: E402
from deploy import patients  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.evidence import RecordEvidence  # noqa: E402
from fhir_adapters.record import record_from_bundle  # noqa: E402

CACHE = REPO / ".cache" / "patients"
LANGUAGES = ("en", "fr", "ko", "zh-Hant")


def _category(r: dict[str, Any]) -> str | None:
    return next((c.get("code") for cat in r.get("category", []) for c in cat.get("coding", [])), None)


def _dose(r: dict[str, Any]) -> tuple[Any, Any]:
    first = (r.get("dosageInstruction") or [{}])[0]
    dose = next((d["doseQuantity"] for d in first.get("doseAndRate", []) if "doseQuantity" in d), None)
    repeat = first.get("timing", {}).get("repeat", {})
    amount = (dose.get("value"), dose.get("unit")) if dose else None
    frequency = (
        (repeat.get("frequency"), repeat.get("period", 1), repeat.get("periodUnit")) if repeat else None
    )
    return amount, frequency


def expected(bundle: dict[str, Any]) -> dict[str, set[str]]:
    """The started, changed and stopped drug names of the latest discharge, from the raw resources."""
    resources = [e["resource"] for e in bundle["entry"]]
    names = {
        id(e["resource"]): {e.get("fullUrl"), f"{e['resource']['resourceType']}/{e['resource'].get('id')}"}
        for e in bundle["entry"]
    }
    stays = [
        r
        for r in resources
        if r["resourceType"] == "Encounter"
        and r.get("class", {}).get("code") == "IMP"
        and r.get("status") == "finished"
        and r.get("period", {}).get("end")
    ]
    stay = max(stays, key=lambda r: r["period"]["end"])
    refs, start = names[id(stay)], stay["period"]["start"]
    orders = sorted(
        (
            r
            for r in resources
            if r["resourceType"] == "MedicationRequest" and r.get("status") != "entered-in-error"
        ),
        key=lambda r: r.get("authoredOn", ""),
    )
    linked = lambda r: r.get("encounter", {}).get("reference") in refs  # noqa: E731
    out = {
        r["medicationCodeableConcept"]["text"]: r for r in orders if _category(r) == "discharge" and linked(r)
    }
    home = {
        r["medicationCodeableConcept"]["text"]: r
        for r in orders
        if _category(r) not in ("inpatient", "discharge")
        and r.get("status") in ("active", "on-hold")
        and (r.get("authoredOn", "") <= start or linked(r))
    }
    changed = set()
    for name in out.keys() & home.keys():
        (dose, freq), (old_dose, old_freq) = _dose(out[name]), _dose(home[name])
        if (dose and old_dose and dose != old_dose) or (freq and old_freq and freq != old_freq):
            changed.add(name)
    return {STARTED: out.keys() - home.keys(), CHANGED: changed, STOPPED: home.keys() - out.keys()}


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--population", type=int, default=400)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--patients", type=int, default=12)
    args = parser.parse_args()
    folder = CACHE / f"clinosim-discharge-{args.patients}-seed{args.seed}"
    files = sorted(folder.glob("*.json"))
    if not files:
        files = patients.clinosim_discharge_bundles(
            args.patients, args.seed, patients.private(folder), population=args.population
        )
    kind = get_kind("discharge-medications")
    expected_total: Counter[str] = Counter()
    present: dict[str, Counter[str]] = {lang: Counter() for lang in LANGUAGES}
    rejected: Counter[str] = Counter()
    statements: Counter[str] = Counter()
    reading: dict[str, list[dict[str, Any]]] = {lang: [] for lang in LANGUAGES}
    for path in files:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        wanted = expected(bundle)
        for title, names in wanted.items():
            expected_total[title] += len(names)
        record = record_from_bundle(path)
        timeline = condense(record)
        for lang in LANGUAGES:
            words = wording(lang)
            composed = compose(kind, timeline, words)
            note = NoteDraft(kind=kind.name, sections=sections(kind, composed, {}))
            report = Verifier(RecordEvidence(record), wording=words).verify(note)
            statements[lang] += report.statements
            rejected[lang] += len(report.failing())
            for title, names in wanted.items():
                said = " ".join(s.text for s in composed.get(title, []))
                present[lang][title] += sum(name in said for name in names)
            reading[lang].append(readability([s.text for sec in note.sections for s in sec.statements], lang))
    where = f"population {args.population}, seed {args.seed}"
    print(f"Discharge guides: {len(files)} clinosim patients with a discharge ({where})")
    print(
        "| language | started present | changed present | stopped present | composed statements | rejected ",
        end="",
    )
    print("| reading level (mean) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for lang in LANGUAGES:
        cells = [f"{present[lang][t]}/{expected_total[t]}" for t in (STARTED, CHANGED, STOPPED)]
        keys = (
            [k for k in reading[lang][0] if isinstance(reading[lang][0][k], float)] if reading[lang] else []
        )
        mean = {k: round(statistics.mean(r[k] for r in reading[lang]), 1) for k in keys}
        print(
            f"| {lang} | "
            + " | ".join(cells)
            + f" | {statements[lang]} | {rejected[lang]} | {describe(mean)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
