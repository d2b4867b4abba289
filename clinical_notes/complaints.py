"""Chief complaints written in a hurry → the concepts triage rules act on.

Normalizing follows the Emergency Medical Text Processor's steps (Travers & Haas 2003, see the lexicon):
lower case and Unicode-normalize; split into clauses at punctuation (a negation does not reach across a
comma); expand abbreviations ("CP", "SOB", "s/p", "N/V/D"); fix British spellings and listed misspellings;
correct other unknown words to the nearest word of a concept phrase by edit distance (1 for words of 6 to 9
letters, 2 for longer ones; shorter words are left alone, they are too easy to bend into something else).
Concepts then match whole words, unless a negation or history cue stands just before them (NegEx, Chapman
2001). An inverted heading ("Pain, chest") is read in order ("chest pain").

Complaints in Korean, Chinese or French are first read through their language's table
(clinical_notes.complaint_languages) into the English words above, keeping only what the table knows; a
complaint in another language (another script, or the marker words of a language the tables lack), or
with no letters at all, is said to be unread, with the reason. Each complaint is then mapped to the
presenting-complaint list of the triage scales (CEDIS, clinical_notes.presenting_complaints); one that
names none of its complaints is said to be unmapped, never guessed.
The lexicons, with their sources, are data in clinical_notes.complaint_lexicon,
clinical_notes.complaint_languages and clinical_notes.presenting_complaints.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

from clinical_notes.complaint_languages import (
    CHINESE,
    CHINESE_BEFORE_NEGATION,
    FRENCH,
    FRENCH_FILLER,
    FRENCH_MARKERS,
    FRENCH_NEGATION,
    KOREAN,
    KOREAN_AFTER_NEGATION,
    MARKERS,
    SCRIPTS,
)
from clinical_notes.complaint_lexicon import (
    ABBREVIATION_EXCEPTIONS,
    ABBREVIATIONS,
    COMMON_WORDS,
    CONCEPTS,
    NEGATION_CUES,
    NEGATION_WINDOW,
    SPELLINGS,
    Concept,
)
from clinical_notes.presenting_complaints import (
    COMPLAINTS,
    INVERTED_HEADS,
    INVERTED_MODIFIERS,
    PresentingComplaint,
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


LANGUAGES = {"en": "English", "fr": "French", "ko": "Korean", "zh": "Chinese"}
FRENCH_ACCENTS = frozenset("éèêëàâùûçôîïœ")


@dataclass(frozen=True)
class ReadComplaint:
    """A complaint as written, as normalized, the concepts and listed complaints found, what was not read."""

    text: str
    normalized: str
    findings: tuple[Finding, ...]
    unread: str | None = None
    language: str = "en"
    complaints: tuple[PresentingComplaint, ...] = ()
    not_read: tuple[str, ...] = ()

    def has(self, name: str) -> bool:
        """Whether the concept of that name was found."""
        return any(f.concept.name == name for f in self.findings)

    @property
    def unmapped(self) -> str | None:
        """Why the complaint maps to no complaint of the list, or None when it maps to one."""
        if self.complaints:
            return None
        if self.unread:
            return self.unread
        return "names no complaint of the presenting-complaint list (CEDIS) the lexicon holds"

    @property
    def shown(self) -> str:
        """How it was read, for the screen: the normalized words and the listed complaints."""
        read = f"read as {self.normalized!r}" if self.normalized else "not read"
        if self.language != "en":
            read = f"{LANGUAGES.get(self.language, self.language)}, {read}"
        mapped = "; ".join(c.name for c in self.complaints) or "unmapped"
        left = f"; words not read: {', '.join(self.not_read)}" if self.not_read else ""
        return f"{read} → {mapped}{left}"


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    words = set(COMMON_WORDS) | set(SPELLINGS.values())
    for expansion in ABBREVIATIONS.values():
        words.update(expansion.split())
    for concept in CONCEPTS:
        for phrase in (*concept.phrases, *concept.unless):
            words.update(w for w in phrase.split() if w != "*")
    for complaint in COMPLAINTS:
        for phrase in (*complaint.phrases, *complaint.unless):
            words.update(phrase.split())
    for cue in NEGATION_CUES:
        words.update(cue.split())
    return frozenset(words)


@lru_cache(maxsize=1)
def _fuzzy_targets() -> tuple[str, ...]:
    words = {w for c in CONCEPTS for phrase in c.phrases for w in phrase.split()}
    words |= {w for c in COMPLAINTS for phrase in c.phrases for w in phrase.split()}
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
    hyphenated = [p for p in token.split("-") if p]
    if len(hyphenated) > 1:  # "g/w-general": the slash abbreviation survives the hyphen
        return [w for part in hyphenated for w in _expand(part, following)]
    parts = [p for p in _PARTS.split(token) if p]
    if len(parts) > 1:
        return [w for part in parts for w in _expand(part, following)]
    return _correct(token).split()


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
    if len(result) == 2 and len(result[0]) == 1 and result[0][0] in INVERTED_HEADS:
        result = [result[1] + result[0]]  # "pain, chest" is chest pain
    elif len(result) == 2 and len(result[1]) == 1 and result[1][0] in INVERTED_MODIFIERS:
        result = [result[1] + result[0]]  # "blood pressure, low" is low blood pressure
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


def _script_of(letters: list[str]) -> str:
    """The script most of the letters are written in: LATIN, HANGUL, CJK, HIRAGANA, CYRILLIC..."""
    counts: dict[str, int] = {}
    for c in letters:
        name = unicodedata.name(c, "")
        script = "CJK" if name.startswith("CJK") else name.split(" ")[0]
        counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda k: counts[k])


def _fold(text: str) -> str:
    """Lower case without accents (French tables are written so)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def language_of(text: str) -> tuple[str | None, str | None]:
    """(language code, None) for a complaint the lexicon reads (en, fr, ko, zh), or (None, why not)."""
    letters = [c for c in unicodedata.normalize("NFKC", text) if c.isalpha()]
    if not letters:
        return None, "has no letters to read (it may have been damaged on its way here)"
    script = _script_of(letters)
    if script == "HANGUL":
        return "ko", None
    if script == "CJK":
        kana = any(unicodedata.name(c, "").startswith(("HIRAGANA", "KATAKANA")) for c in letters)
        return (None, "is in Japanese, which the complaint lexicon lacks") if kana else ("zh", None)
    if script in SCRIPTS:
        return None, f"is in {SCRIPTS[script]}, which the complaint lexicon lacks"
    if script != "LATIN":
        return None, "is written in a script the complaint lexicon does not cover"
    words = _fold(text).replace("'", " ").split()
    words = [w.strip(".,;:!?()") for w in words]
    if FRENCH_ACCENTS & set(text.lower()) or FRENCH_MARKERS & set(words):
        return "fr", None
    english = _vocabulary()
    for language, markers in MARKERS.items():
        found = [w for w in words if w in markers]
        if len(found) >= 2 or any(w not in english for w in found):
            return (
                None,
                f"appears to be in {language} ({', '.join(dict.fromkeys(found))}), which the lexicon lacks",
            )
    return "en", None


