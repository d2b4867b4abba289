"""The `ehrsum` command line."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from services.census_cli import add_parser as add_census_parser
from services.core import tracing
from services.core.errors import EhrSumError, InputError
from services.core.logging import configure_logging
from services.core.settings import get_settings
from services.guidelines_cli import add_parser as add_guidelines_parser


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def cmd_timeline(args: argparse.Namespace) -> int:
    """Print a record's timeline, from a Bundle file or from a FHIR server."""
    from clinical_notes.budget import fit_budget
    from clinical_notes.timeline_text import render_timeline
    from clinical_notes.tokens import token_counter
    from fhir_adapters.condense import condense
    from fhir_adapters.record import fetch_record, record_from_bundle
    from fhir_adapters.references import id_of
    from workers.clients import fhir_client

    settings = get_settings()
    if args.file:
        record = record_from_bundle(Path(args.file), args.patient)
    elif args.patient:
        patient_id = id_of(args.patient, "Patient", "--patient")

        async def fetch() -> Any:
            async with fhir_client(settings, args.fhir_url) as client:
                return await fetch_record(client, patient_id)

        record = asyncio.run(fetch())
    else:
        raise InputError("give a Bundle FILE, or --patient ID (with --fhir-url or EHRSUM_FHIR_BASE_URL)")
    timeline = condense(record)
    if args.budget:
        timeline = fit_budget(timeline, args.budget, token_counter(settings.tokenizer_path))
    if args.json:
        _print_json(timeline.model_dump(mode="json", exclude_none=True))
    else:
        sys.stdout.write(render_timeline(timeline) + "\n")
    return 0


