#!/usr/bin/env python3
"""SOAP notes from visit transcripts on ACI-Bench (issue 21), printing tables.

    .venv/bin/python bench/soap_eval.py composed [--split train valid]  # recall of what code composes
    .venv/bin/python bench/soap_eval.py planted [--split train valid]   # planted errors in turn citations
    .venv/bin/python bench/soap_eval.py llm --split valid --limit 3     # first answers of the configured LLM:
                                                                        # ROUGE, kept/written, tokens, time
    .venv/bin/python bench/soap_eval.py llm --kinds soap progress --show-rejections  # each rejection

Each encounter becomes a FHIR Bundle (Patient, Encounter, transcript DocumentReference: bench/aci_bundles.py).
Develop on train; valid, reported beside it, was held out until its misses were read on 2026-12-07 (the
test splits stay held back). Recall counts what the reference note states and
the transcript contains: medications with their dose (the reference's drug name and "N mg" said in the
transcript), and symptoms the reference reports or denies (read by the same medspaCy ConText pipeline) whose
words the transcript holds. A negation flip is a composed statement whose polarity is the opposite of every
statement the reference note makes of the same symptom, with no composed statement agreeing with it. The
LLM run reads the served model from the endpoint (EHRSUM_LLM_BASE_URL, EHRSUM_LLM_MODEL) and labels every
figure with it.
Anchors (ACI-Bench test 1, full note): GPT-4 ROUGE-1/2/L 51.76/22.58/45.97, MEDCON 57.78.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.aci_bundles import AciEncounter, aci_bundle, encounters  # noqa: E402
from clinical_notes.concepts import content_stems  # noqa: E402
from clinical_notes.draft import NoteDraft, Section, Statement  # noqa: E402
from clinical_notes.transcript import Transcript  # noqa: E402
from clinical_notes.transcript_checks import TurnEvidence, WithTranscript  # noqa: E402
from clinical_notes.transcript_compose import transcript_statements  # noqa: E402
from clinical_notes.transcript_facts import (  # noqa: E402
    TranscriptFacts,
    facts_of,
    pipeline,
    spoken_number,
    statement_polarity,
)
from clinical_notes.verifier import Verifier  # noqa: E402
from fhir_adapters.evidence import RecordEvidence  # noqa: E402
from fhir_adapters.record import PatientRecord, record_from_bundle_json  # noqa: E402
from fhir_adapters.transcripts import find_transcript  # noqa: E402
from services.core.settings import get_settings  # noqa: E402
from workers.transcripts import rules_of  # noqa: E402

# Sections of a reference note that say what the patient reports or denies.
SUBJECTIVE_HEADINGS = re.compile(
    r"^(CHIEF COMPLAINT|HISTORY OF PRESENT ILLNESS|HPI|REVIEW OF SYSTEMS|ROS|SUBJECTIVE)\b", re.IGNORECASE
)
HEADING = re.compile(r"^[A-Z][A-Z /&]{3,}$")
DOSE = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|units?|g)\b", re.IGNORECASE)


@dataclass
class Case:
    """One encounter read: its record, transcript, facts and composed statements."""

    encounter: AciEncounter
    record: PatientRecord
    transcript: Transcript
    facts: TranscriptFacts
    composed: dict[str, list[Statement]]

    def statements(self) -> list[Statement]:
        return [s for section in self.composed.values() for s in section]

    def evidence(self) -> WithTranscript:
        return WithTranscript(RecordEvidence(self.record), [(self.transcript, self.facts)])

    def verifier(self) -> Verifier:
        return Verifier(self.evidence())


def read_case(encounter: AciEncounter) -> Case:
    """Bundle → record → transcript → facts → composed statements, as the pipeline does them."""
    record = record_from_bundle_json(aci_bundle(encounter))
    found = asyncio.run(find_transcript(record, rules_of(get_settings()), encounter=None))
    assert found.transcript is not None
    facts = facts_of(found.transcript)
    return Case(encounter, record, found.transcript, facts, transcript_statements(found.transcript, facts))


def subjective_text(note: str) -> str:
    """The reference note's chief complaint, history and review of systems."""
    keep, out = False, []
    for line in note.splitlines():
        stripped = line.strip()
        if HEADING.match(stripped):
            keep = bool(SUBJECTIVE_HEADINGS.match(stripped))
            continue
        if keep and stripped:
            out.append(stripped)
    return "\n".join(out)