def _translate_spaced(text: str, table: dict[str, str]) -> tuple[list[str], list[str]]:
    """French: whole words, longest phrase first; (English phrases in order, words not read)."""
    out: list[str] = []
    left: list[str] = []
    for clause in re.split(r"[,;:.!?()\n/+]+", _fold(text)):
        words = re.findall(r"[a-z0-9]+", clause)
        i = 0
        phrases: list[str] = []
        while i < len(words):
            for n in range(min(7, len(words) - i), 0, -1):
                key = " ".join(words[i : i + n])
                if key in table:
                    phrases.append(table[key])
                    i += n
                    break
                if key in FRENCH_NEGATION:
                    phrases.append(FRENCH_NEGATION[key])
                    i += n
                    break
            else:
                if words[i] not in FRENCH_FILLER:
                    left.append(words[i])
                i += 1
        if phrases:
            out.append(" ".join(phrases))
    return out, left


def _translate_unspaced(text: str, table: dict[str, str], language: str) -> tuple[list[str], list[str]]:
    """Korean and Chinese: longest phrase first at each place; negation cues before (zh) or after (ko)."""
    keys = sorted(table, key=len, reverse=True)
    before = CHINESE_BEFORE_NEGATION if language == "zh" else ()
    after = KOREAN_AFTER_NEGATION if language == "ko" else ()
    out: list[str] = []
    left: list[str] = []
    for clause in re.split(r"[,;:.!?\n/+、。]+", unicodedata.normalize("NFKC", text)):
        i, negate, phrases, skipped = 0, False, [], ""
        while i < len(clause):
            cue = next((c for c in before if clause.startswith(c, i)), None)
            if cue:
                negate, i = True, i + len(cue)
                continue
            key = next((k for k in keys if clause.startswith(k, i)), None)
            if key is None:
                skipped += clause[i]
                i += 1
                continue
            i += len(key)
            tail = clause[i:].lstrip()
            negated = negate or any(tail.startswith(c) for c in after)
            phrases.append(("no " if negated else "") + table[key])
        left += [w for w in re.findall(r"\w+", skipped) if not any(w.startswith(c) for c in after)]
        if phrases:
            out.append(" ".join(phrases))
    return out, left


