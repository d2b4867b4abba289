"""Korean and Chinese text as the verifier reads it: dates, numbers and units as these languages write them,
and the concepts a text names where words are not separated by spaces.

Korean is split into morphemes by Kiwi (kiwipiepy, its model from the kiwipiepy-model package) so that a
particle never hides a noun ("고혈압이" names 고혈압); Chinese is segmented by jieba with the clinical terms
of clinical_notes.cjk_lexicon added to its dictionary. Both are loaded once per process, on first use, from
installed packages: nothing is downloaded. A term the lexicon knows also stands for its English concept
("고혈압", "高血壓" → hypertension), so a Korean statement grounds on an English display and back.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from clinical_notes.cjk_lexicon import CONCEPTS, GENERIC_KO, GENERIC_ZH, UNIT_WORDS

HANGUL = "\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f"
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{HANGUL}{HAN}]")
HANGUL_RUN = re.compile(f"[{HANGUL}]")
HAN_RUN = re.compile(f"[{HAN}]+")
_DAY = r"3[01]|[12]\d|0?[1-9]"
_MONTH = r"1[0-2]|0?[1-9]"
# "2024년 3월 12일", "2024년 3월"; "2024. 3. 12."; "2024年3月12日", "民國113年3月12日" (Taiwan's ROC years).
_KO_DATE = re.compile(rf"(?P<y>(?:19|20)\d{{2}})\s*년\s*(?P<m>{_MONTH})\s*월(?:\s*(?P<d>{_DAY})\s*일)?")
_DOT_DATE = re.compile(rf"(?<![\d.])(?P<y>(?:19|20)\d{{2}})\.\s*(?P<m>{_MONTH})\.\s*(?P<d>{_DAY})\.?(?![\d])")
_ZH_DATE = re.compile(
    rf"(?:民國\s*(?P<roc>\d{{1,3}})|(?P<y>(?:19|20)\d{{2}}))\s*年\s*(?P<m>{_MONTH})\s*月"
    rf"(?:\s*(?P<d>{_DAY})\s*[日號])?"
)
ROC_OFFSET = 1911  # 民國 1 = 1912
# A number or Latin letter touching a Korean or Chinese character: "10mg을", "血壓140" get a space, so the
# number-with-unit reader sees "10 mg 을" and "血壓 140".
_LATIN_THEN_CJK = re.compile(rf"(?<=[0-9A-Za-z%)\]}}°/#*])(?=[{HANGUL}{HAN}])")
_CJK_THEN_LATIN = re.compile(rf"(?<=[{HANGUL}{HAN}])(?=[0-9A-Za-z])")
_lock = threading.Lock()


def has_cjk(text: str) -> bool:
    """Whether a text holds a Korean or Chinese character."""
    return CJK.search(text) is not None


def _iso(year: int, month: str, day: str | None) -> str:
    """An ISO date set apart by spaces: "2009年11月14日Microalbumin" must not read as one word."""
    return f" {year:04d}-{int(month):02d}" + (f"-{int(day):02d} " if day else " ")


def iso_dates(text: str) -> str:
    """Korean and Chinese dates rewritten as ISO dates (a month alone as YYYY-MM)."""
    text = _KO_DATE.sub(lambda m: _iso(int(m["y"]), m["m"], m["d"]), text)
    text = _DOT_DATE.sub(lambda m: _iso(int(m["y"]), m["m"], m["d"]), text)

    def chinese(m: re.Match[str]) -> str:
        year = int(m["roc"]) + ROC_OFFSET if m["roc"] else int(m["y"])
        return _iso(year, m["m"], m["d"])

    return _ZH_DATE.sub(chinese, text)


@lru_cache(maxsize=1)
def _unit_words() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Unit words after a number ("10 밀리그램", "72歲"), longest first, as the unit they stand for."""
    ordered = sorted(UNIT_WORDS.items(), key=lambda kv: -len(kv[0]))
    return tuple((re.compile(rf"(?<=\d)\s*{re.escape(word)}"), f" {unit} ") for word, unit in ordered)


