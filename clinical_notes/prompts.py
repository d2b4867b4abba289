"""Prompts: a fixed system prompt per kind first (prefix-cache friendly), the patient's timeline after."""

from __future__ import annotations

from clinical_notes.kinds import NoteKind

SYSTEM = """You draft clinical documentation for a clinician to review. Rules:
- Use only facts from the patient timeline you are given. Never invent findings, values or dates.
- Every statement cites the bracketed keys (such as C3 or O12) of the timeline lines it rests on.
- Copy numbers, units and dates exactly as the timeline shows them.
- Do not make new diagnoses. For assessments use hedged language: "suggests", "consistent with", "consider".
- Be brief: one fact or one closely related group of facts per statement.
- Answer with JSON only, following the schema.
"""


def system_prompt(kind: NoteKind) -> str:
    """The system prompt of a kind: identical for every patient."""
    sections = ", ".join(kind.sections)
    return (
        f"{SYSTEM}\nTask: {kind.instructions}\nSections, in this order where there is content: {sections}.\n"
    )


def user_prompt(timeline_text: str) -> str:
    """The per-patient part of the prompt."""
    return f"PATIENT TIMELINE\n{timeline_text}\nEND OF TIMELINE\nWrite the note now as JSON."


def messages(kind: NoteKind, timeline_text: str, feedback: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one generation; feedback (after an unusable answer) ends the user turn."""
    user = user_prompt(timeline_text)
    if feedback:
        user += f"\nYour previous answer was unusable ({feedback}); follow the schema exactly."
    return [{"role": "system", "content": system_prompt(kind)}, {"role": "user", "content": user}]
