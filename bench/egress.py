#!/usr/bin/env python3
"""Egress proof: the whole stack in a network namespace with loopback only, every outbound connection
attempt traced, while it runs jobs, notifications and approvals; prints the destinations seen.

As root: .venv/bin/python bench/egress.py [--keep DIR]      (needs `ip` and `strace`; under the heavy lock)

Outside, it makes a network namespace (`ip netns add`: loopback up, no other interface, so nothing
could leave even by mistake, and an attempt shows as a failed connect) and runs itself inside it under
`strace -f --seccomp-bpf`, which records every connect(), and every sendto()/sendmsg() that names an
address (UDP: DNS, say), of every process of the tree, with its result. Inside, it starts private
Postgres and Redis (the host's are on another loopback), sekmet-fhir, the CPU vLLM, a JWKS identity
provider and `ehrsum api`, `worker` and `beat`; runs `ehrsum subscribe`; asks for a summary through
the API; creates an Encounter on the FHIR server, which the subscriptions' notifications turn into a
second job; approves one draft through the API and the other on the FHIR server, which a notification
carries back. Then it reads the trace and prints, per process, every destination with its role.
Exit status 1 when one of our processes (api, worker, beat, the CLI) tried anything but the configured
FHIR server, LLM, identity provider, database and broker.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy import fhir_server, llm_cpu, patients  # noqa: E402
from deploy.processes import stop, wait_for, wait_http  # noqa: E402

BIN = Path(sys.executable).parent
CACHE = llm_cpu.cache_dir()
SECRET = "egress-notification-secret"
OUR_PROGRAMS = ("ehrsum api", "ehrsum worker", "ehrsum beat", "ehrsum subscribe", "ehrsum init-db")
TRACED = "connect,sendto,sendmsg,execve,clone,clone3,fork,vfork"


def free_port() -> int:
    """A free TCP port on this namespace's loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(message: str) -> None:
    sys.stderr.write(f"egress: {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- inside the namespace: the stack


@dataclass
class Stack:
    """The processes inside the namespace and where each listens."""

    work: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.work / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop(proc, timeout=20)


def start_postgres(stack: Stack) -> str:
    """A private cluster (trust auth, loopback), as the postgres user: the host's is out of reach."""
    data, sockets = stack.work / "pgdata", stack.work / "pgsock"
    for path in (data, sockets):
        path.mkdir()
        shutil.chown(path, "postgres", "postgres")
    log = stack.work / "postgres.log"
    log.touch()
    shutil.chown(log, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, "initdb", "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = stack.ports["postgres"] = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_postgres, "pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start"], check=True
    )
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def stop_postgres(stack: Stack) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "pg_ctl",
                "-D",
                str(stack.work / "pgdata"),
                "-m",
                "fast",
                "stop",
            ],
            check=True,
            capture_output=True,
        )


