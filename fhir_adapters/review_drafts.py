"""A patient's AI drafts as a reviewer sees them: statements with author, live verification, flags, state.

Every draft and every cited resource is taken from the patient's compartment (`fhir_adapters.compartment`):
a citation of anything else is shown as outside the record, never rendered or checked from that resource.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.documentreference import DocumentReference

from clinical_notes.draft import Flag, NoteDraft
from clinical_notes.evidence import Evidence
from clinical_notes.guidelines import WithGuidelines, is_guideline
from clinical_notes.timeline import Passage
from clinical_notes.transcript import TURN_FRAGMENT, Transcript, split_turn_ref
from clinical_notes.transcript_checks import WithTranscript
from clinical_notes.transcript_facts import facts_of
from clinical_notes.verifier import Verifier
from fhir_adapters.citation_facts import citation_facts
from fhir_adapters.client import FhirClient
from fhir_adapters.compartment import in_compartment, of_patient
from fhir_adapters.evidence import evidence_of
from fhir_adapters.lifecycle import (
    decision_of,
    draft_identifier_of,
    etag_of,
    replaced_targets,
    replacement_decision,
)
from fhir_adapters.resources import parse_resource
from fhir_adapters.transcripts import TranscriptRules, read_transcript
from services.core.errors import InputError

STRUCTURED = "application/json"
OUTSIDE = "Source outside this patient's record"
DECIDED_SHOWN = 10  # each shown draft's citations are read and checked on every page load


@dataclass(frozen=True)
class ReviewStatement:
    """One statement with who wrote it and what the verifier says of it now."""

    location: str
    text: str
    citations: list[tuple[str, str]]
    author: str
    problems: list[str]


@dataclass
class ReviewDraft:
    """One of our drafts, ready to render."""

    ref: str
    etag: str
    title: str
    date: str
    state: str
    authenticator: str | None
    replaced_by: str | None
    flags: list[Flag]
    sections: list[tuple[str, list[ReviewStatement]]]
    synthesis_unavailable: str | None
    verification: dict[str, Any] = field(default_factory=dict)
    outside: frozenset[str] = frozenset()
    guidelines: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def critical_first(self) -> bool:
        """Flags go before the sections when any is critical."""
        return any(f.severity == "critical" for f in self.flags)

    @property
    def failing(self) -> list[ReviewStatement]:
        """The statements whose check fails now (approving them as written needs a reason)."""
        return [s for _, statements in self.sections for s in statements if s.problems]


class LiveEvidence:
    """The evidence of the cited resources as the server has them now, read with the reviewer's token."""

    def __init__(self, resources: dict[str, dict[str, Any]]):
        self.resources = resources

    def evidence(self, ref: str) -> Evidence | None:
        """Evidence of a cited resource; None when it could not be read."""
        raw = self.resources.get(ref)
        if raw is None:
            return None
        try:
            return evidence_of(parse_resource(raw))
        except ValueError:
            return None


def label_of(ref: str, resource: dict[str, Any] | None, passages: dict[str, Passage] | None = None) -> str:
    """What a citation chip says: the cited resource's name, else its type; a guideline passage's document,
    section and version."""
    passage = (passages or {}).get(ref)
    if passage is not None:
        return f"Guideline: {passage.title} · {passage.section} · {passage.version}"
    facts = dict(citation_facts(resource)) if resource else {}
    return facts.get("What") or ref.split("/")[0]


def passages_of(structured: dict[str, Any]) -> dict[str, Passage]:
    """The guideline passages a draft carries, by citation (those of another shape are left out)."""
    found = {}
    for item in structured.get("guidelines") or []:
        try:
            passage = Passage.model_validate(item)
        except ValueError:
            continue
        found[passage.ref] = passage
    return found


def passage_facts(p: Passage) -> list[tuple[str, str]]:
    """A passage as a reviewer checks a statement against it."""
    facts = [("Guideline", p.title), ("Section", p.section), ("Version", p.version), ("Passage", p.id)]
    facts += [("Source", p.source or ""), ("Licence", p.licence or ""), ("Text", p.text)]
    return [(label, text) for label, text in facts if text]


def attachment(doc: dict[str, Any], content_type: str) -> str | None:
    """The decoded text of a DocumentReference's first attachment of a content type."""
    for content in doc.get("content", []):
        found = content.get("attachment", {})
        if str(found.get("contentType", "")).startswith(content_type) and found.get("data"):
            return base64.b64decode(found["data"]).decode("utf-8", errors="replace")
    return None


def structured_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The structured draft a DocumentReference carries; InputError when it has none."""
    text = attachment(doc, STRUCTURED)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InputError(f"DocumentReference/{doc.get('id')} carries no structured draft")
    return data


def stored_verification(doc: dict[str, Any]) -> dict[str, Any]:
    """The verification block a draft of ours carries ({} when it carries none)."""
    try:
        block = structured_of(doc).get("verification")
    except InputError:
        return {}
    return block if isinstance(block, dict) else {}


async def read_turns(
    client: FhirClient, cited: dict[str, dict[str, Any]], refs: set[str], rules: TranscriptRules
) -> list[Transcript]:
    """The transcripts whose turns are cited, read now (their DocumentReferences are in `cited`)."""
    bases = {split[0] for ref in refs if (split := split_turn_ref(ref)) is not None}
    out = []
    for base in sorted(bases & set(cited)):
        try:
            doc = DocumentReference.model_validate(cited[base])
        except ValueError:
            continue
        out.append(await read_transcript(doc, rules, None, client))
    return out


def turn_label(ref: str, transcripts: list[Transcript]) -> str | None:
    """What a chip of a turn says: the turn's number and speaker."""
    split = split_turn_ref(ref)
    found = next((t for t in transcripts if split and t.ref == split[0]), None)
    turn = found.turn(split[1]) if found is not None and split else None
    return f"Turn {turn.n} ({turn.speaker})" if turn else None


