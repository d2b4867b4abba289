"""Chief complaints written in a hurry → the concepts triage rules act on.

Normalizing follows the Emergency Medical Text Processor's steps (Travers & Haas 2003, see the lexicon):
lower case and Unicode-normalize; split into clauses at punctuation (a negation does not reach across a
comma); expand abbreviations ("CP", "SOB", "s/p", "N/V/D"); fix British spellings and listed misspellings;
correct other unknown words to the nearest word of a concept phrase by edit distance (1 for words of 6 to 9
letters, 2 for longer ones; shorter words are left alone, they are too easy to bend into something else).
Concepts then match whole words, unless a negation or history cue stands just before them (NegEx, Chapman
2001). A complaint in another language (a non-Latin script, or words of the lexicon's list of other
languages' markers) is said to be unread: the lexicon is English.
The lexicon, with its sources, is data in clinical_notes.complaint_lexicon.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from clinical_notes.complaint_lexicon import (
    ABBREVIATION_EXCEPTIONS,
    ABBREVIATIONS,
    COMMON_WORDS,
    CONCEPTS,
    FOREIGN_WORDS,
    NEGATION_CUES,
    NEGATION_WINDOW,
    SPELLINGS,
    Concept,
)

_CLAUSES = re.compile(r"[,;:.!?()\[\]\n]+|\s-\s|\s\+\s")
_TOKENS = re.compile(r"[^\W_]+(?:[/\-'][^\W_]+)*/?")
_PARTS = re.compile(r"[/\-']+")
MIN_FUZZY = 6
LONG_WORD = 10


@dataclass(frozen=True)
class Finding:
    """A concept found in a complaint, with the (normalized) words that matched."""

    concept: Concept
    phrase: str


@dataclass(frozen=True)
class ReadComplaint:
    """A complaint as written, as normalized, the concepts found, and what could not be read."""

    text: str
    normalized: str
    findings: tuple[Finding, ...]
    unread: str | None = None

    def has(self, name: str) -> bool:
        """Whether the concept of that name was found."""
        return any(f.concept.name == name for f in self.findings)


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    words = set(COMMON_WORDS) | set(SPELLINGS.values())
    for expansion in ABBREVIATIONS.values():
        words.update(expansion.split())
    for concept in CONCEPTS:
        for phrase in (*concept.phrases, *concept.unless):
            words.update(w for w in phrase.split() if w != "*")
    for cue in NEGATION_CUES:
        words.update(cue.split())
    return frozenset(words)


@lru_cache(maxsize=1)
def _fuzzy_targets() -> tuple[str, ...]:
    words = {w for c in CONCEPTS for phrase in c.phrases for w in phrase.split()}
    return tuple(sorted(w for w in words if len(w) >= MIN_FUZZY and w.isalpha()))


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein without repeated edits), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=4096)
def _correct(word: str) -> str:
    """The lexicon word a misspelt word most likely means, or the word itself."""
    if word in SPELLINGS:
        return SPELLINGS[word]
    if word in _vocabulary() or len(word) < MIN_FUZZY or not word.isalpha():
        return word
    limit = 2 if len(word) >= LONG_WORD else 1
    best, best_distance = word, limit + 1
    for target in _fuzzy_targets():
        d = _distance(word, target, limit)
        if d < best_distance:
            best, best_distance = target, d
    return best


def _expand(token: str, following: str | None) -> list[str]:
    if token in ABBREVIATIONS and following not in ABBREVIATION_EXCEPTIONS.get(token, ()):
        return ABBREVIATIONS[token].split()
    parts = [p for p in _PARTS.split(token) if p]
    if len(parts) > 1:
        return [w for part in parts for w in _expand(part, following)]
    return [_correct(token)]


def clauses(text: str) -> list[list[str]]:
    """The normalized words of each clause of a complaint."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    result = []
    for clause in _CLAUSES.split(lowered):
        tokens = _TOKENS.findall(clause)
        words = []
        for i, token in enumerate(tokens):
            words += _expand(token, tokens[i + 1] if i + 1 < len(tokens) else None)
        if words:
            result.append(words)
    return result


def _joined(parts: list[list[str]]) -> str:
    return ", ".join(" ".join(words) for words in parts)


def normalize(text: str) -> str:
    """A complaint in the lexicon's words: lower case, abbreviations expanded, spelling corrected."""
    return _joined(clauses(text))


def _occurrences(words: list[str], phrase: tuple[str, ...]) -> list[int]:
    n = len(phrase)
    return [
        i
        for i in range(len(words) - n + 1)
        if all(p == "*" or p == w for p, w in zip(phrase, words[i : i + n], strict=True))
    ]


def _negated(words: list[str], start: int) -> bool:
    window = words[max(0, start - NEGATION_WINDOW - 2) : start]
    for cue in NEGATION_CUES:
        parts = tuple(cue.split())
        for i in _occurrences(window, parts):
            if len(window) - (i + len(parts)) < NEGATION_WINDOW:
                return True
    return False


def _covered(words: list[str], start: int, length: int, unless: tuple[str, ...]) -> bool:
    for phrase in unless:
        parts = tuple(phrase.split())
        for i in _occurrences(words, parts):
            if i <= start and start + length <= i + len(parts):
                return True
    return False


def _unreadable(text: str, words: list[str]) -> str | None:
    """Why (part of) a complaint cannot be read, or None."""
    letters = [c for c in text if c.isalpha()]
    if letters and sum("LATIN" not in unicodedata.name(c, "") for c in letters) > len(letters) / 2:
        return "is written in a script the complaint lexicon does not cover"
    foreign = [
        w
        for w in words
        if w not in _vocabulary()
        and (w in FOREIGN_WORDS or any(w.startswith(m) for m in FOREIGN_WORDS if len(m) > 4))
    ]
    if foreign:
        return f"appears to be in another language ({', '.join(dict.fromkeys(foreign))})"
    return None


def read_complaint(text: str) -> ReadComplaint:
    """Normalize a complaint and find the concepts it names (negated and historical mentions left out)."""
    parts = clauses(text)
    words = [w for clause in parts for w in clause]
    findings: dict[str, Finding] = {}
    for clause in parts:
        for concept in CONCEPTS:
            for phrase in concept.phrases:
                tokens = tuple(phrase.split())
                for start in _occurrences(clause, tokens):
                    if _negated(clause, start) or _covered(clause, start, len(tokens), concept.unless):
                        continue
                    matched = " ".join(clause[start : start + len(tokens)])
                    findings.setdefault(concept.name, Finding(concept, matched))
    return ReadComplaint(
        text=text,
        normalized=_joined(parts),
        findings=tuple(findings.values()),
        unread=_unreadable(text, words),
    )
