"""The model's proposal for a complaint the lexicon could not map: the prompt, its schema, and the flag.

A proposal is the model's reading, not the record's: it is shown at info as the model's (source "model"),
names the listed complaint it proposes and the complaint as written, and never sets or raises the triage
level (the screen's rules never read it). The model may answer that no listed complaint fits.
"""

from __future__ import annotations

from typing import Any

from clinical_notes.draft import Flag
from clinical_notes.presenting_complaints import COMPLAINTS

NONE = "none of these"
TITLE = "Model's reading of an unmapped complaint"


def listed_names() -> list[str]:
    """The names of the presenting-complaint list, in its order."""
    return [c.name for c in COMPLAINTS]


def proposal_messages(text: str) -> list[dict[str, Any]]:
    """Chat messages asking which listed complaint a chief complaint (any language) names."""
    names = "\n".join(f"- {name}" for name in listed_names())
    return [
        {
            "role": "system",
            "content": "You map emergency department chief complaints, written in any language or in "
            "hurried shorthand, to one entry of the CEDIS presenting-complaint list. Answer with the entry "
            f"that the complaint names, or '{NONE}' when none fits. Do not judge severity.",
        },
        {"role": "user", "content": f"List:\n{names}\n\nChief complaint as written: {text!r}"},
    ]


def proposal_schema() -> dict[str, Any]:
    """The answer's JSON schema: one entry of the list, or none."""
    return {
        "type": "object",
        "properties": {"complaint": {"type": "string", "enum": [*listed_names(), NONE]}},
        "required": ["complaint"],
        "additionalProperties": False,
    }


def proposal_flag(text: str, citations: list[str], answer: dict[str, Any]) -> Flag | None:
    """The proposal as an info flag of the model's, or None when the model proposed nothing listed."""
    name = answer.get("complaint")
    if name not in listed_names():
        return None
    return Flag(
        severity="info",
        title=f"{TITLE}: {name}",
        rationale=f"The model reads the complaint {text!r} as the listed complaint {name!r} (CEDIS). This is "
        "the model's proposal, not the record's: the triage level does not use it; confirm it at triage.",
        citations=citations,
        source="model",
    )