def _base(ref: str) -> str:
    """The resource a citation is of (a transcript turn's DocumentReference)."""
    return ref.partition(TURN_FRAGMENT)[0]


def review_draft(
    doc: dict[str, Any],
    etag: str,
    cited: dict[str, dict[str, Any]],
    replacement: dict[str, Any] | None,
    transcripts: list[Transcript] | None = None,
) -> ReviewDraft:
    """One draft with each statement checked by the verifier against the cited resources (and transcript
    turns) as read now."""
    structured = structured_of(doc)
    note = NoteDraft.model_validate(structured)
    turns = transcripts or []
    passages = passages_of(structured)
    pairs = [(t, facts_of(t)) for t in turns]
    report = Verifier(WithTranscript(WithGuidelines(LiveEvidence(cited), passages.values()), pairs)).verify(
        note
    )
    problems: dict[str, list[str]] = {}
    for violation in report.violations:
        problems.setdefault(violation.location, []).append(f"{violation.rule}: {violation.detail}")
    decision = decision_of(doc)
    if replacement is not None:
        decision = replacement_decision(doc, replacement) or decision
    sections = [
        (
            section.title,
            [
                ReviewStatement(
                    location=f"sections[{i}].statements[{j}]",
                    text=st.text,
                    citations=[
                        (
                            ref,
                            (turn_label(ref, turns) or label_of(ref, cited.get(_base(ref)), passages))
                            if _base(ref) in cited or ref in passages
                            else OUTSIDE,
                        )
                        for ref in st.citations
                    ],
                    author=st.author,
                    problems=problems.get(f"sections[{i}].statements[{j}]", []),
                )
                for j, st in enumerate(section.statements)
            ],
        )
        for i, section in enumerate(note.sections)
    ]
    return ReviewDraft(
        ref=decision.draft_ref,
        etag=etag,
        title=str(doc.get("description") or note.kind),
        date=str(doc.get("date", "")),
        state=decision.state,
        authenticator=decision.authenticator,
        replaced_by=decision.replaced_by,
        flags=note.flags,
        sections=sections,
        synthesis_unavailable=note.synthesis_unavailable,
        verification=structured.get("verification") or {},
        outside=frozenset(ref for ref in note.cited() if _base(ref) not in cited and ref not in passages),
        guidelines={ref: passage_facts(p) for ref, p in passages.items()},
    )


async def checked_draft(
    client: FhirClient,
    patient: str,
    doc: dict[str, Any],
    etag: str,
    replacement: dict[str, Any] | None = None,
    *,
    rules: TranscriptRules,
) -> ReviewDraft:
    """One draft checked against what it cites (transcript turns too), read now from the patient's
    compartment."""
    note = NoteDraft.model_validate(structured_of(doc))
    refs = set(note.cited())
    cited = await in_compartment(client, patient, {_base(ref) for ref in refs})
    turns = await read_turns(client, cited, refs, rules)
    return review_draft(doc, etag, cited, replacement, turns)


Shown = tuple[str, dict[str, Any], NoteDraft]


def to_show(docs: list[dict[str, Any]]) -> tuple[list[Shown], dict[str, dict[str, Any]], int]:
    """Drafts to show (pending, critical first; latest decided), replacements by target, how many left out."""
    replacements = {target: d for d in docs if not draft_identifier_of(d) for target in replaced_targets(d)}
    pending: list[Shown] = []
    decided: list[Shown] = []
    for doc in sorted(docs, key=lambda d: str(d.get("date", "")), reverse=True):
        ref = f"DocumentReference/{doc.get('id')}"
        if not draft_identifier_of(doc):
            continue
        try:
            note = NoteDraft.model_validate(structured_of(doc))
        except (InputError, ValueError):
            continue  # a draft of an older shape: the EHR still shows its text
        waiting = decision_of(doc).state == "preliminary" and ref not in replacements
        (pending if waiting else decided).append((ref, doc, note))
    pending.sort(key=lambda shown: not any(f.severity == "critical" for f in shown[2].flags))
    return pending + decided[:DECIDED_SHOWN], replacements, max(0, len(decided) - DECIDED_SHOWN)


async def patient_drafts(
    client: FhirClient, patient_id: str, rules: TranscriptRules
) -> tuple[list[ReviewDraft], int]:
    """The patient's drafts to review (see `to_show`), each checked against its sources as read now."""
    found = [d async for d in client.search("DocumentReference", {"subject": f"Patient/{patient_id}"})]
    docs = [d for d in found if of_patient(d, patient_id, base_url=client.base_url)]
    shown, replacements, older = to_show(docs)
    refs = {ref for _, _, note in shown for ref in note.cited() if not is_guideline(ref)}
    cited = await in_compartment(client, patient_id, {_base(ref) for ref in refs})
    turns = await read_turns(client, cited, refs, rules)
    drafts = [review_draft(doc, etag_of(doc), cited, replacements.get(ref), turns) for ref, doc, _ in shown]
    return drafts, older
