"""A visit transcript as speaker-tagged turns, each citable as `DocumentReference/{id}#turn-{n}`.

Two layouts are read: `text/plain`, one turn per non-empty line `[speaker] text`, and WebVTT (`text/vtt`),
one turn per cue, the speaker in a `<v Speaker>` voice span. n is the 1-based index of the turn (the n-th
non-empty line, the n-th cue). Speakers are folded to doctor, patient, nurse or other; a turn without a tag
is "unknown" (speech recognition without diarization). Transcript text is PHI: it goes into the prompt and
the draft, never into logs or error messages (those name the DocumentReference and counts only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import webvtt
from webvtt.errors import MalformedFileError
from webvtt.models import Caption

from services.core.errors import InputError

Speaker = Literal["doctor", "patient", "nurse", "other", "unknown"]
TURN_FRAGMENT = "#turn-"
TURN_KEY_PREFIX = "T"
PLAIN_TYPES = frozenset({"text/plain"})
VTT_TYPES = frozenset({"text/vtt"})
TAGGED_LINE = re.compile(r"^\s*\[(?P<speaker>[^\]\n]{1,40})\]\s*(?P<text>.*)$")
# Speaker tags as transcription systems write them (ACI-Bench: doctor, patient, patient_guest, nurse).
SPEAKERS: dict[str, Speaker] = {
    "doctor": "doctor",
    "dr": "doctor",
    "physician": "doctor",
    "clinician": "doctor",
    "provider": "doctor",
    "patient": "patient",
    "pt": "patient",
    "nurse": "nurse",
    "rn": "nurse",
}
CLINICIANS: frozenset[Speaker] = frozenset({"doctor", "nurse"})


@dataclass(frozen=True)
class Turn:
    """One turn of the conversation: its 1-based index, who spoke (as tagged) and what was said."""

    n: int
    speaker: Speaker
    text: str


@dataclass
class Transcript:
    """The turns of one transcript DocumentReference, and what reading it left out or could not tell."""

    ref: str
    turns: list[Turn]
    encounter: str | None = None
    date: str | None = None
    left_out: int = 0
    problems: list[str] = field(default_factory=list)

    def turn_ref(self, n: int) -> str:
        """The citation of turn n."""
        return f"{self.ref}{TURN_FRAGMENT}{n}"

    def turn(self, n: int) -> Turn | None:
        """Turn n (1-based), None when there is none."""
        return self.turns[n - 1] if 1 <= n <= len(self.turns) else None

    @property
    def tagged(self) -> bool:
        """Whether the turns carry speaker tags."""
        return any(t.speaker != "unknown" for t in self.turns)

    def keys(self) -> dict[str, str]:
        """Prompt key ("T12") → turn citation."""
        return {f"{TURN_KEY_PREFIX}{t.n}": self.turn_ref(t.n) for t in self.turns}

    def refs(self) -> list[str]:
        """Every turn citation, in order."""
        return [self.turn_ref(t.n) for t in self.turns]


def split_turn_ref(ref: str) -> tuple[str, int] | None:
    """("DocumentReference/x", 3) for "DocumentReference/x#turn-3"; None for any other reference."""
    base, sep, tail = ref.partition(TURN_FRAGMENT)
    if not sep or not tail.isdigit() or not base.startswith("DocumentReference/"):
        return None
    return base, int(tail)


def speaker_of(tag: str | None) -> Speaker:
    """A speaker tag folded to a role ("Dr. Smith" → doctor, "patient_guest" → other)."""
    if not tag:
        return "unknown"
    word = re.split(r"[\s.:,]+", tag.strip().lower())[0]  # "Dr. Smith" → dr; "patient_guest" stays whole
    return SPEAKERS.get(word, "other")


def _plain(text: str) -> list[Turn]:
    turns: list[Turn] = []
    for line in (line for line in text.splitlines() if line.strip()):
        tagged = TAGGED_LINE.match(line)
        speaker = speaker_of(tagged["speaker"]) if tagged else "unknown"
        said = tagged["text"] if tagged else line
        turns.append(Turn(len(turns) + 1, speaker, " ".join(said.split())))
    return turns


def _vtt(text: str, ref: str) -> list[Turn]:
    try:
        captions = webvtt.from_string(text)
    except MalformedFileError as exc:
        raise InputError(f"{ref}: the transcript is not valid WebVTT") from exc
    cues: list[Caption] = list(captions.captions)
    return [Turn(n, speaker_of(cue.voice), " ".join(cue.text.split())) for n, cue in enumerate(cues, start=1)]


def parse_transcript(
    text: str,
    content_type: str,
    ref: str,
    *,
    max_turns: int,
    encounter: str | None = None,
    date: str | None = None,
) -> Transcript:
    """The turns of a transcript's text; at most `max_turns` (the rest counted in `left_out`). InputError
    for a layout that is not text/plain or WebVTT, or WebVTT that does not parse."""
    media = content_type.split(";")[0].strip().lower()
    if media in VTT_TYPES or (media not in PLAIN_TYPES and text.lstrip("\ufeff").startswith("WEBVTT")):
        turns = _vtt(text, ref)
    elif media in PLAIN_TYPES:
        turns = _plain(text)
    else:
        raise InputError(f"{ref}: transcript content type {media!r} is neither text/plain nor text/vtt")
    # A turn keeps its number even when nothing was said in it ("[patient]" alone): citations count lines.
    found = Transcript(ref, turns[:max_turns], encounter, date, left_out=max(0, len(turns) - max_turns))
    if not any(t.text for t in turns):
        found.problems.append("the transcript holds no turns")
    elif not found.tagged:
        found.problems.append(
            "the transcript has no speaker tags: who said what is unknown, so nothing is read as reported "
            "or denied by the patient"
        )
    if found.left_out:
        found.problems.append(
            f"the transcript was cut at {max_turns} turns: {found.left_out} later turns were not read"
        )
    return found


def render_turns(transcript: Transcript) -> str:
    """The turns as the model reads them: one line per turn, led by its key."""
    lines = [f"[{TURN_KEY_PREFIX}{t.n}] {t.speaker}: {t.text}" for t in transcript.turns]
    if transcript.left_out:
        lines.append(f"({transcript.left_out} later turns left out for length)")
    return "\n".join(lines)
