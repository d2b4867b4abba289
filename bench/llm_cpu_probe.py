#!/usr/bin/env python3
"""Probe one deploy/llm_cpu.py model profile on the real CPU vLLM: does it follow instructions, and how fast.

flock /tmp/ehrsum-heavy.lock .venv/bin/python bench/llm_cpu_probe.py --profile qwen-instruct
.venv/bin/python bench/llm_cpu_probe.py --profile gemma3-270m --reserved-cpus 0 --busy 0,1 --speed-only

Starts the server (setup first if needed) and measures: startup seconds, server memory (RSS and PSS of
its process group), prompt processing tokens/s on a ~2,000-token prompt, generation tokens/s (greedy,
streamed), whether the chat template is applied, whether a strict json_schema response_format is
followed, and whether a prompt that fills the context (a fact at its start, the question at its end)
works while one over the limit is refused. `--busy 0,1` measures the speed again with that many cores kept
busy by other processes (a test run beside the server); `--reserved-cpus` sets the cores the engine leaves
free. Loopback only; a dozen bounded requests; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import free_port, spawn, stop_group  # noqa: E402
from deploy import llm_cpu  # noqa: E402
from deploy.processes import wait_http  # noqa: E402

NOTE = (
    "Discharge note. A 67-year-old woman with type 2 diabetes and hypertension was admitted for "
    "community-acquired pneumonia, treated with ceftriaxone, and discharged on day 4. Home medications: "
    "metformin 1000 mg twice daily, lisinopril 10 mg once daily, atorvastatin 40 mg at night."
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "age_years": {"type": "integer", "minimum": 0, "maximum": 120},
        "sex": {"type": "string", "enum": ["female", "male", "unknown"]},
        "home_medications": {
            "type": "array",
            "maxItems": 8,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "dose": {"type": "string", "maxLength": 40}},
                "required": ["name", "dose"],
                "additionalProperties": False,
            },
        },
        "summary": {"type": "string", "maxLength": 240},
    },
    "required": ["age_years", "sex", "home_medications", "summary"],
    "additionalProperties": False,
}
FILLER = (
    "Vitals were stable overnight; the nursing team documented pain scores, fluid balance and mobility, "
    "and physiotherapy reviewed the patient on the ward. "
)


class Probe:
    """A client for one running server."""

    def __init__(self, url: str, model: str) -> None:
        self.url = url
        self.model = model
        self.http = httpx.Client(timeout=900)

    def count(self, text: str) -> int:
        """Tokens in a raw prompt, by the server's own tokenizer."""
        response = self.http.post(f"{self.url}/tokenize", json={"model": self.model, "prompt": text})
        response.raise_for_status()
        return int(response.json()["count"])

    def chat(self, messages: list[dict[str, str]], **extra: Any) -> tuple[dict[str, Any], float]:
        """One greedy chat completion; the answer and its seconds."""
        started = time.monotonic()
        response = self.http.post(
            f"{self.url}/v1/chat/completions",
            json={"model": self.model, "messages": messages, "temperature": 0, **extra},
        )
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            return {"error": response.status_code, "body": response.text[:300]}, elapsed
        return response.json(), elapsed

    def sized_prompt(self, tokens: int, head: str = "") -> tuple[str, int]:
        """A unique filler text (no prefix-cache hits) of at least `tokens` tokens after `head`; its count."""
        text = f"[{uuid.uuid4().hex}] {head}"
        per = self.count(FILLER)
        while (count := self.count(text)) < tokens:  # copies merge at their seams: recount
            text += FILLER * max(1, (tokens - count) // per)
        return text, count


def answer(body: dict[str, Any]) -> str:
    """The text of a chat completion (or its error)."""
    if "error" in body:
        return f"HTTP {body['error']}: {body['body']}"
    return str(body["choices"][0]["message"]["content"])


def instruction_checks(probe: Probe) -> dict[str, Any]:
    """Plain instructions, the rendered chat prompt, and strict json_schema output."""
    result: dict[str, Any] = {}
    body, _ = probe.chat(
        [{"role": "user", "content": "What is the capital of France? Answer with one word only."}],
        max_tokens=10,
    )
    result["capital_answer"] = answer(body)
    rendered = probe.http.post(
        f"{probe.url}/tokenize",
        json={
            "model": probe.model,
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
            "add_generation_prompt": True,
            "return_token_strs": True,
        },
    ).json()
    result["rendered_chat_prompt"] = "".join(rendered.get("token_strs") or [])
    messages = [
        {"role": "system", "content": "You extract facts from clinical notes. Use only facts in the note."},
        {"role": "user", "content": f"{NOTE}\n\nExtract the patient's age, sex and home medications."},
    ]
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA, "strict": True}}
    body, seconds = probe.chat(messages, max_tokens=400, response_format=response_format)
    text = answer(body)
    result["json_schema_answer"] = text
    result["json_schema_seconds"] = round(seconds, 1)
    try:
        jsonschema.validate(json.loads(text), SCHEMA)
        result["json_schema_valid"] = True
    except (ValueError, jsonschema.ValidationError) as exc:
        result["json_schema_valid"] = f"no: {str(exc)[:200]}"
    return result


