#!/usr/bin/env python3
"""Census throughput on the CPU stack, and what a 500-bed morning census would take on one GPU (estimate).

.venv/bin/python bench/census.py [--patients 6] [--source carebundle|synthea] [--workers 1] [--concurrency 4]

Starts sekmet-fhir, the CPU vLLM (Gemma 3 270M), a Postgres database and `--workers` Celery workers, loads
the patients, puts them in a Group and runs `ehrsum census GROUP` (after a one-patient warm-up census that
compiles the answer grammar). Measured: wall time from the command's start to its closing table, patients
per minute, and each pipeline stage's seconds (the jobs' own timings in job_usage), of which the LLM's share
is the generate stage. The GPU estimate applies the measured per-patient service time and token counts to
stated GPU rates (flags; defaults derived in GPU_NOTE) and is printed as an estimate, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.llm_throughput import llm, service_env  # noqa: E402
from bench.stack import BIN, database, flush_redis, sekmet, spawn, stop_group  # noqa: E402
from deploy import patients  # noqa: E402
from deploy.llm_cpu import cache_dir  # noqa: E402

REDIS = "redis://127.0.0.1:6379/12"
STAGES = ("fetch", "condense", "generate", "verify", "write")
GPU_NOTE = """\
GPU rates assumed (MedGemma 27B bf16, ~54 GB of weights, vLLM on one H200: 4.8 TB/s HBM3e, ~989 TFLOPS
dense bf16): prefill ~2 x 27e9 FLOP per token at ~40% utilization = ~7,000 tokens/s; decode is bound by
reading the weights once per step: ~16 ms a step at ~70% of peak bandwidth, so ~2,000 tokens/s in total
at a batch of 32 sequences (~60 tokens/s for one). Not measured here: no GPU or MedGemma weights on
this machine. Prefix caching is assumed to prefill each patient's timeline once for all its kinds."""


def make_group(fhir: str, ids: list[str]) -> str:
    """A Group of the patients on the server; its id."""
    members = [{"entity": {"reference": f"Patient/{p}"}} for p in ids]
    body = {"resourceType": "Group", "type": "person", "actual": True, "member": members}
    answer = httpx.post(f"{fhir}/Group", json=body, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["id"])


def census(env: dict[str, str], group: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Run `ehrsum census GROUP`; its JSON outcome and wall seconds."""
    command = [str(BIN / "ehrsum"), "census", group, "--run", f"bench-{uuid.uuid4().hex[:8]}", "--json"]
    command += ["--concurrency", str(args.concurrency), "--poll", "0.5", *[f"--kind={k}" for k in args.kind]]
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, cwd=REPO, check=False, timeout=3600
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"census failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout), wall


def usage(db: str, census_id: str) -> dict[str, float]:
    """Summed stage seconds and tokens of a census's jobs."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    columns = ", ".join(f"sum(u.{s}_s)" for s in STAGES)
    query = text(
        f"SELECT {columns}, sum(u.prompt_tokens), sum(u.completion_tokens), count(*) FROM job_usage u"
        " JOIN census_member m ON m.job_id = u.job_id WHERE m.census_id = :c"
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"c": census_id}).one()
    engine.dispose()
    names = [*STAGES, "prompt_tokens", "completion_tokens", "jobs"]
    return {name: float(value or 0) for name, value in zip(names, row, strict=True)}


