"""Visit transcripts as FHIR brings them: a DocumentReference of the encounter with a text attachment.

Which DocumentReferences are transcripts is a setting (EHRSUM_TRANSCRIPT_CODES: type or category codings,
`system|code`). The attachment is read inline (`attachment.data`), or from its URL or a Binary on the
configured FHIR server through the one client (never elsewhere), capped at EHRSUM_TRANSCRIPT_MAX_BYTES.
A transcript whose encounter is not one of the patient's, or whose subject is another patient, is refused:
it is never read into the note, and the refusal names ids only (transcript text is PHI).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter

from clinical_notes.transcript import TURN_FRAGMENT, Transcript, parse_transcript
from fhir_adapters.client import FhirClient
from fhir_adapters.labels import is_ai_draft
from fhir_adapters.readers import iso, live
from fhir_adapters.record import PatientRecord
from fhir_adapters.resources import normalize_reference
from services.core.errors import EhrSumError, InputError


@dataclass(frozen=True)
class TranscriptRules:
    """What marks a transcript and how much of one is read."""

    codes: frozenset[str]
    max_bytes: int
    max_turns: int


@dataclass
class Found:
    """The encounter's transcript (None when there is none), and transcripts refused with why (ids only)."""

    encounter: str | None
    transcript: Transcript | None = None
    refused: list[tuple[str, str]] = field(default_factory=list)


def _codings(doc: DocumentReference) -> set[str]:
    concepts = [doc.type, *(doc.category or [])]
    return {f"{c.system}|{c.code}" for concept in concepts if concept for c in concept.coding or []}


def is_transcript(doc: DocumentReference, codes: frozenset[str]) -> bool:
    """Whether a DocumentReference is a visit transcript by the configured codes (never one of our drafts)."""
    return not is_ai_draft(doc) and bool(_codings(doc) & codes)


def transcript_refs(record: PatientRecord, codes: frozenset[str]) -> set[str]:
    """The references of the record's transcripts (left out of prior notes: they have their own block)."""
    return {
        f"DocumentReference/{d.id}"
        for d in live(record.resources.values(), DocumentReference)
        if is_transcript(d, codes)
    }


def _encounters(doc: DocumentReference, record: PatientRecord) -> list[str]:
    refs = [e.reference for e in (doc.context.encounter or [])] if doc.context else []
    return [normalize_reference(r, {}) for r in refs if isinstance(r, str)]


def _refusal(doc: DocumentReference, record: PatientRecord) -> str | None:
    """Why a transcript may not be read for this patient, None when it may."""
    patient = f"Patient/{record.patient_id}"
    subject = doc.subject.reference if doc.subject else None
    if subject and normalize_reference(subject, {}) != patient:
        return f"its subject is not {patient}"
    for encounter in _encounters(doc, record):
        found = record.resources.get(encounter)
        owner = getattr(getattr(found, "subject", None), "reference", None)
        if found is None or not owner or normalize_reference(owner, {}) != patient:
            return f"{encounter} is not an encounter of {patient}"
    return None


def _bytes_of(data: object) -> bytes:
    if isinstance(data, bytes):
        return data  # fhir.resources has already decoded base64
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("the transcript attachment's data is not base64") from exc


async def _content(attachment: Attachment, client: FhirClient | None, ref: str) -> bytes:
    """The attachment's bytes: inline, or from its URL or Binary on the configured FHIR server."""
    if attachment.data is not None:
        return _bytes_of(attachment.data)
    if not attachment.url:
        raise InputError(f"{ref}: the transcript attachment has neither data nor a URL")
    if client is None:
        raise InputError(f"{ref}: the transcript is at a URL, and no FHIR server is configured to read it")
    url = str(attachment.url)
    if url.startswith("Binary/") or "/Binary/" in url:
        binary = await client.get_json(url)
        if binary.get("data") is None:
            raise InputError(f"{ref}: the transcript's Binary holds no data")
        return _bytes_of(binary["data"])
    response = await client.request("GET", url, headers={"Accept": attachment.contentType or "text/plain"})
    return response.content


def _text(data: bytes, rules: TranscriptRules) -> tuple[str, list[str]]:
    """The attachment as text, cut at the byte cap on a line break; what was done to it, said plainly."""
    notes = []
    if len(data) > rules.max_bytes:
        cut = data.rfind(b"\n", 0, rules.max_bytes)
        data = data[: cut if cut > 0 else rules.max_bytes]
        notes.append(f"the transcript is over the {rules.max_bytes}-byte cap: only its first part was read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        notes.append(
            f"the transcript holds {bad} bytes that are not UTF-8; they were read as unknown characters"
        )
    return text, notes


