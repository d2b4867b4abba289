#!/usr/bin/env python3
"""Throughput against the LLM limit: overhead, scale-out and prefix caching on the real CPU vLLM (tables).

.venv/bin/python bench/llm_throughput.py overhead [--patients 4] [--concurrency 2]
.venv/bin/python bench/llm_throughput.py scaleout [--patients 4] [--workers 1,2,4]
.venv/bin/python bench/llm_throughput.py prefix [--requests 6]
.venv/bin/python bench/llm_throughput.py kinds [--patients 3]

overhead: N patients through the whole service (b: API -> Redis -> K worker processes -> fetch ->
condense -> LLM -> verify -> write-back), its LLM calls recorded by a relay in front of the LLM server,
then (a) exactly those calls replayed straight to the server, K at a time: both sides do the same LLM
work (regenerations included), with prefix caching off so (a) gains nothing from (b) having run first.
(b) is timed from the first submit to the last job's finished_at. scaleout: (b) with 1, 2 and 4
worker processes against one LLM server.
prefix: streaming time to first token, vLLM with prefix caching on vs off (two servers
started one after the other), prompts that share the system prompt and differ in the timeline.
kinds: the three kinds of one job, old layout (kind instructions before the timeline, sent in turn) vs the
shared prefix (timeline first, kind last; sent staggered as the pipeline does, and all at once).
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
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import BIN, database, flush_redis, free_port, spawn, stop_group  # noqa: E402
from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import stop, wait_http  # noqa: E402

REDIS = "redis://127.0.0.1:6379/14"
DEV_TOKEN = "bench-dev-token"  # local benchmark only
MODEL = "gemma3-270m"


@contextmanager
def llm(
    tmp: Path,
    extra: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
    profile: str = llm_cpu.DEFAULT_PROFILE,
) -> Iterator[str]:
    """The CPU vLLM serving a model profile on a free port (with extra flags and environment); its /v1 URL."""
    llm_cpu.ensure_setup(profile)
    port = free_port()
    command, env = llm_cpu.server_command(port, "127.0.0.1", profile=profile)
    log = tmp / f"vllm-{port}.log"
    proc = spawn([*command, *(extra or [])], {**env, **(env_extra or {})}, log)
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
    files = patients.cached("carebundle", count, seed, llm_cpu.cache_dir() / "patients")
    return [patients.load(fhir, path) for path in files]


async def first_requests(fhir: str, pids: list[str], env: dict[str, str]) -> list[tuple[Any, Any]]:
    """The exact first LLM request the pipeline makes for each patient: messages and schema."""
    os.environ.update(env)
    from clinical_notes import prompts
    from clinical_notes.kinds import get_kind
    from clinical_notes.schema import model_schema
    from clinical_notes.timeline_text import render_timeline
    from fhir_adapters.client import FhirClient
    from fhir_adapters.condense import condense
    from fhir_adapters.record import fetch_record
    from services.core.settings import get_settings
    from workers.pipeline import Pipeline
    from workers.prepared import fit

    get_settings.cache_clear()
    settings = get_settings()
    kind = get_kind("progress")
    out = []
    async with FhirClient(fhir) as client:
        pipeline = Pipeline(settings, llm=None, fhir=client)  # type: ignore[arg-type]  # prompts only
        for pid in pids:
            fitted = fit(settings, pipeline.counter, condense(await fetch_record(client, pid)))
            schema = model_schema(
                kind,
                max_statements=settings.note_max_statements,
                max_chars=settings.statement_max_chars,
            )
            out.append((prompts.messages(kind, render_timeline(fitted)), schema))
    return out


class ThreadServer:
    """A Starlette app served by uvicorn in a background thread of this process, on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: Any = None

    @property
    def url(self) -> str:
        """Its /v1 URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def handle(self, request: Any) -> Awaitable[Any]:
        """Answer one request under /v1."""
        raise NotImplementedError

    def start(self) -> Self:
        """Serve until stop()."""
        import threading

        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route("/v1/{path:path}", self.handle, methods=["GET", "POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        threading.Thread(target=self._server.run, daemon=True).start()
        while not self._server.started:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.should_exit = True


class RecordingRelay(ThreadServer):
    """In front of the LLM server: forwards every call and keeps its body, answer and span."""

    def __init__(self, upstream: str):
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.client = httpx.AsyncClient(timeout=900)
        self.bodies: list[bytes] = []
        self.answers: dict[bytes, bytes] = {}
        self.spans: list[tuple[float, float]] = []  # (start, end) of each call, perf_counter seconds

    async def handle(self, request: Any) -> Any:
        """Forward a request; record chat completions."""
        from starlette.responses import Response

        body = await request.body()
        started = time.perf_counter()
        answer = await self.client.request(
            request.method,
            f"{self.upstream}{request.url.path.removeprefix('/v1')}",
            content=body,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
        )
        if request.method == "POST":
            self.bodies.append(body)
            self.answers[body] = answer.content
            self.spans.append((started, time.perf_counter()))
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.bodies, self.answers, self.spans = [], {}, []


class ReplayLlm(ThreadServer):
    """A stand-in for an LLM on its own device: each recorded call answered as recorded, after the time
    the real server took for it alone with the service idle. It uses none of the CPU the service runs on."""

    def __init__(self, answers: dict[bytes, tuple[bytes, float]]):
        super().__init__()
        self.answers = answers
        self.misses = 0
        self.spans: list[tuple[float, float]] = []

    async def handle(self, request: Any) -> Any:
        """A recorded answer after its recorded duration; 404 for a call never recorded."""
        from starlette.responses import Response

        if request.method == "GET":
            return Response(
                json.dumps({"object": "list", "data": [{"id": MODEL}]}), media_type="application/json"
            )
        found = self.answers.get(await request.body())
        if found is None:
            self.misses += 1
            return Response(b'{"error": "not recorded"}', 404, media_type="application/json")
        started = time.perf_counter()
        await asyncio.sleep(found[1])
        self.spans.append((started, time.perf_counter()))
        return Response(found[0], media_type="application/json")


def in_flight(spans: list[tuple[float, float]]) -> float:
    """Mean number of LLM calls in flight from the first call's start to the last call's end."""
    if not spans:
        return 0.0
    return sum(end - start for start, end in spans) / (max(e for _, e in spans) - min(s for s, _ in spans))


async def replay(llm_url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Send recorded chat requests straight to an LLM server, `concurrency` at a time.

    Wall seconds, completion tokens, mean calls in flight, and each call's seconds by body.
    """
    gate = asyncio.Semaphore(concurrency)
    tokens = 0
    spans: list[tuple[float, float]] = []
    seconds: dict[bytes, float] = {}
    async with httpx.AsyncClient(timeout=900) as client:

        async def one(body: bytes) -> None:
            nonlocal tokens
            async with gate:
                started = time.perf_counter()
                answer = await client.post(
                    f"{llm_url}/chat/completions", content=body, headers={"Content-Type": "application/json"}
                )
                spans.append((started, time.perf_counter()))
                seconds[body] = spans[-1][1] - started
                answer.raise_for_status()
                tokens += int(answer.json()["usage"]["completion_tokens"])

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - started
    return {"wall": wall, "tokens": tokens, "in_flight": in_flight(spans), "seconds": seconds}