def cmd_triage(args: argparse.Namespace) -> int:
    """Screen records with the triage rules alone (no model): one line, or one block, per record."""
    from concurrent.futures import ProcessPoolExecutor

    from fhir_adapters.record import fetch_record
    from workers.clients import fhir_client

    if not args.files and not args.patient:
        raise InputError("give Bundle FILEs, or --patient ID (with --fhir-url or EHRSUM_FHIR_BASE_URL)")
    if args.jobs < 1:
        raise InputError("--jobs must be at least 1")
    if args.files:
        jobs = [(str(path), args.patient, args.encounter, args.scale) for path in args.files]
        if args.jobs == 1 or len(jobs) == 1:
            return _print_triage(map(_triage_file, jobs), args.json)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            chunk = max(1, len(jobs) // (args.jobs * 8))
            return _print_triage(pool.map(_triage_file, jobs, chunksize=chunk), args.json)

    async def fetch() -> Any:
        async with fhir_client(get_settings(), args.fhir_url) as client:
            return await fetch_record(client, args.patient)

    line = _triage_line(None, asyncio.run(fetch()), args.encounter, args.scale)
    return _print_triage(iter([line]), args.json)


def _print_triage(lines: Iterator[dict[str, Any]], as_json: bool) -> int:
    """Print each record's line as it comes; 2 when a file could not be read."""
    failed = 0
    for line in lines:
        if "error" in line:
            failed += 1
            sys.stderr.write(f"ehrsum: error: {line['error']}\n")
        if as_json:
            sys.stdout.write(
                json.dumps({k: v for k, v in line.items() if k != "complaints"}, ensure_ascii=False)
            )
            sys.stdout.write("\n")
        elif "error" not in line:
            sys.stdout.write(_screen_text(line))
    return 2 if failed else 0


def _triage_file(job: tuple[str, str | None, str | None, str | None]) -> dict[str, Any]:
    """The triage line of one Bundle file, or its error (runs in a worker process)."""
    from fhir_adapters.record import record_from_bundle

    path, patient, encounter, scale = job
    try:
        return _triage_line(path, record_from_bundle(Path(path), patient), encounter, scale)
    except InputError as exc:
        return {"file": path, "error": str(exc)}


def _triage_line(label: str | None, record: Any, encounter: str | None, scale: Any) -> dict[str, Any]:
    """What `ehrsum triage` prints of a record: its screen's encounter, scale, graded level, highest
    severity, flags, statement. The scale is the one given, else the department's or the hospital's."""
    from clinical_notes.screen import highest, triage
    from fhir_adapters.condense import condense
    from fhir_adapters.departments import departments
    from workers.model_routing import scale_for

    used = scale or scale_for(get_settings(), departments(record))
    result, flags = triage(condense(record), encounter, used)
    return {
        "file": label,
        "patient": f"Patient/{record.patient_id}",
        "encounter": result.encounter,
        "scale": result.scale,
        "level": result.level,
        "consider": result.consider,
        "severity": highest(flags),
        "flags": [f.model_dump(exclude_none=True) for f in flags],
        "statement": result.statement,
        "complaints": result.complaints,
    }


def _screen_text(line: dict[str, Any]) -> str:
    """A screen as a clinician reads it on a terminal."""
    head = " ".join(str(x) for x in (line["file"], line["patient"], line["encounter"] or "no encounter") if x)
    level = f"{line['scale'].upper()} level {line['level'] or '3-5'}"
    lines = [f"{head}: {line['severity'].upper()} ({level})", f"  {line['statement']}"]
    lines += [f"  complaint {c}" for c in line["complaints"]]
    for flag in line["flags"]:
        lines.append(f"  - {flag['severity'].upper()} {flag['title']}: {flag['rationale']}")
    return "\n".join(lines) + "\n\n"


def cmd_summarize(args: argparse.Namespace) -> int:
    """Summarize a patient: queue a job, run it inline, or generate from a Bundle file without writing."""
    settings = get_settings()
    if args.llm_url:
        settings = settings.model_copy(update={"llm_base_url": args.llm_url})
    kinds = args.kind or ["progress"]
    if args.record:
        return _summarize_file(args, kinds, settings)
    if not args.patient:
        raise InputError("give --patient ID or --record BUNDLE")
    from fhir_adapters.references import id_of
    from services.core.db import session_scope
    from services.jobs.service import create_job, get_job
    from services.schema import init_db
    from workers.submission import submit

    init_db()
    patient_id = id_of(args.patient, "Patient", "--patient")
    encounter = id_of(args.encounter, "Encounter", "--encounter") if args.encounter else None
    with session_scope() as session:
        if not args.inline:
            submitted = submit(session=session, patient_id=patient_id, kinds=kinds, encounter_id=encounter)
            _print_json({"job_id": submitted.job.id, "status": "queued", "on_broker": submitted.on_broker})
            return 0
        job_id = create_job(session=session, patient_id=patient_id, kinds=kinds, encounter_id=encounter)[0].id
    from workers.jobrunner import summarize_job

    summarize_job(job_id, wait=time.sleep)
    with session_scope() as session:
        job = get_job(session=session, job_id=job_id)
        _print_json(
            {"job_id": job.id, "status": job.status.value, "draft_refs": job.draft_refs, "reason": job.reason}
        )
        return 0 if job.status.value == "succeeded" else 1


def _summarize_file(args: argparse.Namespace, kinds: list[str], settings: Any) -> int:
    from fhir_adapters.record import record_from_bundle
    from workers.clients import llm_client
    from workers.pipeline import Pipeline

    record = record_from_bundle(Path(args.record), args.patient)

    async def generate() -> Any:
        async with llm_client(settings) as llm:
            return await Pipeline(settings, llm=llm).run(record, kinds, write=False, encounter=args.encounter)

    result = asyncio.run(generate())
    for r in result.results:
        if r.not_applicable:
            sys.stderr.write(f"ehrsum: {r.kind}: {r.not_applicable}\n")
    drafts = [
        {**r.note.model_dump(), "verification": r.verification_json()} for r in result.results if r.note
    ]
    payload: Any = drafts[0] if len(drafts) == 1 else drafts
    if args.out:
        Path(args.out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        for r in result.results:
            sys.stdout.write(r.markdown or "")
    else:
        _print_json(payload)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a draft against a record; print the report; exit 1 on any violation."""
    from pydantic import ValidationError

    from clinical_notes.draft import NoteDraft
    from clinical_notes.rules import rule_flags
    from clinical_notes.verifier import Verifier, flag_backing
    from fhir_adapters.condense import condense
    from fhir_adapters.evidence import RecordEvidence
    from fhir_adapters.record import record_from_bundle
    from workers.transcripts import transcript_evidence

    record = record_from_bundle(Path(args.record), args.patient)
    try:
        draft = NoteDraft.model_validate_json(Path(args.draft).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {args.draft}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise InputError(
            f"{args.draft} is not a draft of the minimum shape ({exc.error_count()} errors)"
        ) from exc
    timeline = condense(record)
    backing = flag_backing(timeline, rule_flags(timeline)[0])
    evidence = asyncio.run(transcript_evidence(record, get_settings(), draft.cited(), RecordEvidence(record)))
    report = Verifier(evidence, backing=backing).verify(draft)
    _print_json(report.model_dump())
    return 0 if report.passed else 1


def cmd_draft(args: argparse.Namespace) -> int:
    """Print a draft DocumentReference as a clinician reads it."""
    from fhir_adapters.references import parse_reference
    from workers.clients import fhir_client

    settings = get_settings()
    ref = parse_reference(args.ref if "/" in args.ref else f"DocumentReference/{args.ref}", what="REF")

    async def read() -> dict[str, Any]:
        async with fhir_client(settings, args.fhir_url) as client:
            return await client.read(ref.type, ref.id)

    doc = asyncio.run(read())
    sys.stdout.write(f"{ref}  status={doc.get('status')}  docStatus={doc.get('docStatus')}\n\n")
    for content in doc.get("content", []):
        attachment = content.get("attachment", {})
        if str(attachment.get("contentType", "")).startswith("text/markdown"):
            sys.stdout.write(base64.b64decode(attachment.get("data", "")).decode("utf-8"))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Queue failed jobs again with a fresh retry budget: the ones named, or all failed since a time."""
    from datetime import UTC, datetime, timedelta

    from services.core.db import session_scope
    from services.jobs.service import failed_since
    from services.schema import init_db
    from workers.submission import resubmit

    if bool(args.job) == (args.failed_since is not None):
        raise InputError("name JOB ids, or give --failed-since HOURS")
    init_db()
    retried = []
    with session_scope() as session:
        since = datetime.now(UTC) - timedelta(hours=args.failed_since or 0)
        for job_id in args.job or failed_since(session=session, since=since):
            resubmit(session=session, job_id=job_id)
            retried.append(job_id)
    _print_json({"retried": retried})
    return 0


def cmd_sweep(_: argparse.Namespace) -> int:
    """Run one job sweep now (beat runs it every EHRSUM_SWEEP_INTERVAL_S) and print what it queued."""
    from dataclasses import asdict

    from services.schema import init_db
    from workers.queueing import sweep_jobs

    init_db()
    _print_json(asdict(sweep_jobs()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker on EHRSUM_WORKER_QUEUES."""
    from services.schema import init_db
    from workers.celery_app import celery_app
    from workers.clients import check_clients

    check_clients(get_settings())
    init_db()
    argv = [
        "worker",
        "--queues",
        ",".join(get_settings().worker_queues),
        "--loglevel",
        args.loglevel,
        "--concurrency",
        str(args.concurrency),
        "--pool",
        args.pool,
    ]
    celery_app.worker_main(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    """Run Celery beat: `_lastUpdated` polling and the debounce sweep on their schedules."""
    from services.core.db import private_dir
    from services.schema import init_db
    from workers.celery_app import celery_app
    from workers.clients import check_clients

    check_clients(get_settings())
    init_db()
    schedule = private_dir(get_settings().data_dir) / "celerybeat-schedule"
    celery_app.start(["beat", "--loglevel", args.loglevel, "--schedule", str(schedule)])
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API."""
    from services.api.server import serve
    from workers.clients import check_clients

    settings = get_settings()
    check_clients(settings)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InputError("--tls-cert and --tls-key go together")
    serve(
        "services.api.app:create_app",
        settings,
        host=args.host,
        port=args.port,
        workers=args.workers,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    return 0


def cmd_openapi(_: argparse.Namespace) -> int:
    """Print the OpenAPI document."""
    from services.api.app import create_app

    _print_json(create_app().openapi())
    return 0


def cmd_init_db(_: argparse.Namespace) -> int:
    """Apply the database migrations."""
    from services.schema import init_db

    init_db()
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    """Register our subscriptions on the FHIR server (idempotent) and start tracking their events."""
    from workers.subscribing import subscribe

    _print_json(subscribe(get_settings(), args.fhir_url))
    return 0


def cmd_subscriptions(args: argparse.Namespace) -> int:
    """List our subscriptions: the server's status beside our event counters."""
    from workers.subscribing import describe

    _print_json(describe(get_settings(), args.fhir_url))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="ehrsum", description="Summaries of FHIR records as draft notes.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("timeline", help="print a record's condensed timeline")
    p.add_argument("file", nargs="?", help="a Bundle JSON file")
    p.add_argument("--patient", help="patient id (on the server, or within the file)")
    p.add_argument("--fhir-url", help="FHIR base URL (default: EHRSUM_FHIR_BASE_URL)")
    p.add_argument("--budget", type=int, help="fit to this many tokens")
    p.add_argument("--json", action="store_true", help="print JSON instead of prompt text")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("triage", help="screen records with the triage rules alone (no model)")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="Bundle JSON files")
    p.add_argument("--patient", help="patient id (on the server, or within the file)")
    p.add_argument(
        "--encounter", help="screen this encounter (default: the newest, or the ED visit it began with)"
    )
    p.add_argument("--fhir-url", help="FHIR base URL (default: EHRSUM_FHIR_BASE_URL)")
    p.add_argument("--json", action="store_true", help="one JSON line per record")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for many files (default 1)")
    p.add_argument(
        "--scale",
        choices=("esi", "ctas", "ktas"),
        help="triage scale (default: EHRSUM_DEPARTMENT_TRIAGE_SCALES for the record's department, else "
        "EHRSUM_TRIAGE_SCALE)",
    )
    p.set_defaults(func=cmd_triage)

    p = sub.add_parser("summarize", help="summarize a patient")
    p.add_argument("--patient", help="patient id on the FHIR server")
    p.add_argument("--kind", action="append", help="note kind (repeatable; default progress)")
    p.add_argument("--inline", action="store_true", help="run here instead of queueing")
    p.add_argument("--record", help="a Bundle file: generate without writing back")
    p.add_argument("--out", help="with --record: write the draft JSON here")
    p.add_argument("--encounter", help="the encounter a SOAP note is for (its visit transcript is read)")
    p.add_argument("--llm-url", help="LLM base URL (default: EHRSUM_LLM_BASE_URL)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("verify", help="check a draft against a record (exit 1 on a violation)")
    p.add_argument("--record", required=True, help="the Bundle file the draft was made from")
    p.add_argument("--draft", required=True, help="draft JSON of the minimum shape")
    p.add_argument("--patient", help="patient id within the Bundle, when it holds several")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("draft", help="print a draft from the FHIR server as a clinician reads it")
    p.add_argument("ref", help="DocumentReference/ID or ID")
    p.add_argument("--fhir-url", help="FHIR base URL (default: EHRSUM_FHIR_BASE_URL)")
    p.set_defaults(func=cmd_draft)

    p = sub.add_parser("retry", help="queue failed jobs again with a fresh retry budget")
    p.add_argument("job", nargs="*", help="job ids")
    p.add_argument(
        "--failed-since", type=float, metavar="HOURS", help="every job that failed in the last HOURS"
    )
    p.set_defaults(func=cmd_retry)

    sub.add_parser("sweep", help="queue again the jobs the broker lost or whose worker died").set_defaults(
        func=cmd_sweep
    )

    p = sub.add_parser("worker", help="run a Celery worker")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="run the schedules: polling fallback, debounce sweep")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("api", help="serve the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8400)
    p.add_argument("--workers", type=int, default=1, help="API processes (one per core on a VM; 1 in a pod)")
    p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain) instead of plain HTTP")
    p.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("subscribe", help="register our subscriptions on the FHIR server (idempotent)")
    p.add_argument("--fhir-url", help="FHIR base URL (default: EHRSUM_FHIR_BASE_URL)")
    p.set_defaults(func=cmd_subscribe)

    p = sub.add_parser("subscriptions", help="list our subscriptions and their status")
    p.add_argument("--fhir-url", help="FHIR base URL (default: EHRSUM_FHIR_BASE_URL)")
    p.set_defaults(func=cmd_subscriptions)

    add_census_parser(sub)
    add_guidelines_parser(sub)

    sub.add_parser("openapi", help="print the OpenAPI document").set_defaults(func=cmd_openapi)
    sub.add_parser("init-db", help="apply database migrations (alembic upgrade head)").set_defaults(
        func=cmd_init_db
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line on stderr and exit 2 for bad input, 1 for other known failures.

    The settings are validated first, so a misconfigured api, worker or beat stops at start with one line.
    """
    args = build_parser().parse_args(argv)
    # What we write (the SQLite database, beat's schedule) is ours alone: it may hold PHI.
    os.umask(0o077)
    try:
        configure_logging(get_settings().log_level)
        tracing.configure(f"ehr-summarizer-{args.command}", get_settings().otel_endpoint)
        return int(args.func(args))
    except InputError as exc:
        sys.stderr.write(f"ehrsum: error: {exc}\n")
        return 2
    except EhrSumError as exc:
        sys.stderr.write(f"ehrsum: error: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