async def find_transcript(
    record: PatientRecord,
    rules: TranscriptRules,
    *,
    encounter: str | None,
    client: FhirClient | None = None,
) -> Found:
    """The newest transcript of the encounter (the record's newest encounter when None), read and parsed.

    InputError when the encounter named is not one of the patient's; a transcript that cannot be read
    (no data, not text, not WebVTT) comes back as a transcript whose problems say why."""
    patient = f"Patient/{record.patient_id}"
    wanted: str | None = None
    if encounter is not None:
        wanted = encounter if encounter.startswith("Encounter/") else f"Encounter/{encounter}"
        found = record.resources.get(wanted)
        owner = getattr(getattr(found, "subject", None), "reference", None)
        if found is None or not owner or normalize_reference(owner, {}) != patient:
            raise InputError(f"{wanted} is not an encounter of {patient}")
    else:
        wanted = _newest_encounter(record)
    out = Found(wanted)
    docs = [d for d in live(record.resources.values(), DocumentReference) if is_transcript(d, rules.codes)]
    mine = []
    for doc in docs:
        ref = f"DocumentReference/{doc.id}"
        why = _refusal(doc, record)
        if why is not None:
            out.refused.append((ref, why))
        elif wanted is not None and wanted in _encounters(doc, record):
            mine.append(doc)
    if mine:
        out.transcript = await read_transcript(
            max(mine, key=lambda d: iso(d.date) or ""), rules, wanted, client
        )
    return out


async def read_transcript(
    doc: DocumentReference, rules: TranscriptRules, encounter: str | None, client: FhirClient | None = None
) -> Transcript:
    """One transcript DocumentReference read and parsed; what could not be read is in its problems."""
    ref = f"DocumentReference/{doc.id}"
    attachment = next((c.attachment for c in doc.content or [] if c.attachment), None)
    try:
        if attachment is None:
            raise InputError(f"{ref}: the transcript has no attachment")
        text, notes = _text(await _content(attachment, client, ref), rules)
        transcript = parse_transcript(
            text,
            attachment.contentType or "text/plain",
            ref,
            max_turns=rules.max_turns,
            encounter=encounter,
            date=iso(doc.date),
        )
        transcript.problems[:0] = notes
    except EhrSumError as exc:
        if exc.transient:
            raise
        transcript = Transcript(ref, [], encounter, iso(doc.date), problems=[f"it could not be read ({exc})"])
    return transcript


async def cited_transcripts(
    record: PatientRecord, rules: TranscriptRules, refs: list[str], client: FhirClient | None = None
) -> list[Transcript]:
    """The transcripts whose turns a draft cites (`DocumentReference/{id}#turn-{n}`), read from the record."""
    bases = {ref.partition(TURN_FRAGMENT)[0] for ref in refs if TURN_FRAGMENT in ref}
    out = []
    for base in sorted(bases):
        doc = record.resources.get(base)
        if isinstance(doc, DocumentReference) and _refusal(doc, record) is None:
            encounters = _encounters(doc, record)
            out.append(await read_transcript(doc, rules, encounters[0] if encounters else None, client))
    return out


def _newest_encounter(record: PatientRecord) -> str | None:
    encounters = live(record.resources.values(), Encounter)
    if not encounters:
        return None
    newest = max(encounters, key=lambda e: iso(e.period.start if e.period else None) or "")
    return f"Encounter/{newest.id}"


def transcript_visit(resource: dict[str, object], codes: frozenset[str]) -> tuple[str, str] | None:
    """(patient id, encounter id) of a transcript DocumentReference as read from the server (JSON); None for
    any other DocumentReference, or one without a patient subject and an encounter."""
    if resource.get("resourceType") != "DocumentReference":
        return None
    try:
        doc = DocumentReference.model_validate(resource)
    except ValueError:
        return None
    if not is_transcript(doc, codes) or doc.subject is None or not doc.subject.reference:
        return None
    subject = normalize_reference(doc.subject.reference, {})
    encounters = [e.reference for e in (doc.context.encounter or [])] if doc.context else []
    if not subject.startswith("Patient/") or not encounters or not isinstance(encounters[0], str):
        return None
    return subject.split("/", 1)[1], normalize_reference(encounters[0], {}).split("/", 1)[-1]


async def turn_facts(
    client: FhirClient, resource: dict[str, object], n: int, rules: TranscriptRules
) -> list[tuple[str, str]]:
    """What a citation chip of a turn shows: the transcript, the turn's number, speaker and words."""
    doc = DocumentReference.model_validate(resource)
    transcript = await read_transcript(doc, rules, None, client)
    turn = transcript.turn(n)
    if turn is None:
        return [("What", "Visit transcript"), ("Turn", f"{n}: not in the transcript")]
    return [("What", "Visit transcript"), ("Turn", str(n)), ("Speaker", turn.speaker), ("Said", turn.text)]