def estimate(
    per_patient: dict[str, float], args: argparse.Namespace
) -> list[tuple[str, int, float, float, str]]:
    """Minutes for `args.beds` patients on one GPU: (scenario, workers, one job's s, minutes, bound by).

    A worker runs one job at a time: prefill, then decoding at one sequence's speed, then our stages; the
    GPU caps the total at its prefill rate and its batched decode rate. The census takes the longer of the
    workers' time (beds x job / workers) and the GPU's (beds x tokens / rates).
    """
    service_s = sum(per_patient[s] for s in STAGES if s != "generate")
    kinds = len(args.kind)
    scenarios = [
        (
            "tokens as measured here (CPU budget)",
            per_patient["prompt_tokens"],
            per_patient["completion_tokens"],
        ),
        ("production budget, worst case (30k prompt, 2k out per kind)", 30_000.0 * kinds, 2_048.0 * kinds),
    ]
    rows = []
    for name, prompt, completion in scenarios:
        job_s = prompt / args.gpu_prefill_tps + completion / args.gpu_stream_tps + service_s
        gpu_s = prompt / args.gpu_prefill_tps + completion / args.gpu_batch_tps
        for workers in args.gpu_host_workers:
            bound = "GPU" if gpu_s >= job_s / workers else "workers"
            rows.append((name, workers, job_s, args.beds * max(job_s / workers, gpu_s) / 60, bound))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6)
    parser.add_argument("--source", choices=["carebundle", "synthea"], default="carebundle")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kind", action="append", default=None)
    parser.add_argument("--beds", type=int, default=500)
    parser.add_argument("--gpu-prefill-tps", type=float, default=7000.0)
    parser.add_argument("--gpu-stream-tps", type=float, default=60.0, help="decode, one sequence")
    parser.add_argument("--gpu-batch-tps", type=float, default=2000.0, help="decode, all sequences")
    parser.add_argument(
        "--gpu-host-workers", type=lambda v: [int(w) for w in v.split(",")], default=[8, 32], help="e.g. 8,32"
    )
    args = parser.parse_args()
    args.kind = args.kind or ["progress"]
    with tempfile.TemporaryDirectory() as tmp_s, sekmet(Path(tmp_s)) as fhir:
        tmp = Path(tmp_s)
        files = patients.cached(args.source, args.patients + 1, args.seed, cache_dir() / "patients")
        ids = [patients.load(fhir, path) for path in files]
        with llm(tmp) as llm_url, database() as db:
            env = {**service_env(db, fhir, llm_url), "EHRSUM_BROKER_URL": REDIS}
            flush_redis(REDIS)
            workers = [
                spawn([str(BIN / "ehrsum"), "worker", "--concurrency", "1"], env, tmp / f"worker-{i}.log")
                for i in range(args.workers)
            ]
            try:
                time.sleep(8)  # workers connected and idle before the clock starts
                census(env, make_group(fhir, ids[:1]), args)  # warm-up: grammar compile, first requests
                outcome, wall = census(env, make_group(fhir, ids[1:]), args)
                spent = usage(db, outcome["id"])
            finally:
                for proc in workers:
                    stop_group(proc)
    report(outcome, wall, spent, args)
    return 0


def report(outcome: dict[str, Any], wall: float, spent: dict[str, float], args: argparse.Namespace) -> None:
    """Print the measured table and the labelled estimate."""
    jobs = spent["jobs"] or 1
    per_patient = {k: v / jobs for k, v in spent.items()}
    total = sum(spent[s] for s in STAGES) or 1.0
    kinds = ",".join(args.kind)
    print(
        f"Census of {outcome['total']} {args.source} patients ({kinds}), {args.workers} worker(s), "
        f"concurrency {args.concurrency}, CPU vLLM Gemma 3 270M on the shared 2-core machine\n"
    )
    print("| patients | succeeded | failed | drafts | wall s | patients/min | LLM share of job time |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    counts = " | ".join(str(outcome[k]) for k in ("total", "succeeded", "failed", "drafts_written"))
    finished = outcome["succeeded"] + outcome["failed"]
    print(f"| {counts} | {wall:.1f} | {60 * finished / wall:.2f} | {100 * spent['generate'] / total:.1f}% |")
    print("\nPer patient (mean of the jobs' own stage timings):\n")
    print("| " + " | ".join(f"{s} s" for s in STAGES) + " | prompt tokens | completion tokens |")
    print("| " + " | ".join("---:" for _ in range(len(STAGES) + 2)) + " |")
    print(
        "| "
        + " | ".join(f"{per_patient[s]:.2f}" for s in STAGES)
        + f" | {per_patient['prompt_tokens']:.0f} | {per_patient['completion_tokens']:.0f} |"
    )
    print(f"\nESTIMATE, not a measurement: a {args.beds}-bed morning census on one GPU\n")
    print(GPU_NOTE + "\n")
    service_s = sum(per_patient[s] for s in STAGES if s != "generate")
    print(f"Our stages per patient (fetch + condense + verify + write, measured here): {service_s:.2f} s\n")
    print("| scenario | worker processes | one job s | census of the beds, minutes | bound by |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, workers, job_s, minutes, bound in estimate(per_patient, args):
        print(f"| {name} | {workers} | {job_s:.1f} | {minutes:.0f} | {bound} |")


if __name__ == "__main__":
    raise SystemExit(main())
