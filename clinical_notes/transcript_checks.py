"""The verifier's reading of transcript turns: each turn as evidence; checks of statements citing them.

A turn citation resolves to the turn's words (an answer such as "no." together with the question it
answers), the numbers said in it (written or spoken: "twenty milligrams" holds 20 mg) and the transcript's
date. A statement citing turns must carry only numbers said in a cited turn or held by a cited resource,
and must not assert a symptom the cited turns deny, deny one they report, or name a symptom none of its
sources mentions. Polarity comes from the same medspaCy reading that composed the facts
(clinical_notes.transcript_facts), so a composed statement and its check never disagree on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from clinical_notes.concepts import term_stems
from clinical_notes.evidence import DATE, Evidence, EvidenceSource, Quantity, parse_day
from clinical_notes.transcript import Transcript, Turn, split_turn_ref
from clinical_notes.transcript_facts import (
    Status,
    TranscriptFacts,
    is_hesitation,
    spoken_numbers,
    statement_polarity,
)

STATEMENT_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w|\.\d)")
QUOTED = re.compile(r'"([^"]+)"')
ANSWER_WORDS = 8  # a turn this short is read together with the turn before it


@dataclass
class TurnEvidence(Evidence):
    """What one turn can vouch for: its words, the numbers said, who spoke, each symptom's polarity."""

    turn: Turn | None = None
    numbers: list[float] = field(default_factory=list)
    polarity: dict[str, set[Status]] = field(default_factory=dict)

    def has_quantity(self, quantity: Quantity) -> bool:
        """A number said in the turn (speech gives the number, rarely its unit)."""
        tolerance = 0.5 * 10.0**-quantity.decimals + 1e-9
        return any(abs(quantity.value - n) <= tolerance for n in self.numbers)


def turn_evidence(transcript: Transcript, facts: TranscriptFacts, n: int) -> TurnEvidence | None:
    """The evidence of turn n; None when the transcript has no such turn."""
    turn = transcript.turn(n)
    if turn is None:
        return None
    texts = [turn.text]
    before = transcript.turn(n - 1)
    if before is not None and len(turn.text.split()) <= ANSWER_WORDS:
        texts.append(before.text)  # an answer is read with its question
    polarity = {name: set(said) for name, said in facts.polarity.get(n, {}).items()}
    names = [*polarity, *(s.name for s in facts.symptoms if n in s.turns)]
    day = parse_day(transcript.date)
    return TurnEvidence(
        ref=transcript.turn_ref(n),
        terms=term_stems([*texts, *names]),
        intervals=[(day, day)] if isinstance(day, date) else [],
        turn=turn,
        numbers=[v for text in texts for v in spoken_numbers(text)],
        polarity=polarity,
    )


class WithTranscript:
    """The record's evidence, and the turns of transcripts as `DocumentReference/{id}#turn-{n}`."""

    def __init__(self, record: EvidenceSource, transcripts: list[tuple[Transcript, TranscriptFacts]]):
        self.record = record
        self.transcripts = {t.ref: (t, facts) for t, facts in transcripts}
        self._turns: dict[str, TurnEvidence | None] = {}

    def evidence(self, ref: str) -> Evidence | None:
        """A turn's evidence, else the record's (None for a turn the transcript does not hold)."""
        split = split_turn_ref(ref)
        if split is None:
            return self.record.evidence(ref)
        base, n = split
        if base not in self.transcripts:
            return None
        if ref not in self._turns:
            self._turns[ref] = turn_evidence(*self.transcripts[base], n)
        return self._turns[ref]


def _unquoted(text: str, turns: list[TurnEvidence]) -> str:
    """The statement without what it quotes word for word from a cited turn (a verbatim quote says what
    the turn says, whatever a reading of its negation makes of it out of context)."""
    said = [" ".join(_plain(e.turn.text)) for e in turns if e.turn is not None]
    for quote in QUOTED.findall(text):
        words = " ".join(_plain(quote))
        if words and any(words in turn for turn in said):
            text = text.replace(quote, "")
    return text


def _plain(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9']+", text.lower()) if not is_hesitation(w)]


def _numbers(text: str) -> list[Quantity]:
    """Every number of a statement, one that ends a sentence too ("... at 8."), dates left out."""
    return [
        Quantity(float(n), "", len(n.split(".", 1)[1]) if "." in n else 0)
        for n in STATEMENT_NUMBER.findall(DATE.sub(" ", text))
    ]


@dataclass(frozen=True)
class TurnProblem:
    """A failed turn check: which rule, and why."""

    rule: str
    detail: str


def turn_problems(text: str, cited: list[Evidence]) -> list[TurnProblem]:
    """The checks of a statement that cites turns: numbers said, symptoms' polarity, symptoms mentioned."""
    turns = [e for e in cited if isinstance(e, TurnEvidence)]
    if not turns:
        return []
    found: list[TurnProblem] = []
    for number in _numbers(text):
        tolerance = 0.5 * 10.0**-number.decimals + 1e-9
        said = any(e.has_quantity(number) for e in turns)
        held = any(abs(q.value - number.value) <= tolerance for e in cited for q in e.quantities)
        if not said and not held:
            found.append(TurnProblem("number_unsupported", f"{number.value:g} is said in no cited turn"))
    for name, status in statement_polarity(_unquoted(text, turns)).items():
        stated = {s for e in turns for s in e.polarity.get(name, set())}
        if stated and status not in stated:
            opposite = "deny" if status == "reported" else "report"
            found.append(
                TurnProblem(
                    "negation_contradicted", f"the cited turns {opposite} {name}; the statement inverts it"
                )
            )
        elif not stated and not any(term_stems([name]) <= e.terms for e in cited):
            found.append(TurnProblem("symptom_unsupported", f"{name} is in no cited turn or resource"))
    return found