def reference_symptoms(note: str) -> dict[str, list[str]]:
    """Symptom → reported/denied as the reference note's subjective sections state it, first statement
    first ("denies left knee pain ... reports right knee pain": knee pain, both)."""
    found: dict[str, list[str]] = {}
    for sentence in pipeline()(subjective_text(note)).sents:
        for name, status in statement_polarity(sentence.text).items():
            if name != "pain" and status not in found.setdefault(name, []):
                found[name].append(status)
    return found


def reference_medications(note: str, transcript: str) -> set[tuple[str, str]]:
    """(drug, dose) pairs of the reference note whose drug and dose number the transcript says."""
    said = transcript.lower()
    numbers = {n for w in re.findall(r"[a-z0-9.\-]+", said) if (n := spoken_number(w)) is not None}
    out = set()
    doc = pipeline()(note)
    for ent in doc.ents:
        if ent.label_ != "DRUG":
            continue
        match = DOSE.match(doc[ent.end : ent.end + 3].text)
        name = ent.text.lower()
        if match and name in said and float(match[1]) in numbers:
            out.add((name, f"{float(match[1]):g}"))
    return out


def in_transcript(name: str, transcript: Transcript) -> bool:
    """Whether the transcript's words name the symptom (before any reading of polarity)."""
    stems = content_stems(name)
    return any(stems <= content_stems(t.text) for t in transcript.turns)


@dataclass
class Tally:
    """Counts over encounters."""

    counts: Counter[str] = field(default_factory=Counter)
    flips: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def composed_figures(case: Case, tally: Tally) -> None:
    """Recall of medications with dose and of reported/denied symptoms; flips; composed statements' checks."""
    statements = case.statements()
    said = " ".join(s.text.lower() for s in statements)
    for drug, dose in reference_medications(case.encounter.reference, case.encounter.transcript):
        tally.counts["meds"] += 1
        hit = re.search(rf"\b{re.escape(drug)} {re.escape(dose)} (mg|mcg|units|g)\b", said) is not None
        tally.counts["meds_hit"] += hit
        if not hit:
            tally.misses.append(f"{case.encounter.id}: {drug} {dose}")
    composed: dict[str, set[str]] = defaultdict(set)
    for s in statements:
        for name, status in statement_polarity(s.text).items():
            composed[name].add(status)
    for name, statuses in reference_symptoms(case.encounter.reference).items():
        if not in_transcript(name, case.transcript):
            continue
        status = statuses[0]  # recall of what the reference says first, as before
        tally.counts[f"symptoms_{status}"] += 1
        tally.counts[f"symptoms_{status}_hit"] += status in composed.get(name, set())
        # A flip states the opposite of every statement the reference makes of it; the reference may say
        # both of one name, for two sides (the names carry no laterality).
        if composed.get(name) and not composed[name] & set(statuses):
            tally.counts["flips"] += 1
            tally.flips.append(
                f"{case.encounter.id}: reference {status} {name}, composed {sorted(composed[name])}"
            )
    report = case.verifier().verify(
        NoteDraft(
            kind="soap", sections=[Section(title=t, statements=v) for t, v in case.composed.items() if v]
        )
    )
    tally.counts["statements"] += report.statements
    tally.counts["false_rejects"] += len(report.failing())
    tally.counts["uncertain"] += sum(s.text.startswith("Possible ") for s in statements)