def cpu_by_process() -> dict[str, float]:
    """CPU seconds (user + system) so far of every process on the machine, summed by command name."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def cpu_during(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by component (processes that ended are not counted)."""
    groups = {"VLLM": "LLM server", "ehrsum": "API + workers", "postgres": "Postgres", "redis": "Redis"}
    groups |= {"sekmet": "FHIR server", "python": "benchmark + relay", "celery": "API + workers"}
    spent: dict[str, float] = {}
    for name, seconds in after.items():
        group = next((g for prefix, g in groups.items() if name.startswith(prefix)), "other")
        spent[group] = spent.get(group, 0.0) + max(0.0, seconds - before.get(name, 0.0))
    return spent


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
        cpu_before = cpu_by_process()
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
        submitted_at = time.time() - (time.perf_counter() - started)
        # Watch the jobs in the database: polling the API would cost the shared cores more than the jobs.
        engine = create_engine(env["EHRSUM_DATABASE_URL"])
        query = text("SELECT status FROM summary_job WHERE id = ANY(:ids)")
        states: list[str] = []
        while time.perf_counter() - started < timeout:
            with engine.connect() as conn:
                states = [str(s) for s in conn.execute(query, {"ids": ids}).scalars()]
            if all(s in ("succeeded", "failed") for s in states):
                break
            time.sleep(0.5)
        engine.dispose()
        cpu = cpu_during(cpu_before, cpu_by_process())
    finally:
        stop_group(api)
        for proc in procs:
            stop_group(proc)
    engine = create_engine(env["EHRSUM_DATABASE_URL"])
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT max(finished_at) FROM summary_job WHERE id = ANY(:ids)"), {"ids": ids}
        ).scalar_one()
        row = conn.execute(
            text(
                "SELECT sum(fetch_s), sum(condense_s), sum(generate_s), sum(verify_s), sum(write_s),"
                " sum(completion_tokens) FROM job_usage WHERE job_id = ANY(:ids)"
            ),
            {"ids": ids},
        ).one()
        drafts = [
            r
            for refs in conn.execute(
                text("SELECT draft_refs FROM summary_job WHERE id = ANY(:ids)"), {"ids": ids}
            ).scalars()
            for r in (json.loads(refs) if isinstance(refs, str) else refs)
        ]
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
    # From the first submit to the last job's end as the worker recorded it (no polling granularity).
    wall = last.timestamp() - submitted_at
    return {
        "wall": wall,
        "cpu": cpu,
        "drafts": drafts,
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
    """(b) through the whole service, its LLM calls recorded; (a) the same calls straight to the LLM.

    Then the same pair against a replay of those calls from a stand-in that, like an LLM on a GPU,
    takes the time the calls took but none of the CPU the service runs on: (a') and (b').
    """
    with tempfile.TemporaryDirectory() as tmp_s, database() as db, database() as db_gpu:
        tmp = Path(tmp_s)
        port = free_port()
        fhir_proc = fhir_server.start(tmp / "fhir", port)
        try:
            fhir = fhir_server.base_url(port)
            pids = load_patients(fhir, args.patients)
            with llm(tmp, ["--no-enable-prefix-caching"]) as llm_url:
                relay = RecordingRelay(llm_url).start()
                try:
                    warm = load_patients(fhir, 1, 90)  # first-request costs of vLLM, not reported
                    with database() as warm_db:
                        through_service(service_env(warm_db, fhir, relay.url), warm, 1, tmp)
                    relay.clear()
                    b = through_service(service_env(db, fhir, relay.url), pids, args.concurrency, tmp)
                    b["in_flight"] = in_flight(relay.spans)
                finally:
                    relay.stop()
                a = asyncio.run(replay(llm_url, relay.bodies, args.concurrency))
            for ref in b["drafts"]:  # so (b') writes its drafts again instead of finding (b)'s
                httpx.delete(f"{fhir}/{ref}", timeout=30).raise_for_status()
            standin = ReplayLlm({body: (relay.answers[body], a["seconds"][body]) for body in relay.bodies})
            standin.start()
            try:
                a_gpu = asyncio.run(replay(standin.url, relay.bodies, args.concurrency))
                standin.spans.clear()
                b_gpu = through_service(service_env(db_gpu, fhir, standin.url), pids, args.concurrency, tmp)
                b_gpu["in_flight"] = in_flight(standin.spans)
            finally:
                standin.stop()
        finally:
            stop(fhir_proc)
    n, calls = len(pids), len(relay.bodies)
    print(
        f"Overhead vs the LLM limit: {n} carebundle patients, K={args.concurrency} (jobs and calls in flight)"
    )
    print(
        f"(b) ran first, its {calls} LLM calls ({b['regenerated']} jobs regenerated once) recorded by a"
        " relay; (a) replayed them straight to the LLM.\nCPU vLLM (Gemma 3 270M), prefix caching off:"
        " it shares the 2 cores with the service. GPU-like stand-in: each recorded answer after the time"
        " (a) took for it,"
        f" using no CPU of ours ({standin.misses} calls it did not know).\n"
    )
    print("| LLM | path | jobs ok | LLM calls in flight | wall s | jobs/min | (b)/(a) | overhead |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, direct, service in (("CPU vLLM", a, b), ("GPU-like stand-in", a_gpu, b_gpu)):
        ratio = direct["wall"] / service["wall"]
        for path, row, ok in (
            ("(a) straight to the LLM", direct, f"{n}/{n}"),
            ("(b) API -> queue -> workers -> pipeline", service, f"{service['succeeded']}/{service['jobs']}"),
        ):
            tail = f"{ratio:.3f} | {100 * (1 - ratio):.1f}% |" if row is service else " | |"
            print(
                f"| {label} | {path} | {ok} | {row['in_flight']:.2f} | {row['wall']:.1f} | "
                f"{60 * n / row['wall']:.2f} | {tail}"
            )
    for label, service in (("CPU vLLM", b), ("GPU-like stand-in", b_gpu)):
        non_llm = sum(v for k, v in service["stages"].items() if k != "generate")
        spent = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(service["cpu"].items(), key=lambda kv: -kv[1]) if v >= 0.05
        )
        print(
            f"\n{label} (b): stage shares {shares(service['stages'])}; our stages {non_llm:.2f} s of "
            f"{sum(service['stages'].values()):.1f} s summed over jobs; CPU seconds by component: {spent}"
        )


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
            stop(fhir_proc)
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
            stop(fhir_proc)
        for label, flag in (("on", "--enable-prefix-caching"), ("off", "--no-enable-prefix-caching")):
            with llm(tmp, [flag]) as llm_url:
                warm = [{"role": "user", "content": "warm-up"}]
                asyncio.run(ttft(llm_url, warm))
                # Same system prompt, a different patient's timeline each time, one request at a time.
                results[label] = [asyncio.run(ttft(llm_url, m)) for m, _ in reqs]
                results[label + " repeat"] = [asyncio.run(ttft(llm_url, reqs[0][0])) for _ in range(3)]
    from clinical_notes import prompts
    from clinical_notes.tokens import token_counter

    counter = token_counter(llm_cpu.model_dir())
    system = counter.count(prompts.SYSTEM)
    total = [counter.count(m[0]["content"] + m[1]["content"]) for m, _ in reqs]
    print(f"Prefix caching: streaming TTFT, CPU vLLM (Gemma 3 270M), {len(reqs)} patients' progress prompts")
    print(f"shared system prompt {system} tokens of {min(total)}-{max(total)} prompt tokens\n")
    print("| prompts | caching on: median TTFT ms | caching off: median TTFT ms | off/on |")
    print("| --- | ---: | ---: | ---: |")
    for name, key in (("same system prompt, new timeline", ""), ("identical prompt repeated", " repeat")):
        on, off = median(results["on" + key]), median(results["off" + key])
        print(f"| {name} | {1000 * on:.0f} | {1000 * off:.0f} | {off / on:.2f}x |")


Layout = list[dict[str, str]]


def kinds_before(kind: Any, timeline_text: str) -> Layout:
    """The layout before the shared prefix: the kind's instructions ahead of the timeline."""
    from clinical_notes import prompts

    system = f"{prompts.SYSTEM}\n{prompts.task(kind)}"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": prompts.timeline_block(timeline_text)},
    ]


