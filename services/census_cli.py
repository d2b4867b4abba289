"""`ehrsum census`: summarize a population through the job queue, with progress and a closing table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from services.core.errors import InputError

if TYPE_CHECKING:
    from services.jobs.census import CensusPublic

BAR_WIDTH = 28
MAX_IDS_FILE_BYTES = 10_000_000


def read_ids(path: Path) -> tuple[str, ...]:
    """Patient ids from a file: one per line, `ID` or `Patient/ID`; blank lines and `#` comments skipped."""
    from fhir_adapters.references import id_of

    try:
        if path.stat().st_size > MAX_IDS_FILE_BYTES:
            raise InputError(f"{path}: larger than {MAX_IDS_FILE_BYTES} bytes")
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc
    ids = []
    for number, line in enumerate(lines, 1):
        value = line.split("#", 1)[0].strip()
        if value:
            ids.append(id_of(value, "Patient", f"{path} line {number}: patient"))
    if not ids:
        raise InputError(f"{path}: no patient ids")
    return tuple(ids)


def duration(seconds: float | None) -> str:
    """`1h02m`, `3m05s` or `42s`; `?` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status_line(p: CensusPublic) -> str:
    """One plain line of progress (no PHI: counts only)."""
    if p.status.value == "resolving":
        return f"census {p.id}: finding the patients of {p.source}"
    done = p.succeeded + p.failed + p.skipped
    return (
        f"census {p.id}: {done}/{p.total} done ({p.succeeded} succeeded, {p.failed} failed, "
        f"{p.skipped} skipped), {p.running} running, {p.queued} queued, ETA {duration(p.eta_s)}"
    )


def bar_line(p: CensusPublic) -> str:
    """A progress bar with counts and ETA, for a terminal."""
    done = p.succeeded + p.failed + p.skipped
    filled = BAR_WIDTH * done // p.total if p.total else 0
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    failed = f" {p.failed} failed" if p.failed else ""
    times = f"ETA {duration(p.eta_s)}  elapsed {duration(p.elapsed_s)}"
    return f"[{bar}] {done}/{p.total}{failed}  {p.running} running  {times}"


class Progress:
    """Shows progress: a bar redrawn in place on a terminal, a plain line per change otherwise."""

    def __init__(self, out: TextIO):
        self.out = out
        self.tty = out.isatty()
        self.last = ""

    def show(self, p: CensusPublic) -> None:
        """Draw the latest progress."""
        if self.tty and p.status.value != "resolving":
            self.out.write("\r\x1b[2K" + bar_line(p))
            self.out.flush()
            return
        line = status_line(p)
        key = line.rsplit(", ETA", 1)[0]
        if key != self.last:
            self.out.write(line + "\n")
            self.out.flush()
            self.last = key

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            self.out.write("\n")


def closing_table(p: CensusPublic) -> str:
    """The census's outcome: counts, drafts, time, and each failure with its reason."""
    finished = p.succeeded + p.failed
    rate = f" ({finished / p.elapsed_s * 60:.1f} patients/min)" if finished and p.elapsed_s else ""
    rows = [
        ("patients", f"{p.total} ({p.resolved_by or 'not found'})"),
        ("succeeded", str(p.succeeded)),
        ("skipped", f"{p.skipped} (succeeded in an earlier run of '{p.run}')"),
        ("failed", str(p.failed)),
        ("not finished", str(p.total - finished - p.skipped)),
        ("drafts written", str(p.drafts_written)),
        ("time", duration(p.elapsed_s) + rate),
    ]
    lines = [f"census {p.id}  {p.source}  kinds {','.join(p.kinds)}  run {p.run}  {p.status.value}"]
    if p.reason:
        lines.append(f"  reason: {p.reason}")
    lines += [f"  {name:<15} {value}" for name, value in rows]
    if p.failures:
        lines.append("  failed:")
        lines += [
            f"    Patient/{f.patient}  job {f.job_id}  {f.reason or 'no reason recorded'}" for f in p.failures
        ]
    return "\n".join(lines) + "\n"


def cmd_census(args: argparse.Namespace) -> int:
    """Summarize a Group, a ward's in-progress encounters or listed patients; 1 when a job failed."""
    from clinical_notes.kinds import known_kinds
    from fhir_adapters.references import id_of
    from services.core.db import session_scope
    from services.core.settings import get_settings
    from services.jobs.census import get_census, progress
    from services.schema import init_db
    from workers.census import Population, advance, begin, populate

    sources = [s for s in (args.group, args.location, args.ids) if s]
    if len(sources) != 1:
        raise InputError("give one population: GROUP, --location ID or --ids FILE")
    kinds = known_kinds(args.kind or ["progress"])
    if not 1 <= args.concurrency <= 256:
        raise InputError("--concurrency must be 1-256")
    run = args.run or datetime.now(UTC).date().isoformat()
    if not 1 <= len(run) <= 64:
        raise InputError("--run must be 1-64 characters")
    if args.ids:
        population = Population(patients=read_ids(Path(args.ids)))
    elif args.location:
        population = Population(location=id_of(args.location, "Location", "--location"))
    else:
        population = Population(group=id_of(args.group, "Group", "GROUP"))
    get_settings()
    init_db()
    census_id = begin(population=population, kinds=kinds, run=run, concurrency=args.concurrency)
    shown = Progress(sys.stderr)
    with session_scope() as session:
        shown.show(progress(session=session, census=get_census(session=session, census_id=census_id)))
    populate(census_id, args.bulk)
    try:
        while True:
            now = advance(census_id)
            shown.show(now)
            if now.status.value not in ("resolving", "running"):
                break
            time.sleep(args.poll)
    except KeyboardInterrupt:
        shown.close()
        sys.stderr.write(f"ehrsum: census {census_id} interrupted; the same command resumes it (run {run})\n")
        return 130
    shown.close()
    if args.json:
        sys.stdout.write(json.dumps(now.model_dump(mode="json"), indent=2) + "\n")
    else:
        sys.stdout.write(closing_table(now))
    return 0 if now.status.value == "finished" and not now.failed else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `ehrsum census`."""
    p = sub.add_parser("census", help="summarize a population: a Group, a ward, or a file of patient ids")
    p.add_argument("group", nargs="?", metavar="GROUP", help="Group id on the FHIR server")
    p.add_argument("--location", metavar="ID", help="a ward: the patients of its in-progress encounters")
    p.add_argument("--ids", metavar="FILE", help="patient ids, one per line")
    p.add_argument("--kind", action="append", help="note kind (repeatable; default progress)")
    p.add_argument("--concurrency", type=int, default=4, help="jobs queued or running at once (default 4)")
    p.add_argument(
        "--run", help="run label (default: today's UTC date): the same label skips patients already done"
    )
    p.add_argument(
        "--bulk",
        choices=["auto", "always", "never"],
        default="auto",
        help="find a Group's patients by Bulk Data $export (auto: when the server declares it)",
    )
    p.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON instead of the table")
    p.set_defaults(func=cmd_census)