def cmd_composed(splits: list[str], limit: int | None) -> None:
    print(
        "| split | encounters | meds+dose recall | reported recall | denied recall | symptoms recall | "
        "negation flips | composed statements | composed rejected | uncertain (speaker) | s/encounter |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    details: dict[str, Tally] = {}
    for split in splits:
        tally = Tally()
        cases = encounters(split)[:limit]
        started = time.perf_counter()
        for encounter in cases:
            composed_figures(read_case(encounter), tally)
        c = tally.counts
        seconds = (time.perf_counter() - started) / max(1, len(cases))

        def ratio(hit: str, total: str, c: Counter[str] = c) -> str:
            return f"{c[hit] / c[total]:.3f} ({c[hit]}/{c[total]})" if c[total] else "n/a"

        c["symptoms"] = c["symptoms_reported"] + c["symptoms_denied"]
        c["symptoms_hit"] = c["symptoms_reported_hit"] + c["symptoms_denied_hit"]
        print(
            f"| {split} | {len(cases)} | {ratio('meds_hit', 'meds')} | "
            f"{ratio('symptoms_reported_hit', 'symptoms_reported')} | "
            f"{ratio('symptoms_denied_hit', 'symptoms_denied')} | "
            f"{ratio('symptoms_hit', 'symptoms')} | {c['flips']} | {c['statements']} | "
            f"{c['false_rejects']} | "
            f"{c['uncertain']} | {seconds:.2f} |"
        )
        details[split] = tally
    for split, tally in details.items():
        for line in tally.flips[:15]:
            print(f"flip ({split}): {line}")
        for line in tally.misses[:15]:
            print(f"medication missed ({split}): {line}")


MUTATIONS = ("negation flipped", "number changed", "unrelated turn cited", "uncited claim")


def _mutate(mutation: str, s: Statement, case: Case, rng: random.Random) -> Statement | None:
    text = s.text
    if mutation == "negation flipped":
        if text.startswith("Denies "):
            return s.model_copy(update={"text": "Reports " + text[len("Denies ") :]})
        if text.startswith("Reports "):
            return s.model_copy(update={"text": "Denies " + text[len("Reports ") :]})
        return None
    if mutation == "number changed":
        match = re.search(r"\b\d+(?:\.\d+)?\b", text)
        if not match:
            return None
        # A value no cited turn says (one a turn happens to say elsewhere is not a detectable change).
        turns = [case.evidence().evidence(ref) for ref in s.citations]
        said = {v for e in turns if isinstance(e, TurnEvidence) for v in e.numbers}
        value = float(match[0]) * 2 + 10
        while value in said:
            value += 7
        changed = f"{value:g}"
        return s.model_copy(update={"text": text[: match.start()] + changed + text[match.end() :]})
    if mutation == "unrelated turn cited":
        stems = content_stems(text)  # unrelated: no word of the statement, nor a synonym of one, in the turn
        evidence = case.evidence()
        others = [
            t
            for t in case.transcript.turns
            if len(t.text) > 30 and not (_terms(evidence, case.transcript.turn_ref(t.n)) & stems)
        ]
        if not others:
            return None
        return s.model_copy(update={"citations": [case.transcript.turn_ref(rng.choice(others).n)]})
    if mutation == "uncited claim":
        return s.model_copy(update={"citations": []})
    raise ValueError(mutation)


def cmd_planted(splits: list[str], limit: int | None) -> None:
    print("| split | mutation | planted | caught | catch rate |")
    print("|---|---|---|---|---|")
    for split in splits:
        rng = random.Random(21)
        planted: Counter[str] = Counter()
        caught: Counter[str] = Counter()
        clean = rejected = 0
        for encounter in encounters(split)[:limit]:
            case = read_case(encounter)
            verifier = case.verifier()
            cited = [s for s in case.statements() if s.citations]
            for s in cited:
                clean += 1
                rejected += not verifier.verify(_note(s)).passed
                for mutation in MUTATIONS:
                    bad = _mutate(mutation, s, case, rng)
                    if bad is None:
                        continue
                    planted[mutation] += 1
                    caught[mutation] += not verifier.verify(_note(bad)).passed
        for mutation in MUTATIONS:
            rate = caught[mutation] / planted[mutation] if planted[mutation] else float("nan")
            print(f"| {split} | {mutation} | {planted[mutation]} | {caught[mutation]} | {rate:.3f} |")
        total_p, total_c = sum(planted.values()), sum(caught.values())
        print(f"| {split} | all | {total_p} | {total_c} | {total_c / max(1, total_p):.3f} |")
        print(
            f"| {split} | clean composed statements rejected | {clean} | {rejected} | "
            f"{rejected / max(1, clean):.3f} |"
        )


def _terms(evidence: WithTranscript, ref: str) -> set[str]:
    found = evidence.evidence(ref)
    return found.terms if found else set()


def _note(s: Statement) -> NoteDraft:
    return NoteDraft(kind="soap", sections=[Section(title="Subjective", statements=[s])])


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 (x100), stemmed, as ACI-Bench reports them."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = scorer.score(reference, prediction)
    return {k: 100 * v.fmeasure for k, v in scores.items()}


def note_text(note: NoteDraft) -> str:
    """The draft's statements as prose, section by section (no banner, markers or Sources)."""
    return "\n".join(f"{s.title.upper()}\n" + "\n".join(x.text for x in s.statements) for s in note.sections)


def _first_answer(pipeline: Any, kind_name: str, job: Any) -> tuple[NoteDraft, Any, Any]:
    """One answer of the model for a kind (no regeneration), its verification, and the draft it makes."""
    from clinical_notes.kinds import get_kind
    from clinical_notes.verifier import without_failing
    from workers.assembly import assemble
    from workers.generation import Synthesis

    kind = get_kind(kind_name)
    generated = asyncio.run(pipeline.synthesizer.generate(kind, job.fitted, prepared=job, words=job.words))
    report = job.verifier().verify(generated.note)
    kept, dropped = without_failing(generated.note, report)
    draft = assemble(kind, job, Synthesis(note=kept, report=report, dropped=dropped)).note
    return generated.note, report, (draft, generated)


def cmd_llm(splits: list[str], limit: int | None, kinds: list[str], show: bool) -> None:
    """Each kind's first answer from the configured model: statements written and kept, each rejection
    (with --show-rejections: its text, to be read and classified), ROUGE of the SOAP draft, tokens, time."""
    from workers.clients import llm_client
    from workers.pipeline import Pipeline
    from workers.prepared import prepare
    from workers.transcripts import load_visit

    settings = get_settings()
    print(
        "| split | encounter | kind | model | ROUGE-1 | ROUGE-2 | ROUGE-L | model written | model kept | "
        "rejections by rule | prompt tok | completion tok | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    written = kept = 0
    rules: Counter[str] = Counter()
    scores: list[dict[str, float]] = []
    for split in splits:
        for encounter in encounters(split)[:limit]:
            record = record_from_bundle_json(aci_bundle(encounter))

            async def read_visit(record: PatientRecord = record) -> Any:
                return await load_visit(record, settings, encounter=None, client=None)

            visit = asyncio.run(read_visit())
            for kind in kinds:

                async def one(kind: str = kind, record: PatientRecord = record, visit: Any = visit) -> Any:
                    async with llm_client(settings) as llm:
                        pipeline = Pipeline(settings, llm=llm)
                        visited = visit if kind == "soap" else None
                        job = prepare(settings, pipeline.counter, record, visit=visited)
                        return await asyncio.to_thread(_first_answer, pipeline, kind, job)

                started = time.perf_counter()
                answer, report, (draft, generated) = asyncio.run(one())
                seconds = time.perf_counter() - started
                failing = report.failing()
                n_written, n_kept = report.statements, report.statements - len(failing)
                written, kept = written + n_written, kept + n_kept
                counts = report.counts()
                rules.update(counts)
                score = rouge(note_text(draft), encounter.reference) if kind == "soap" else {}
                if score:
                    scores.append(score)
                r1, r2, rl = (f"{score[k]:.2f}" if score else "-" for k in ("rouge1", "rouge2", "rougeL"))
                print(
                    f"| {split} | {encounter.id} | {kind} | {generated.served_model} | {r1} | {r2} | {rl} | "
                    f"{n_written} | {n_kept} | {counts} | {generated.usage.prompt_tokens} | "
                    f"{generated.usage.completion_tokens} | {seconds:.1f} |"
                )
                if show:
                    for v in report.violations:
                        i, j = (int(x) for x in re.findall(r"\d+", v.location)[:2])
                        statement = answer.sections[i].statements[j]
                        print(
                            f"  REJECTED [{v.rule}] {statement.text!r} cites {statement.citations}: "
                            f"{v.detail}"
                        )
    if scores:
        means = {k: statistics.mean(s[k] for s in scores) for k in ("rouge1", "rouge2", "rougeL")}
        print(
            f"mean ROUGE-1/2/L over {len(scores)} SOAP drafts: "
            f"{means['rouge1']:.2f}/{means['rouge2']:.2f}/{means['rougeL']:.2f}"
        )
    print(f"model statements written {written}, kept {kept}; rejections by rule: {dict(rules)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["composed", "planted", "llm"])
    parser.add_argument("--split", nargs="+", default=["train", "valid"], choices=["train", "valid"])
    parser.add_argument("--limit", type=int, help="encounters per split")
    parser.add_argument("--kinds", nargs="+", default=["soap"])
    parser.add_argument("--show-rejections", action="store_true")
    args = parser.parse_args()
    if args.command == "composed":
        cmd_composed(args.split, args.limit)
    elif args.command == "planted":
        cmd_planted(args.split, args.limit)
    else:
        cmd_llm(args.split, args.limit, args.kinds, args.show_rejections)


if __name__ == "__main__":
    main()
