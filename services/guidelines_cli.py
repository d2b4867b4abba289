"""`ehrsum guidelines`: what the guideline library holds, and which passages the model would be given."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.core.errors import InputError
from services.core.settings import get_settings


def _library(folder: str | None) -> Any:
    from fhir_adapters.guidelines import load_library

    settings = get_settings()
    path = Path(folder) if folder else settings.guidelines_dir
    if path is None:
        raise InputError("give a guideline folder (DIR or --dir), or set EHRSUM_GUIDELINES_DIR")
    try:
        return load_library(path, settings.guidelines_max_file_bytes)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _line(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def cmd_index(args: argparse.Namespace) -> int:
    """Split a folder into passages: their ids (with --json, one line each), then what was skipped and why."""
    library = _library(args.dir)
    for path, reason in library.skipped:
        sys.stderr.write(f"ehrsum: skipped {path}: {reason}\n")
    if args.json:
        for p in library.passages:
            _line(
                {
                    "id": p.id,
                    "document": p.document,
                    "section": p.section,
                    "version": p.version,
                    "words": len(p.text.split()),
                }
            )
        for path, reason in library.skipped:
            _line({"skipped": path, "reason": reason})
    else:
        for p in library.passages:
            sys.stdout.write(f"{p.id}\t{p.title} / {p.section}\n")
        counts = (library.documents, len(library.passages), len(library.skipped))
        sys.stdout.write("{} documents, {} passages, {} skipped\n".format(*counts))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """The passages each active problem, abnormal result and medication of a record retrieves, with scores."""
    from clinical_notes.guidelines import retrieve
    from fhir_adapters.condense import condense
    from fhir_adapters.record import record_from_bundle

    library = _library(args.dir)
    timeline = condense(record_from_bundle(Path(args.record), args.patient))
    for need, hits in retrieve(library, timeline, args.k):
        base = {"need": need.what, "ref": need.ref, "name": need.name}
        if args.json:
            for rank, (passage, score) in enumerate(hits, 1):
                _line({**base, "rank": rank, "passage": passage.id, "score": round(score, 3)})
            if not hits:
                _line({**base, "rank": None, "passage": None, "score": None})
            continue
        sys.stdout.write(f"{need.what} {need.name} ({need.ref})\n")
        for passage, score in hits:
            sys.stdout.write(f"  {score:6.2f}  {passage.id}\n")
        if not hits:
            sys.stdout.write("  no passage covers it\n")
    return 0


def add_parser(sub: Any) -> None:
    """The `guidelines` subcommands."""
    top = sub.add_parser("guidelines", help="the guideline library: index a folder, search it for a record")
    inner = top.add_subparsers(dest="guidelines_command", required=True)
    p = inner.add_parser("index", help="split a folder into passages; list them and what was skipped")
    p.add_argument("dir", nargs="?", help="the folder (default: EHRSUM_GUIDELINES_DIR)")
    p.add_argument("--json", action="store_true", help="one JSON line per passage, then per skipped file")
    p.set_defaults(func=cmd_index)
    p = inner.add_parser("search", help="the passages the model would be given for a record")
    p.add_argument("--record", required=True, help="a Bundle file")
    p.add_argument("--patient", help="patient id within the Bundle, when it holds several")
    p.add_argument("--dir", help="the guideline folder (default: EHRSUM_GUIDELINES_DIR)")
    p.add_argument("--k", type=int, default=5, help="passages per problem, result or medication (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON line per passage and need")
    p.set_defaults(func=cmd_search)
