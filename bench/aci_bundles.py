"""ACI-Bench encounters as FHIR: a Bundle of Patient, Encounter and the transcript DocumentReference.

The data (train 67, valid 20 encounters; CC BY 4.0, Yim et al. 2023) is in ../shared/data/aci-bench/. The
transcript goes in as ACI-Bench writes it, text/plain with one `[speaker] text` turn per line, inline or
as WebVTT; the DocumentReference is typed with the default transcript coding (EHRSUM_TRANSCRIPT_CODES).
"""

from __future__ import annotations

import base64
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "aci-bench"
TRANSCRIPT_SYSTEM, TRANSCRIPT_CODE = "urn:ehr-summarizer:document-kind", "visit-transcript"
VISIT_DAY = "2026-11-02"


@dataclass(frozen=True)
class AciEncounter:
    """One ACI-Bench encounter: its id, transcript, reference note and patient's age and sex."""

    id: str
    split: str
    transcript: str
    reference: str
    age: int | None
    sex: str | None


def data_dir() -> Path:
    """Where the ACI-Bench copy is (the shared data folder beside the repository)."""
    for base in (DATA, Path("/work/shared/data/aci-bench")):
        if base.exists():
            return base
    raise FileNotFoundError("ACI-Bench data not found beside the repository (../shared/data/aci-bench)")


def encounters(split: str) -> list[AciEncounter]:
    """The encounters of a split (train or valid)."""
    base = data_dir()
    meta: dict[str, dict[str, str]] = {}
    with (base / f"{split}_metadata.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            meta[f"{row['encounter_id']}-{row['dataset']}"] = row
    out = []
    for item in json.loads((base / f"{split}.json").read_text(encoding="utf-8"))["data"]:
        row = meta.get(item["file"], {})
        age = row.get("patient_age", "").strip().removesuffix(".0")
        out.append(
            AciEncounter(
                id=item["file"],
                split=split,
                transcript=item["src"],
                reference=item["tgt"],
                age=int(age) if age.isdigit() else None,
                sex=(row.get("patient_gender") or "").strip().lower() or None,
            )
        )
    return out


def as_vtt(transcript: str) -> str:
    """The same turns as WebVTT cues with `<v Speaker>` voices, one second each."""
    cues = ["WEBVTT", ""]
    lines = [line for line in transcript.splitlines() if line.strip()]
    for n, line in enumerate(lines):
        tagged = re.match(r"^\[(\w+)\]\s*(.*)$", line)
        speaker, said = (tagged[1], tagged[2]) if tagged else ("unknown", line)
        cues += [f"00:{n // 60:02d}:{n % 60:02d}.000 --> 00:{(n + 1) // 60:02d}:{(n + 1) % 60:02d}.000"]
        cues += [f"<v {speaker.title()}>{said}", ""]
    return "\n".join(cues)


def bundle(
    encounter_id: str,
    transcript: str | bytes,
    *,
    content_type: str = "text/plain",
    age: int | None = None,
    sex: str | None = None,
    patient_id: str = "aci-patient",
    url: str | None = None,
    transcript_encounter: str | None = None,
) -> dict[str, Any]:
    """A collection Bundle: Patient, Encounter (ambulatory, VISIT_DAY) and the transcript DocumentReference
    (inline, or at `url` when given); `transcript_encounter` points it at another encounter."""
    safe = re.sub(r"[^A-Za-z0-9\-.]", "-", encounter_id)[:60]
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    if sex:
        patient["gender"] = sex
    if age is not None:
        patient["birthDate"] = f"{int(VISIT_DAY[:4]) - age - 1}-12-31"
    visit = {
        "resourceType": "Encounter",
        "id": f"enc-{safe}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": "Office visit"}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"{VISIT_DAY}T09:00:00Z", "end": f"{VISIT_DAY}T09:30:00Z"},
    }
    data = transcript if isinstance(transcript, bytes) else transcript.encode("utf-8")
    attachment: dict[str, Any] = {"contentType": content_type, "title": "Visit transcript"}
    if url:
        attachment["url"] = url
    else:
        attachment["data"] = base64.b64encode(data).decode("ascii")
    document = {
        "resourceType": "DocumentReference",
        "id": f"tx-{safe}",
        "status": "current",
        "type": {
            "coding": [{"system": TRANSCRIPT_SYSTEM, "code": TRANSCRIPT_CODE, "display": "Visit transcript"}]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": f"{VISIT_DAY}T09:30:00Z",
        "context": {"encounter": [{"reference": transcript_encounter or f"Encounter/enc-{safe}"}]},
        "content": [{"attachment": attachment}],
    }
    entries = [patient, visit, document]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in entries]}


def aci_bundle(encounter: AciEncounter, *, content_type: str = "text/plain") -> dict[str, Any]:
    """The Bundle of one ACI-Bench encounter."""
    text = as_vtt(encounter.transcript) if content_type == "text/vtt" else encounter.transcript
    return bundle(encounter.id, text, content_type=content_type, age=encounter.age, sex=encounter.sex)