def service_env(stack: Stack, database_url: str, identity: Any, model_dir: Path) -> dict[str, str]:
    """The service's settings: every address on this namespace's loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHRSUM_")}
    api = stack.ports["api"]
    env.update(
        {
            "EHRSUM_CACHE": str(CACHE),
            "EHRSUM_DATA_DIR": str(stack.work / "var"),
            "EHRSUM_DATABASE_URL": database_url,
            "EHRSUM_BROKER_URL": f"redis://127.0.0.1:{stack.ports['redis']}/0",
            "EHRSUM_FHIR_BASE_URL": fhir_server.base_url(stack.ports["fhir"]),
            "EHRSUM_LLM_BASE_URL": f"http://127.0.0.1:{stack.ports['llm']}/v1",
            "EHRSUM_LLM_MODEL": "gemma3-270m",
            "EHRSUM_TOKENIZER_PATH": str(model_dir),
            "EHRSUM_NOTIFICATION_SECRET": SECRET,
            "EHRSUM_NOTIFICATION_ENDPOINT_URL": f"http://127.0.0.1:{api}/v1/notifications",
            "EHRSUM_DEBOUNCE_S": "2",
            "EHRSUM_POLL_INTERVAL_S": "15",
            "EHRSUM_SWEEP_INTERVAL_S": "10",
            "EHRSUM_SUBSCRIPTION_TOPICS": '["http://sekmet.dev/fhir/SubscriptionTopic/encounter-start"]',
            **identity.env(),
            **llm_cpu.DEMO_LIMITS,
        }
    )
    return env


def workload(stack: Stack, env: dict[str, str], identity: Any) -> dict[str, Any]:
    """Jobs, notifications and approvals, as an EHR and a clinician drive them; what happened."""
    api = f"http://127.0.0.1:{stack.ports['api']}"
    fhir = env["EHRSUM_FHIR_BASE_URL"]
    auth = {"Authorization": f"Bearer {identity.token()}"}
    done: dict[str, Any] = {}
    subscribed = subprocess.run(
        [str(BIN / "ehrsum"), "subscribe"], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    done["subscriptions"] = [s["subscription"] for s in json.loads(subscribed.stdout)]
    records = sorted(patients.cached("synthea", 3, 42, CACHE / "patients"), key=lambda p: p.stat().st_size)
    first, second = (patients.load(fhir, path) for path in records[:2])
    say(f"loaded Patient/{first} and Patient/{second}; asking for a summary through the API")

    job = httpx.post(f"{api}/v1/summaries", json={"patient": first}, headers=auth, timeout=30).json()

    def finished() -> Any:
        state = httpx.get(f"{api}/v1/summaries/{job['id']}", headers=auth, timeout=30).json()
        return state if state["status"] in ("succeeded", "failed") else None

    state = wait_for(finished, 900, "the API job", interval=1)
    done["api_job"] = state["status"]
    say(f"API job {state['status']}; an Encounter on the FHIR server for the notifications to carry")
    encounter = patients.encounter_now(second)
    httpx.post(f"{fhir}/Encounter", json=encounter, timeout=30).raise_for_status()

    def notified_draft() -> Any:
        drafts = httpx.get(f"{api}/v1/drafts", params={"patient": second}, headers=auth, timeout=30).json()
        return drafts[0] if drafts else None

    draft = wait_for(notified_draft, 900, "the notified job's draft", interval=1)
    done["notified_draft"] = draft["ref"]
    say(f"notification led to {draft['ref']}; approving one draft by API and one on the FHIR server")
    [api_draft] = state["draft_refs"] or [None]
    if api_draft:
        version = httpx.get(f"{fhir}/{api_draft}", timeout=30).json()["meta"]["versionId"]
        approved = httpx.post(
            f"{api}/v1/{api_draft.replace('DocumentReference', 'drafts')}/approve",
            headers={**auth, "If-Match": f'W/"{version}"'},
            timeout=60,
        )
        done["api_approval"] = approved.status_code
    current = httpx.get(f"{fhir}/{draft['ref']}", timeout=30)
    doc = {**current.json(), "docStatus": "final", "authenticator": {"reference": "Practitioner/egress-dr"}}
    httpx.put(f"{fhir}/{draft['ref']}", json=doc, headers={"If-Match": current.headers["ETag"]}, timeout=30)

    def tracked() -> Any:
        row = httpx.get(
            f"{api}/v1/{draft['ref'].replace('DocumentReference', 'drafts')}", headers=auth, timeout=30
        )
        return row.json()["state"] if row.json().get("state") == "approved" else None

    done["ehr_approval"] = wait_for(tracked, 300, "the approval on the FHIR server to come back", interval=1)
    done["readyz"] = httpx.get(f"{api}/readyz", timeout=30).json()["checks"]
    time.sleep(20)  # a polling round and a sweep by beat
    return done


def inside(work: Path) -> int:
    """Run the stack and the workload (this process runs inside the namespace, under strace)."""
    from tests.support.identity import IdentityProvider

    os.umask(0o077)  # the FHIR server's records, the job database: ours alone
    stack = Stack(work)
    (work / "var").mkdir()
    for name in ("redis", "fhir", "llm", "api"):
        stack.ports[name] = free_port()
    identity = IdentityProvider().start()
    stack.ports["idp"] = int(identity.server.server_port)
    database_url = start_postgres(stack)
    try:
        stack.spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(stack.ports["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        stack.procs.append(fhir_server.start(work / "sekmet", stack.ports["fhir"]))
        model_dir = llm_cpu.ensure_setup()
        command, llm_env = llm_cpu.server_command(stack.ports["llm"], "127.0.0.1", "gemma3-270m")
        llm = stack.spawn("vllm", command, llm_env)
        env = service_env(stack, database_url, identity, model_dir)
        subprocess.run([str(BIN / "ehrsum"), "init-db"], env=env, cwd=REPO, check=True)
        ehrsum = str(BIN / "ehrsum")
        api = stack.spawn("api", [ehrsum, "api", "--port", str(stack.ports["api"])], env)
        stack.spawn("worker", [ehrsum, "worker", "--pool", "solo"], env)
        stack.spawn("beat", [ehrsum, "beat"], env)
        wait_http(f"http://127.0.0.1:{stack.ports['api']}/healthz", 60, api, work / "api.log")
        wait_http(f"http://127.0.0.1:{stack.ports['llm']}/v1/models", 600, llm, work / "vllm.log")
        say(f"stack up inside the namespace: {stack.ports}")
        done = workload(stack, env, identity)
    finally:
        stack.stop_all()
        stop_postgres(stack)
        identity.stop()
    (work / "ports.json").write_text(json.dumps(stack.ports))
    (work / "done.json").write_text(json.dumps(done, default=str))
    return 0


# ---------------------------------------------------------------- outside: namespace, trace, report


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """A network namespace with only loopback, removed afterwards."""
    name = f"ehrsum-egress-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@dataclass
class Attempt:
    """One traced connect() or addressed send."""

    program: str
    call: str
    family: str
    address: str
    port: int | None
    result: str


# strace -f -o FILE: "PID  call(args) = result"
CALL = re.compile(r"^(\d+)\s+(connect|sendto|sendmsg)\((.*)$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (connect|sendto|sendmsg) resumed>.*= (-?\d+)(?: (\w+))?")
EXEC = re.compile(r'^(\d+)\s+execve\("[^"]*", \[(.*?)\]')
SPAWN = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(?:clone3?|fork|vfork)(?: resumed>)?.*= (\d+)$")
FAMILY = re.compile(r"sa_family=(AF_\w+)")
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
ADDR = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"|sun_path=@?"([^"]*)"')
RESULT = re.compile(r"= (-?\d+)(?: (\w+))?")


def program_of(argv: str) -> str:
    """A short name for a traced process from its argv."""
    args = re.findall(r'"((?:[^"\\]|\\.)*)"', argv)
    joined = " ".join(args)
    if any(a.endswith("/ehrsum") for a in args):
        index = next(i for i, a in enumerate(args) if a.endswith("/ehrsum"))
        return f"ehrsum {args[index + 1]}" if index + 1 < len(args) else "ehrsum"
    for needle, name in (
        ("egress.py", "driver (load generator, identity provider)"),
        ("vllm", "vllm (LLM server)"),
        ("sekmet", "sekmet-fhir (FHIR server)"),
        ("redis-server", "redis-server (broker)"),
        ("postgres", "postgres (database)"),
        ("initdb", "postgres (database)"),
        ("pg_ctl", "postgres (database)"),
    ):
        if needle in joined:
            return name
    return Path(args[0]).name if args else "?"


def read_trace(path: Path) -> list[Attempt]:
    """Every connect() and addressed send of the trace, attributed to its program."""
    names: dict[int, str] = {}
    pending: dict[int, Attempt] = {}
    attempts: list[Attempt] = []
    for line in path.read_text(errors="replace").splitlines():
        if match := EXEC.match(line):
            if line.rstrip().endswith("= 0") or "<unfinished" in line:
                names[int(match[1])] = program_of(match[2])
            continue
        if match := SPAWN.match(line):
            # The child may have exec'd (and been named) before its parent's clone returned in the trace.
            names.setdefault(int(match[2]), names.get(int(match[1]), "?"))
            continue
        if match := RESUMED.match(line):
            attempt = pending.pop(int(match[1]), None)
            if attempt is not None:
                attempt.result = "ok" if int(match[3]) >= 0 else (match[4] or match[3])
                attempts.append(attempt)
            continue
        match = CALL.match(line)
        if match is None or not (family := FAMILY.search(match[3])):
            continue
        if family[1] not in ("AF_INET", "AF_INET6", "AF_UNIX"):
            continue
        addr = ADDR.search(match[3])
        port = PORT.search(match[3])
        attempt = Attempt(
            program=names.get(int(match[1]), "?"),
            call=match[2],
            family=family[1],
            address=next((g for g in addr.groups() if g is not None), "?") if addr else "?",
            port=int(port[1]) if port else None,
            result="?",
        )
        if "<unfinished" in line:
            pending[int(match[1])] = attempt
            continue
        result = RESULT.search(line.rsplit(")", 1)[-1]) or RESULT.search(line)
        attempt.result = (
            "ok" if result and int(result[1]) >= 0 else (result[2] or result[1]) if result else "?"
        )
        attempts.append(attempt)
    return attempts


def roles(ports: dict[str, int]) -> dict[int, str]:
    """Port → what listens there, for loopback destinations."""
    named = {
        "postgres": "database (Postgres)",
        "redis": "broker (Redis)",
        "fhir": "FHIR server",
        "llm": "LLM server",
        "idp": "identity provider (JWKS)",
        "api": "our API (notifications, the load generator)",
    }
    return {port: named[name] for name, port in ports.items()}


def report(attempts: list[Attempt], ports: dict[str, int]) -> int:
    """Print destinations per program; 1 when our service tried anything it is not configured for, 2 when
    the trace shows none of our processes connecting at all (then it proves nothing)."""
    role_of = roles(ports)
    allowed_for_us = {ports[n] for n in ("postgres", "redis", "fhir", "llm", "idp")}
    by_program: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
    unix: dict[str, Counter[str]] = defaultdict(Counter)
    violations: list[str] = []
    for a in attempts:
        if a.family == "AF_UNIX":
            unix[a.program][a.address] += 1
            continue
        loopback = a.address.startswith("127.") or a.address == "::1"
        role = role_of.get(a.port or -1, "its own internal port") if loopback else "OUTSIDE THE HOST"
        by_program[a.program][(f"{a.address}:{a.port}", role, a.result)] += 1
        if a.program in OUR_PROGRAMS and (not loopback or a.port not in allowed_for_us):
            violations.append(f"{a.program} -> {a.address}:{a.port} ({a.result})")
    print(
        f"Egress: {len(attempts)} traced connect()/addressed sends inside a loopback-only network namespace"
    )
    print(f"listening: {json.dumps(ports)}\n")
    print("| process | destination | what it is | result | attempts |")
    print("| --- | --- | --- | --- | ---: |")
    for program in sorted(by_program):
        for (dest, role, result), count in sorted(by_program[program].items()):
            print(f"| {program} | {dest} | {role} | {result} | {count} |")
    print("\nUnix sockets (local IPC, not network):")
    for program in sorted(unix):
        paths = ", ".join(f"{p or '(unnamed)'} x{n}" for p, n in sorted(unix[program].items()))
        print(f"  {program}: {paths}")
    outside = sum(
        1
        for a in attempts
        if a.family != "AF_UNIX" and not (a.address.startswith("127.") or a.address == "::1")
    )
    print(f"\nattempts to leave the host (any process): {outside}")
    ours = ", ".join(OUR_PROGRAMS)
    print(
        f"our processes ({ours}) outside the configured FHIR, LLM, IdP, database, broker: {len(violations)}"
    )
    for v in violations:
        print(f"  ! {v}")
    if not any(a.program in OUR_PROGRAMS and a.family != "AF_UNIX" for a in attempts):
        print("no connection of our processes in the trace: it proves nothing")
        return 2
    return 1 if violations else 0


QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"(?:\.\.\.)?')


def sanitized(trace: Path) -> str:
    """The trace with the data of every send blanked (HTTP bodies carry PHI): calls, addresses, results."""
    lines = trace.read_text(errors="replace").splitlines()
    return "\n".join(QUOTED.sub('"..."', ln) if " send" in ln else ln for ln in lines) + "\n"


def outside(keep: Path | None) -> int:
    """Make the namespace, run this script inside it under strace, report."""
    if os.geteuid() != 0:
        raise SystemExit("egress: needs root (ip netns, strace of every process)")
    for tool in ("ip", "strace", "runuser", "redis-server", "initdb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"egress: {tool} is not installed")
    private = Path(tempfile.mkdtemp(prefix="ehrsum-egress-"))  # 0700: the raw trace holds send buffers
    work = Path(tempfile.mkdtemp(prefix="ehrsum-egress-stack-"))
    work.chmod(0o711)  # the postgres user walks through to its own directories; the rest are 0700
    trace = private / "connect.strace"
    started = time.monotonic()
    status = 2
    try:
        with namespace() as name:
            links = subprocess.run(
                ["ip", "netns", "exec", name, "ip", "-brief", "addr"], capture_output=True, text=True
            )
            say(f"namespace {name}: {links.stdout.strip()}")
            command = ["ip", "netns", "exec", name, "strace", "-f", "--seccomp-bpf", "-qq", "-s", "200"]
            command += [
                "-e",
                f"trace={TRACED}",
                "-o",
                str(trace),
                sys.executable,
                __file__,
                "--inside",
                str(work),
            ]
            run = subprocess.run(command, check=False)
        if run.returncode != 0:
            say(f"the run inside failed ({run.returncode}); see the logs")
            return status
        ports = json.loads((work / "ports.json").read_text())
        done = json.loads((work / "done.json").read_text())
        status = report(read_trace(trace), ports)
        print(f"\nworkload: {json.dumps(done)}")
        print(f"wall time {time.monotonic() - started:.0f} s")
        return status
    finally:
        if keep or status == 2:
            keep = keep or Path(f"/tmp/ehrsum-egress-logs-{os.getpid()}")
            keep.mkdir(mode=0o700, parents=True, exist_ok=True)
            for item in work.glob("*.log"):
                shutil.copy(item, keep / item.name)
            if trace.exists():
                (keep / "connect.strace").write_text(sanitized(trace))
                (keep / "connect.strace").chmod(0o600)
            if (work / "ports.json").exists():
                shutil.copy(work / "ports.json", keep / "ports.json")
            say(f"logs and the sanitized trace in {keep}")
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="copy the logs, ports and the sanitized trace here")
    parser.add_argument(
        "--analyse", type=Path, metavar="DIR", help="report on a kept DIR again, running nothing"
    )
    args = parser.parse_args()
    if args.analyse:
        ports = json.loads((args.analyse / "ports.json").read_text())
        return report(read_trace(args.analyse / "connect.strace"), ports)
    return inside(args.inside) if args.inside else outside(args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
