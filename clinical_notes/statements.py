"""The pieces every composed statement is made of: a display without its semantic tag, a date in the draft's
language, and a statement marked as written by the record."""

from __future__ import annotations

import re
from collections.abc import Iterable

from clinical_notes.draft import Statement
from clinical_notes.language import ENGLISH, Wording

SEMANTIC_TAG = re.compile(
    r"\s*\((disorder|finding|situation|procedure|person|regime/therapy|morphologic abnormality|"
    r"observable entity|event|substance|organism|qualifier value|product|medicinal product)\)\s*$",
    re.IGNORECASE,
)


def plain(name: str) -> str:
    """A display without its SNOMED semantic tag ("Asthma (disorder)" → "Asthma")."""
    return SEMANTIC_TAG.sub("", name).strip() or name


def day(value: str | None, words: Wording = ENGLISH) -> str:
    """The date of an ISO date or date-time as the draft's language writes it."""
    return words.day(value) if value else words.phrases.date_unknown


def record(text: str, citations: Iterable[str] = ()) -> Statement:
    """A statement composed from the record."""
    return Statement(text=text, citations=list(dict.fromkeys(citations)), author="record")