def speed(probe: Probe, prompt_tokens: int) -> dict[str, Any]:
    """Prompt tokens/s (one output token) and streamed generation tokens/s."""
    result: dict[str, Any] = {}
    for attempt in (1, 2):
        prompt, _ = probe.sized_prompt(prompt_tokens)
        body, seconds = probe.chat([{"role": "user", "content": prompt}], max_tokens=1)
        tokens = body["usage"]["prompt_tokens"]
        result[f"prefill_{attempt}"] = {
            "prompt_tokens": tokens,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
        }
    stamps: list[float] = []
    usage: dict[str, Any] = {}
    payload = {
        "model": probe.model,
        "messages": [{"role": "user", "content": "Write a long story about a hospital night shift."}],
        "temperature": 0,
        "max_tokens": 256,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with probe.http.stream("POST", f"{probe.url}/v1/chat/completions", json=payload) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.monotonic())
    generated = int(usage["completion_tokens"])
    result["generation"] = {
        "completion_tokens": generated,
        "tokens_per_s": round((generated - 1) / (stamps[-1] - stamps[0]), 1),
    }
    return result


def context_checks(probe: Probe, max_model_len: int) -> dict[str, Any]:
    """A prompt that nearly fills the context (fact at the start, question at the end), and one over it."""
    head = "The patient's hospital number is 48213. "
    question = "\n\nWhat is the patient's hospital number? Answer with the number only."
    prompt, _ = probe.sized_prompt(max_model_len - 150, head)
    body, seconds = probe.chat([{"role": "user", "content": prompt + question}], max_tokens=20)
    result: dict[str, Any] = {
        "near_full": {
            "prompt_tokens": body.get("usage", {}).get("prompt_tokens"),
            "seconds": round(seconds, 1),
            "answer": answer(body),
        }
    }
    over, count = probe.sized_prompt(max_model_len + 1)
    body, _ = probe.chat([{"role": "user", "content": over}], max_tokens=10)
    result["over_limit"] = {"raw_prompt_tokens": count, "answer": answer(body)[:200]}
    return result


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """`count` processes that each keep a core busy, for as long as the block runs."""
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(spin, stdin=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def memory(pgid: int) -> dict[str, float]:
    """Summed RSS and PSS (GiB) of the server's process group."""
    rss = pss = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue
        kib = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
        rss += kib["Rss"]
        pss += kib["Pss"]
    return {"rss_gib": round(rss / 2**20, 2), "pss_gib": round(pss / 2**20, 2)}


def main() -> int:
    """Start the server for the profile, probe it, stop it, print the findings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=list(llm_cpu.PROFILES), default="qwen-instruct")
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--reserved-cpus", type=int, help="cores the engine leaves free (default: ours)")
    parser.add_argument("--busy", default="0", help="comma-separated numbers of busy cores to measure beside")
    parser.add_argument("--speed-only", action="store_true", help="skip the instruction and context checks")
    args = parser.parse_args()
    llm_cpu.ensure_setup(args.profile)
    spec = llm_cpu.get_profile(args.profile)
    max_model_len = args.max_model_len or spec.max_model_len
    port = free_port()
    command, env = llm_cpu.server_command(
        port, profile=args.profile, max_model_len=max_model_len, reserved_cpus=args.reserved_cpus
    )
    log = Path(tempfile.mkdtemp(prefix="llm-probe-")) / "vllm.log"
    started = time.monotonic()
    proc = spawn(command, env, log)
    findings: dict[str, Any] = {
        "profile": args.profile,
        "max_model_len": max_model_len,
        "reserved_cpus": env["VLLM_CPU_NUM_OF_RESERVED_CPU"],
        "cpus": os.cpu_count(),
        "log": str(log),
    }
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", 600, proc, log)
        findings["startup_s"] = round(time.monotonic() - started, 1)
        findings["memory_idle"] = memory(proc.pid)
        probe = Probe(f"http://127.0.0.1:{port}", spec.name)
        if not args.speed_only:
            findings["instructions"] = instruction_checks(probe)
        for busy in (int(n) for n in args.busy.split(",")):
            with busy_cores(busy):
                findings[f"speed_busy_{busy}"] = speed(probe, args.prompt_tokens)
        if not args.speed_only:
            findings["context"] = context_checks(probe, max_model_len)
        findings["memory_after"] = memory(proc.pid)
    finally:
        stop_group(proc)
    findings["kv_cache_log"] = [
        line.split("] ", 1)[-1] for line in log.read_text().splitlines() if "KV cache" in line
    ][:3]
    print(json.dumps(findings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
