#!/usr/bin/env python3
"""Throughput against the LLM limit: overhead, scale-out and prefix caching on the real CPU vLLM (tables).

.venv/bin/python bench/llm_throughput.py overhead [--patients 4] [--concurrency 2]
.venv/bin/python bench/llm_throughput.py scaleout [--patients 4] [--workers 1,2,4]
.venv/bin/python bench/llm_throughput.py prefix [--requests 6]

overhead: the same N patients' first prompts sent (a) straight to the LLM server, K at a time, and
(b) through the whole service (API -> Redis -> K worker processes -> fetch -> condense -> LLM -> verify
-> write-back), side by side in one run. scaleout: (b) with 1, 2 and 4 worker processes against one
LLM server. prefix: streaming time to first token, vLLM with prefix caching on vs off (two servers
started one after the other), prompts that share the system prompt and differ in the timeline.
Bounded: small N, loopback only. Patients: seeded carebundle records (small, so a run takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import BIN, database, flush_redis, free_port, spawn, stop_group  # noqa: E402
from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import wait_http  # noqa: E402

REDIS = "redis://127.0.0.1:6379/14"
DEV_TOKEN = "bench-dev-token"  # local benchmark only
MODEL = "gemma3-270m"


@contextmanager
def llm(tmp: Path, extra: list[str] | None = None) -> Iterator[str]:
    """The CPU vLLM on a free port (with extra server flags); its /v1 URL."""
    llm_cpu.ensure_setup()
    port = free_port()
    command, env = llm_cpu.server_command(port, "127.0.0.1", MODEL)
    log = tmp / f"vllm-{port}.log"
    proc = spawn([*command, *(extra or [])], {**env}, log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"{url}/models", 420, proc, log)
        yield url
    finally:
        stop_group(proc)


def service_env(db: str, fhir: str, llm_url: str) -> dict[str, str]:
    """Environment of our API and workers for a run."""
    return {
        "EHRSUM_DATABASE_URL": db,
        "EHRSUM_BROKER_URL": REDIS,
        "EHRSUM_FHIR_BASE_URL": fhir,
        "EHRSUM_LLM_BASE_URL": llm_url,
        "EHRSUM_LLM_MODEL": MODEL,
        "EHRSUM_TOKENIZER_PATH": str(llm_cpu.model_dir()),
        "EHRSUM_API_DEV_TOKEN_ENABLED": "true",
        "EHRSUM_API_DEV_TOKEN": DEV_TOKEN,
        "EHRSUM_JOB_RETRY_BACKOFF_S": "1",
        "EHRSUM_LOG_LEVEL": "WARNING",
        **llm_cpu.DEMO_LIMITS,
    }


def load_patients(fhir: str, count: int, seed: int = 5) -> list[str]:
    """`count` different seeded carebundle records loaded into the server (a new seed, new records)."""
    cache = REPO / ".cache" / "patients" / f"carebundle-bench-{count}-seed{seed}"
    files = sorted(cache.glob("*.json"))
    if len(files) != count:
        cache.mkdir(parents=True, exist_ok=True)
        files = sorted(patients.generate("carebundle", count, seed, cache))
    return [patients.load(fhir, path) for path in files]


async def first_requests(fhir: str, pids: list[str], env: dict[str, str]) -> list[tuple[Any, Any]]:
    """The exact first LLM request the pipeline makes for each patient: messages and schema."""
    os.environ.update(env)
    from fhir_adapters.client import FhirClient
    from fhir_adapters.condense import condense
    from fhir_adapters.record import fetch_record
    from fhir_adapters.timeline_text import render_timeline
    from services.core.settings import get_settings
    from workers import prompts
    from workers.notes import get_kind, note_schema
    from workers.pipeline import Pipeline

    get_settings.cache_clear()
    settings = get_settings()
    kind = get_kind("progress")
    out = []
    async with FhirClient(fhir) as client:
        pipeline = Pipeline(settings, llm=None, fhir=client)  # type: ignore[arg-type]  # prompts only
        for pid in pids:
            fitted = pipeline.fit(condense(await fetch_record(client, pid)), kind)
            schema = note_schema(
                kind,
                list(fitted.citation_keys()),
                max_statements=settings.note_max_statements,
                max_chars=settings.statement_max_chars,
            )
            out.append((prompts.messages(kind, render_timeline(fitted)), schema))
    return out


async def direct(llm_url: str, reqs: list[tuple[Any, Any]], concurrency: int) -> tuple[float, int]:
    """Send the requests straight to the LLM server, `concurrency` at a time; wall seconds, tokens out."""
    from services.core.settings import get_settings
    from workers.llm_client import LlmClient

    settings = get_settings()
    gate = asyncio.Semaphore(concurrency)
    tokens = 0
    async with LlmClient(llm_url, MODEL, timeout_s=600) as client:

        async def one(messages: Any, schema: Any) -> None:
            nonlocal tokens
            async with gate:
                try:
                    done = await client.complete_json(
                        messages, schema, name="progress_note", max_tokens=settings.llm_max_output_tokens
                    )
                    tokens += done.completion_tokens
                except Exception as exc:  # an unusable answer still cost the LLM its time
                    print(f"direct request: {type(exc).__name__}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(one(m, s) for m, s in reqs))
        return time.perf_counter() - started, tokens


def through_service(
    env: dict[str, str], pids: list[str], workers: int, tmp: Path, timeout: float = 900
) -> dict[str, Any]:
    """Submit one job per patient through the API to `workers` worker processes; wall time and stage sums."""
    from sqlalchemy import create_engine, text

    flush_redis(REDIS)
    procs = [
        spawn([str(BIN / "ehrsum"), "worker", "--concurrency", "1"], env, tmp / f"worker-{workers}-{i}.log")
        for i in range(workers)
    ]
    port = free_port()
    api = spawn([str(BIN / "ehrsum"), "api", "--port", str(port)], env, tmp / f"api-{workers}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", 60, api)
        time.sleep(8)  # workers connected and idle before the clock starts
        headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
        started = time.perf_counter()
        ids = []
        for pid in pids:
            answer = httpx.post(
                f"{url}/v1/summaries",
                json={"patient": pid, "kinds": ["progress"]},
                headers=headers,
                timeout=30,
            )
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        states: list[str] = []
        while time.perf_counter() - started < timeout:
            try:
                states = [
                    httpx.get(f"{url}/v1/summaries/{i}", headers=headers, timeout=30).json()["status"]
                    for i in ids
                ]
            except httpx.HTTPError:  # a loaded machine: ask again
                continue
            if all(s in ("succeeded", "failed") for s in states):
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
    finally:
        stop_group(api)
        for proc in procs:
            stop_group(proc)
    engine = create_engine(env["EHRSUM_DATABASE_URL"])
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT sum(fetch_s), sum(condense_s), sum(generate_s), sum(verify_s), sum(write_s),"
                " sum(completion_tokens) FROM job_usage WHERE job_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).one()
        regenerated = conn.execute(
            text("SELECT count(*) FROM summary_job WHERE id = ANY(:ids) AND report::text LIKE :p"),
            {"ids": ids, "p": '%"regenerated": true%'},
        ).scalar_one()
    engine.dispose()
    stages = dict(
        zip(
            ("fetch", "condense", "generate", "verify", "write"),
            (float(x or 0) for x in row[:5]),
            strict=True,
        )
    )
    return {
        "wall": wall,
        "succeeded": states.count("succeeded"),
        "jobs": len(ids),
        "stages": stages,
        "tokens": int(row[5] or 0),
        "regenerated": int(regenerated),
    }


def shares(stages: dict[str, float]) -> str:
    """Per-stage shares of the summed stage time."""
    total = sum(stages.values()) or 1.0
    return ", ".join(f"{name} {100 * s / total:.1f}%" for name, s in stages.items())


def overhead(args: argparse.Namespace) -> None:
    """(a) straight to the LLM vs (b) through the whole service, same prompts, same concurrency."""
    with tempfile.TemporaryDirectory() as tmp_s, database() as db:
        tmp = Path(tmp_s)
        port = free_port()
        fhir_proc = fhir_server.start(tmp / "fhir", port)
        try:
            fhir = fhir_server.base_url(port)
            pids = load_patients(fhir, args.patients)
            with llm(tmp) as llm_url:
                env = service_env(db, fhir, llm_url)
                reqs = asyncio.run(first_requests(fhir, pids, env))
                asyncio.run(direct(llm_url, reqs[:1], 1))  # warm-up: first compile of the grammar etc.
                wall_a, tokens_a = asyncio.run(direct(llm_url, reqs, args.concurrency))
                b = through_service(env, pids, args.concurrency, tmp)
        finally:
            fhir_server.stop(fhir_proc)
    n = len(pids)
    print(
        f"Overhead vs the LLM limit: {n} carebundle patients, K={args.concurrency}, CPU vLLM (Gemma 3 270M)"
    )
    print(
        "one run, (a) then (b) on the same servers; the machine is shared: read the ratio, not the seconds\n"
    )
    print("| path | jobs ok | wall s | jobs/min | completion tokens | tokens/s | regenerated |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| (a) straight to vLLM | {n} | {wall_a:.1f} | {60 * n / wall_a:.2f} | {tokens_a} | "
        f"{tokens_a / wall_a:.1f} | - |"
    )
    print(
        f"| (b) API -> queue -> workers -> pipeline | {b['succeeded']}/{b['jobs']} | {b['wall']:.1f} | "
        f"{60 * b['jobs'] / b['wall']:.2f} | {b['tokens']} | {b['tokens'] / b['wall']:.1f} | "
        f"{b['regenerated']} |"
    )
    print(f"\nthroughput (b)/(a) = {wall_a / b['wall']:.2f}; per-stage shares in (b): {shares(b['stages'])}")
    non_llm = sum(v for k, v in b["stages"].items() if k != "generate")
    summed = sum(b["stages"].values())
    print(f"our stages (all but generate): {non_llm:.2f} s of {summed:.1f} s summed over jobs")


def scaleout(args: argparse.Namespace) -> None:
    """(b) with 1, 2, 4 worker processes against one LLM server."""
    levels = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        port = free_port()
        fhir_proc = fhir_server.start(tmp / "fhir", port)
        try:
            fhir = fhir_server.base_url(port)
            with llm(tmp) as llm_url:
                with database() as db:  # warm-up, not reported: grammar compile, first-request costs
                    through_service(service_env(db, fhir, llm_url), load_patients(fhir, 1, 90), 1, tmp)
                for w in levels:
                    with database() as db:
                        # Different records per row, so no row profits from another's prefix cache.
                        pids = load_patients(fhir, args.patients, 100 + w)
                        env = service_env(db, fhir, llm_url)
                        rows.append((w, through_service(env, pids, w, tmp)))
        finally:
            fhir_server.stop(fhir_proc)
    print(
        f"Scale-out: {args.patients} jobs per row through the whole service, one CPU vLLM (2 cores, shared)\n"
    )
    print("| worker processes | jobs ok | wall s | jobs/min | vs 1 worker | generate share |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    base = rows[0][1]["wall"]
    for w, r in rows:
        gen = r["stages"]["generate"] / (sum(r["stages"].values()) or 1)
        print(
            f"| {w} | {r['succeeded']}/{r['jobs']} | {r['wall']:.1f} | {60 * r['jobs'] / r['wall']:.2f} | "
            f"{base / r['wall']:.2f}x | {100 * gen:.0f}% |"
        )


async def ttft(llm_url: str, messages: Any) -> float:
    """Seconds to the first streamed content token of one chat completion."""
    body = {"model": MODEL, "messages": messages, "max_tokens": 8, "temperature": 0, "stream": True}
    async with httpx.AsyncClient(timeout=300) as client:
        started = time.perf_counter()
        async with client.stream("POST", f"{llm_url}/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    delta = json.loads(line[6:])["choices"][0].get("delta", {})
                    if delta.get("content"):
                        return time.perf_counter() - started
    raise RuntimeError("no token streamed")


def prefix(args: argparse.Namespace) -> None:
    """TTFT with the shared system prompt cached (prefix caching on) vs not (off)."""
    from statistics import median

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp_s, database() as db:
        tmp = Path(tmp_s)
        port = free_port()
        fhir_proc = fhir_server.start(tmp / "fhir", port)
        try:
            fhir = fhir_server.base_url(port)
            pids = load_patients(fhir, args.requests)
            reqs = asyncio.run(first_requests(fhir, pids, service_env(db, fhir, "http://127.0.0.1:9/v1")))
        finally:
            fhir_server.stop(fhir_proc)
        for label, flag in (("on", "--enable-prefix-caching"), ("off", "--no-enable-prefix-caching")):
            with llm(tmp, [flag]) as llm_url:
                warm = [{"role": "user", "content": "warm-up"}]
                asyncio.run(ttft(llm_url, warm))
                # Same system prompt, a different patient's timeline each time, one request at a time.
                results[label] = [asyncio.run(ttft(llm_url, m)) for m, _ in reqs]
                results[label + " repeat"] = [asyncio.run(ttft(llm_url, reqs[0][0])) for _ in range(3)]
    from fhir_adapters.tokens import token_counter
    from workers import prompts
    from workers.notes import get_kind

    counter = token_counter(llm_cpu.model_dir())
    system = counter.count(prompts.system_prompt(get_kind("progress")))
    total = [counter.count(m[0]["content"] + m[1]["content"]) for m, _ in reqs]
    print(f"Prefix caching: streaming TTFT, CPU vLLM (Gemma 3 270M), {len(reqs)} patients' progress prompts")
    print(f"shared system prompt {system} tokens of {min(total)}-{max(total)} prompt tokens\n")
    print("| prompts | caching on: median TTFT ms | caching off: median TTFT ms | off/on |")
    print("| --- | ---: | ---: | ---: |")
    for name, key in (("same system prompt, new timeline", ""), ("identical prompt repeated", " repeat")):
        on, off = median(results["on" + key]), median(results["off" + key])
        print(f"| {name} | {1000 * on:.0f} | {1000 * off:.0f} | {off / on:.2f}x |")


def main() -> int:
    """Pick a benchmark and run it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--patients", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=2)
    p.set_defaults(func=overhead)
    p = sub.add_parser("scaleout")
    p.add_argument("--patients", type=int, default=4)
    p.add_argument("--workers", default="1,2,4")
    p.set_defaults(func=scaleout)
    p = sub.add_parser("prefix")
    p.add_argument("--requests", type=int, default=6)
    p.set_defaults(func=prefix)
    args = parser.parse_args()
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