def for_checking(text: str) -> str:
    """A Korean or Chinese text with ISO dates, full-width characters folded, unit words as units, and a
    space wherever a number or Latin word touches a Korean or Chinese character."""
    text = unicodedata.normalize("NFKC", text)
    text = iso_dates(text)
    for pattern, unit in _unit_words():
        text = pattern.sub(unit, text)
    text = _LATIN_THEN_CJK.sub(" ", text)
    return _CJK_THEN_LATIN.sub(" ", text)


# ------------------------------------------------------------------------------------------- concepts


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    """Kiwi with its installed model (about 3 s and 100 MB, once per process)."""
    from kiwipiepy import Kiwi

    with _lock:
        kiwi = Kiwi()
        for term in CONCEPTS:
            if HANGUL_RUN.search(term) and " " not in term:
                kiwi.add_user_word(term, "NNP")
        return kiwi


@lru_cache(maxsize=1)
def _jieba() -> Any:
    """jieba's tokenizer with the lexicon's Chinese terms added (its dictionary loads once, about 1 s)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        for term in CONCEPTS:
            if HAN_RUN.fullmatch(term):
                tokenizer.add_word(term, freq=200_000)
        return tokenizer


# Kiwi tags whose morphemes can name something: nouns, roots, Chinese characters and foreign words.
_NOUNISH = frozenset({"NNG", "NNP", "XR", "SH", "NR"})
_JOINS = frozenset({"NNG", "NNP", "XPN", "XSN", "XR", "SH"})


def _korean_terms(text: str) -> Iterator[str]:
    """Korean nouns and noun compounds ("만성" + "신장" + "질환" also as "만성신장질환")."""
    compound: list[str] = []
    end = -1
    for token in _kiwi().tokenize(text):
        if token.tag in _NOUNISH and len(token.form) >= 2:
            yield token.form
        if token.tag in _JOINS and (not compound or token.start <= end + 1):
            compound.append(token.form)
            end = token.start + token.len
            continue
        if len(compound) > 1:
            yield "".join(compound)
        compound = [token.form] if token.tag in _JOINS else []
        end = token.start + token.len
    if len(compound) > 1:
        yield "".join(compound)


def _chinese_terms(text: str) -> Iterator[str]:
    """Chinese words of two or more characters (single characters only when the lexicon names them)."""
    for run in HAN_RUN.findall(text):
        for word in _jieba().cut(run):
            if len(word) >= 2 or word in CONCEPTS:
                yield word


def native_terms(text: str) -> set[str]:
    """The Korean and Chinese words of a text that can name something (generic words and dates left out)."""
    found: set[str] = set()
    text = iso_dates(unicodedata.normalize("NFKC", text))
    if HANGUL_RUN.search(text):
        found.update(t for t in _korean_terms(text) if t not in GENERIC_KO)
    if HAN_RUN.search(text):
        found.update(t for t in _chinese_terms(text) if t not in GENERIC_ZH)
    return found


@lru_cache(maxsize=1)
def _concept_patterns() -> tuple[tuple[str, str], ...]:
    """Lexicon terms without their spaces, longest first, with the English concept each names."""
    return tuple(sorted(((t.replace(" ", ""), e) for t, e in CONCEPTS.items()), key=lambda kv: -len(kv[0])))


def english_concepts(text: str) -> list[str]:
    """The English concepts named by the lexicon's Korean and Chinese terms found in a text (spaces
    ignored: "만성 신장 질환" and "만성신장질환" name the same)."""
    squeezed = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    found = []
    for term, english in _concept_patterns():
        if term in squeezed:
            found.append(english)
            squeezed = squeezed.replace(term, "\0")  # "고혈압" is not also "혈압"
    return found