async def one_job(llm_url: str, requests: list[tuple[Layout, dict[str, Any]]], how: str) -> dict[str, Any]:
    """The kinds of one job: in turn, staggered (the rest when the first token of the first arrives),
    or all at once; each request's TTFT from its own start, and the job's wall time."""
    from workers.llm_client import LlmClient, LlmOutputError

    async with LlmClient(llm_url, MODEL, timeout_s=600) as client:
        await client._http.post(llm_url.removesuffix("/v1") + "/reset_prefix_cache")

        async def ask(
            messages: Layout, schema: dict[str, Any], started: asyncio.Event | None = None
        ) -> float:
            try:
                done = await client.complete_json(
                    messages, schema, name="bench", max_tokens=1024, first_token=started
                )
            except LlmOutputError:
                return float("nan")
            return done.ttft_s or float("nan")

        begun = time.perf_counter()
        if how == "in turn":
            ttfts = [await ask(m, s) for m, s in requests]
        elif how == "staggered":
            first_token = asyncio.Event()
            first = asyncio.create_task(ask(*requests[0], first_token))
            await first_token.wait()
            rest = await asyncio.gather(*(ask(m, s) for m, s in requests[1:]))
            ttfts = [await first, *rest]
        else:
            ttfts = list(await asyncio.gather(*(ask(m, s) for m, s in requests)))
        return {"ttft": ttfts, "wall": time.perf_counter() - begun}


