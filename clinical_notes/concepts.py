"""Whether a statement says something, and whether it names what it cites (grounding by concepts).

A statement mentions a resource when one of its content words, after light stemming and synonym expansion
(clinical_notes.lexicon), is among the resource's terms (its code displays and texts, value texts, note
text), or when one of its numbers is one of the resource's values, or one of its dates falls on the
resource's dates. Words that name no particular thing ("patient", "history", "chronic", "blood") are
generic and never ground a citation on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from clinical_notes import cjk
from clinical_notes.cjk_lexicon import FILLER_CJK
from clinical_notes.evidence import DATE, Evidence, Quantity, dates_in
from clinical_notes.lexicon import FILLER, GENERIC, STOPWORDS, SYNONYM_GROUPS

# Words, numbers, and runs of Korean or Chinese characters (which clinical_notes.cjk splits into words).
WORD = re.compile(rf"[a-zß-öø-ÿ][a-zß-öø-ÿ0-9']*|\d+(?:\.\d+)?|[{cjk.HANGUL}{cjk.HAN}]+")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
SUFFIXES = (
    "ations",
    "ation",
    "ously",
    "ively",
    "ities",
    "ical",
    "ious",
    "ness",
    "ment",
    "ions",
    "ion",
    "ity",
    "ive",
    "ous",
    "ics",
    "ing",
    "ies",
    "ic",
    "ia",
    "es",
    "ed",
    "al",
    "ly",
    "s",
    "y",
    "e",
)
MIN_STEM = 4
_FILLER = [re.compile(p, re.IGNORECASE) for p in (*FILLER, *FILLER_CJK)]


def _spelling(word: str) -> str:
    """British and American spellings folded (haemoglobin, oesophagus, anaemia)."""
    return word.replace("ae", "e").replace("oe", "e")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude, consistent stem: suffixes stripped while the stem keeps four letters."""
    word = _spelling(word.lower().strip("'"))
    if word.endswith("'s"):
        word = word[:-2]
    changed = True
    while changed and len(word) > MIN_STEM:
        changed = False
        for suffix in SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
                word, changed = word[: -len(suffix)], True
                break
    return word


def words(text: str) -> list[str]:
    """Lower-case words and numbers of a text."""
    return WORD.findall(text.lower().replace("-", " ").replace("/", " "))


def _phrases(tokens: list[str]) -> Iterable[str]:
    """Every run of one to four words, for multi-word synonyms ("high blood pressure")."""
    for size in (1, 2, 3, 4):
        for i in range(len(tokens) - size + 1):
            yield " ".join(tokens[i : i + size])


@lru_cache(maxsize=1)
def _synonym_index() -> dict[str, frozenset[str]]:
    """Each synonym (as words) → the stems of its whole group."""
    index: dict[str, frozenset[str]] = {}
    for group in SYNONYM_GROUPS:
        stems = frozenset(stem(w) for member in group for w in words(member) if w not in STOPWORDS)
        for member in group:
            key = " ".join(words(member))
            index[key] = index.get(key, frozenset()) | stems
    return index


def term_stems(texts: Iterable[str]) -> set[str]:
    """The stems a resource's texts name, with their synonyms (stopwords left out)."""
    found: set[str] = set()
    index = _synonym_index()
    for text in texts:
        tokens = words(text)
        found.update(stem(w) for w in tokens if w not in STOPWORDS and w[0].isascii() and not w[0].isdigit())
        for phrase in _phrases(tokens):
            found.update(index.get(phrase, ()))
        if cjk.has_cjk(text):
            found |= cjk.native_terms(text) | term_stems(cjk.english_concepts(text))
    return found


def content_stems(text: str) -> set[str]:
    """The stems of a statement's words that can name something (neither stopwords nor generic)."""
    generic = _generic_stems()
    return {s for s in term_stems([text]) if s not in generic}


@lru_cache(maxsize=1)
def _generic_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in GENERIC)


def numbers_in(text: str) -> list[Quantity]:
    """Every bare number in a text (dates left out), with its precision."""
    return [
        Quantity(float(n), "", len(n.split(".", 1)[1]) if "." in n else 0)
        for n in NUMBER.findall(DATE.sub(" ", text))
    ]


def mentions(text: str, evidence: Evidence) -> bool:
    """Whether the statement names a concept, a value or a date of the resource."""
    if content_stems(text) & evidence.terms:
        return True
    for number in numbers_in(text):
        tolerance = 0.5 * 10.0**-number.decimals + 1e-9
        if any(abs(q.value - number.value) <= tolerance for q in evidence.quantities):
            return True
    return any(evidence.covers(day, month_only) for day, month_only in dates_in(text))


def is_hollow(text: str, titles: Iterable[str]) -> bool:
    """A statement that names nothing: a section title, or only generic words."""
    normal = " ".join(words(text))
    if not normal or any(normal == " ".join(words(t)) for t in titles):
        return True
    return not content_stems(text) and not NUMBER.search(text)


def filler(text: str) -> str | None:
    """The filler phrase a statement uses ("This is a summary of…"), if any."""
    for pattern in _FILLER:
        found = pattern.search(text)
        if found:
            return found.group(0)
    return None
