#!/usr/bin/env python3
"""Guideline retrieval and the checks of passage-cited statements, printing tables.

    .venv/bin/python bench/guidelines_eval.py            # recall@5 per record set, planted errors

Recall@5: for each active problem of each record that bench/guideline_labels.json labels, whether one of
the passages a clinician picked is among the 5 retrieved for it; for the other active problems, whether
retrieval rightly returns nothing (the draft then says no passage covers them). Planted errors: a clean
model statement per labelled (problem, passage) pair quotes a sentence of the passage and cites the
problem and the passage; each mutation changes one thing a model gets wrong with guidelines.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinical_notes.draft import NoteDraft, Section, Statement  # noqa: E402
from clinical_notes.guidelines import WithGuidelines, retrieve  # noqa: E402
from clinical_notes.timeline import Passage  # noqa: E402
from clinical_notes.verifier import Verifier  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.evidence import RecordEvidence  # noqa: E402
from fhir_adapters.guidelines import load_library  # noqa: E402
from fhir_adapters.record import record_from_bundle  # noqa: E402

LABELS = REPO / "bench" / "guideline_labels.json"
LIBRARY = REPO / "deploy" / "guidelines"
PATIENTS = REPO / ".cache" / "patients"
K = 5
NUMBER_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)(\s*(?:mmHg|%|mg/dL|mL/min/1\.73m2|mEq/L|kg/m2|years|pounds))"
)
DRUGS = (
    "warfarin",
    "insulin",
    "amoxicillin",
    "aspirin",
    "levothyroxine",
    "clopidogrel",
    "metformin",
    "furosemide",
)


def sentence(p: Passage) -> str:
    """The passage's first sentence (what a model would lean on)."""
    return re.split(r"(?<=\.)\s", p.text.strip(), maxsplit=1)[0]


Mutation = Callable[[str, list[str], Passage, list[Passage], random.Random], Statement | None]


def changed_number(
    text: str, cites: list[str], p: Passage, _: list[Passage], rng: random.Random
) -> Statement | None:
    found = NUMBER_UNIT.search(text)
    if not found:
        return None
    new = f"{float(found[1]) + rng.choice([5, 10, 15]):g}"
    return Statement(text=text[: found.start(1)] + new + text[found.end(1) :], citations=cites)


def swapped_drug(
    text: str, cites: list[str], p: Passage, _: list[Passage], rng: random.Random
) -> Statement | None:
    other = next(d for d in rng.sample(DRUGS, len(DRUGS)) if d not in p.text.lower())
    return Statement(text=f"{text.rstrip('.')}; add {other}.", citations=cites)


def uncited(
    text: str, cites: list[str], p: Passage, _: list[Passage], rng: random.Random
) -> Statement | None:
    return Statement(text=text, citations=[c for c in cites if c != p.ref])


def unrelated_passage(
    text: str, cites: list[str], p: Passage, library: list[Passage], rng: random.Random
) -> Statement | None:
    others = [o for o in library if o.document != p.document]
    other = rng.choice(others)
    return Statement(text=text, citations=[c if c != p.ref else other.ref for c in cites])


def nonexistent_passage(
    text: str, cites: list[str], p: Passage, _: list[Passage], rng: random.Random
) -> Statement | None:
    return Statement(text=text, citations=[c if c != p.ref else f"{p.ref}-old" for c in cites])


MUTATIONS: dict[str, Mutation] = {
    "changed number": changed_number,
    "drug the passage does not name": swapped_drug,
    "recommendation without its passage": uncited,
    "cites an unrelated passage": unrelated_passage,
    "cites a passage not in the library": nonexistent_passage,
}


def main() -> int:
    """Print recall@5 per record set and the planted-error table."""
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    library = load_library(LIBRARY, 2_000_000)
    by_id = {p.id: p for p in library.passages}
    rng = random.Random(7)
    where = LIBRARY.relative_to(REPO)
    print(f"Library: {library.documents} documents, {len(library.passages)} passages ({where})")
    print("| record set | role | labelled problems | recall@5 | unlabelled problems | said 'no passage' |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    caught: Counter[str] = Counter()
    tried: Counter[str] = Counter()
    clean = rejected = 0
    for role, sets in labels["sets"].items():
        for name in sets:
            hit = total = none_total = none_right = 0
            for path in sorted((PATIENTS / name).glob("*.json")):
                record = record_from_bundle(path)
                timeline = condense(record)
                verifier = Verifier(WithGuidelines(RecordEvidence(record), library.passages))
                for need, hits in retrieve(library, timeline, K):
                    if need.what != "problem":
                        continue
                    wanted = labels["problems"].get(need.name)
                    if wanted is None:
                        none_total += 1
                        none_right += not hits
                        continue
                    total += 1
                    hit += any(p.id in wanted for p, _ in hits)
                    for passage in (by_id[w] for w in wanted):
                        text = f"For {need.name}, the guideline says: {sentence(passage)}"
                        cites = [need.ref, passage.ref]
                        note = NoteDraft(
                            kind="progress",
                            sections=[
                                Section(
                                    title="Plan considerations",
                                    statements=[Statement(text=text, citations=cites)],
                                )
                            ],
                        )
                        clean += 1
                        report = verifier.verify(note)
                        if not report.passed:
                            rejected += 1
                            print("  false reject:", text[:120], report.counts(), file=sys.stderr)
                        for mutation, mutate in MUTATIONS.items():
                            planted = mutate(text, cites, passage, library.passages, rng)
                            if planted is None:
                                continue
                            tried[mutation] += 1
                            bad = NoteDraft(
                                kind="progress",
                                sections=[Section(title="Plan considerations", statements=[planted])],
                            )
                            caught[mutation] += not verifier.verify(bad).passed
            recall = f"{hit / total:.2f}" if total else "n/a"
            print(f"| {name} | {role} | {total} | {recall} ({hit}/{total}) | {none_total} | {none_right} |")
    print("\n| planted error in a passage-cited statement | planted | caught | rate |")
    print("| --- | ---: | ---: | ---: |")
    for mutation in MUTATIONS:
        rate = caught[mutation] / max(tried[mutation], 1)
        print(f"| {mutation} | {tried[mutation]} | {caught[mutation]} | {rate:.1%} |")
    total_tried, total_caught = sum(tried.values()), sum(caught.values())
    print(f"| all | {total_tried} | {total_caught} | {total_caught / max(total_tried, 1):.1%} |")
    print(f"\nClean passage-cited statements: {clean}, rejected {rejected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