def translated(text: str, language: str) -> tuple[str, tuple[str, ...]]:
    """A Korean, Chinese or French complaint in the English words of the lexicon, and what was not read."""
    if language == "fr":
        phrases, left = _translate_spaced(text, FRENCH)
    else:
        phrases, left = _translate_unspaced(text, KOREAN if language == "ko" else CHINESE, language)
    return ", ".join(phrases), tuple(dict.fromkeys(left))


class _Entry(Protocol):
    """A lexicon entry phrases match: a concept or a listed complaint."""

    @property
    def name(self) -> str: ...
    @property
    def phrases(self) -> tuple[str, ...]: ...
    @property
    def unless(self) -> tuple[str, ...]: ...


E = TypeVar("E", bound=_Entry)


def _matches(parts: list[list[str]], entries: tuple[E, ...]) -> Iterator[tuple[E, int, str]]:
    """Each entry a phrase of which the clauses name (negated, historical and covered mentions left out):
    the entry, where in the complaint it starts, the words that matched."""
    position = 0
    for clause in parts:
        for entry in entries:
            for phrase in entry.phrases:
                tokens = tuple(phrase.split())
                for start in _occurrences(clause, tokens):
                    if _negated(clause, start) or _covered(clause, start, len(tokens), entry.unless):
                        continue
                    yield entry, position + start, " ".join(clause[start : start + len(tokens)])
        position += len(clause) + 1


def _listed(parts: list[list[str]]) -> tuple[PresentingComplaint, ...]:
    """The presenting complaints of the list the clauses name, in the order the complaint names them."""
    found: dict[str, tuple[int, PresentingComplaint]] = {}
    for complaint, at, _ in _matches(parts, COMPLAINTS):
        if complaint.name not in found or found[complaint.name][0] > at:
            found[complaint.name] = (at, complaint)
    return tuple(c for _, c in sorted(found.values(), key=lambda pair: pair[0]))


def read_complaint(text: str) -> ReadComplaint:
    """Read a complaint in any language the lexicon holds: normalize it, find the concepts it names
    (negated and historical mentions left out) and the listed complaints it maps to."""
    language, why = language_of(text)
    if language is None:
        return ReadComplaint(text=text, normalized="", findings=(), unread=why, language="unknown")
    english, left = (text, ()) if language == "en" else translated(text, language)
    parts = clauses(english)
    findings: dict[str, Finding] = {}
    for concept, _, matched in _matches(parts, CONCEPTS):
        findings.setdefault(concept.name, Finding(concept, matched))
    unread = None
    if not parts and language != "en":
        unread = f"is in {LANGUAGES[language]}, but none of its words is in the {LANGUAGES[language]} table"
    return ReadComplaint(
        text=text,
        normalized=_joined(parts),
        findings=tuple(findings.values()),
        unread=unread,
        language=language,
        complaints=_listed(parts),
        not_read=left,
    )