def with_enum(schema: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The schema as it was before: citations an enum of this patient's keys (a new grammar every job)."""
    from clinical_notes.timeline import KEY_PATTERN

    pattern = json.dumps({"type": "string", "pattern": KEY_PATTERN})
    enum = json.dumps({"type": "string", "enum": keys})
    return dict(json.loads(json.dumps(schema).replace(pattern, enum)))


def kinds(args: argparse.Namespace) -> None:
    """TTFT of the second and third kind of a job, and its wall time: the old design (kind instructions
    first, a per-patient citation enum, kinds in turn) against each change on its own and together.

    The prefix cache is emptied before each job; the answer grammars that are the same for every patient
    are compiled once at warm-up, as a long-running server has them."""
    from math import isnan
    from statistics import median

    os.environ.update(
        EHRSUM_TOKENIZER_PATH=str(llm_cpu.ensure_setup()), EHRSUM_LLM_MODEL=MODEL, **llm_cpu.DEMO_LIMITS
    )
    from clinical_notes import prompts
    from clinical_notes.kinds import KINDS
    from clinical_notes.schema import model_schema
    from clinical_notes.timeline_text import render_timeline
    from fhir_adapters.condense import condense
    from fhir_adapters.record import record_from_bundle
    from services.core.settings import get_settings
    from workers.pipeline import Pipeline
    from workers.prepared import fit

    get_settings.cache_clear()
    settings = get_settings()
    pipeline = Pipeline(settings, llm=None)  # type: ignore[arg-type]  # prompts only
    files = patients.cached("synthea", args.patients, args.seed, llm_cpu.cache_dir() / "patients")
    limits = {"max_statements": settings.note_max_statements, "max_chars": settings.statement_max_chars}
    schemas = [model_schema(k, **limits) for k in KINDS.values()]
    runs = {
        ("kind first, citation enum", "in turn"): [],
        ("kind first, key pattern", "in turn"): [],
        ("shared prefix, key pattern", "in turn"): [],
        ("shared prefix, key pattern", "staggered"): [],
        ("shared prefix, key pattern", "all at once"): [],
    }
    jobs: list[dict[str, list[tuple[Layout, dict[str, Any]]]]] = []
    for path in files:
        fitted = fit(settings, pipeline.counter, condense(record_from_bundle(path)))
        text, keys = render_timeline(fitted), list(fitted.citation_keys())
        pairs = list(zip(KINDS.values(), schemas, strict=True))
        jobs.append(
            {
                "kind first, citation enum": [(kinds_before(k, text), with_enum(s, keys)) for k, s in pairs],
                "kind first, key pattern": [(kinds_before(k, text), s) for k, s in pairs],
                "shared prefix, key pattern": [(prompts.messages(k, text), s) for k, s in pairs],
            }
        )
    results: dict[tuple[str, str], list[dict[str, Any]]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as tmp, llm(Path(tmp), env_extra={"VLLM_SERVER_DEV_MODE": "1"}) as url:
        warm = [([{"role": "user", "content": "warm-up"}], s) for s in schemas]
        asyncio.run(one_job(url, warm, "in turn"))
        for job in jobs:
            for layout, how in runs:
                results[(layout, how)].append(asyncio.run(one_job(url, job[layout], how)))

    def med(values: list[float]) -> float:
        kept = [v for v in values if not isnan(v)]
        return median(kept) if kept else float("nan")

    print(
        f"Kinds of one job (progress, soap, triage), CPU vLLM (Gemma 3 270M), {len(files)} synthea records;"
    )
    print("prefix cache emptied before each job; TTFT of each request from its own start; medians.\n")
    print(
        "| prompt and schema | kinds sent | TTFT 1st ms | TTFT 2nd ms | TTFT 3rd ms | 2nd/1st | 3rd/1st "
        "| job wall s |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (layout, how), rows in results.items():
        t = [med([r["ttft"][k] for r in rows]) for k in range(3)]
        wall = med([r["wall"] for r in rows])
        print(
            f"| {layout} | {how} | {1000 * t[0]:.0f} | {1000 * t[1]:.0f} | {1000 * t[2]:.0f} | "
            f"{t[1] / t[0]:.2f} | {t[2] / t[0]:.2f} | {wall:.1f} |"
        )


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
    p = sub.add_parser("kinds")
    p.add_argument("--patients", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=kinds)
    args = parser.parse_args()
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
