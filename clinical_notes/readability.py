"""How hard a patient guide is to read: a readability score from textstat where it has a formula for the
language, else a plain measure of sentence length.

- English: Flesch reading ease (0-100; 60-70 is plain English) and the Flesch-Kincaid grade level. US
  patient-education guidance asks for about grade 6-8 (AMA, NIH; AHRQ Health Literacy Toolkit).
- French: textstat's Flesch reading ease with Kandel & Moles' French constants (207 - 1.015 x words per
  sentence - 73.6 x syllables per word); higher is easier, as in English.
- Korean and traditional Chinese: textstat has no formula for either (syllable counts of Hangul blocks and
  Han characters do not carry English word-length weights), and no maintained Python library scores them;
  the measure is the mean sentence length in characters (spaces left out), which Korean and Chinese
  readability formulas weigh first; shorter is easier.
"""

from __future__ import annotations

import re
from typing import Any

SENTENCE_END = re.compile(r"[.!?。！？]+")


def readability(texts: list[str], language: str) -> dict[str, Any]:
    """The reading measures of a guide's statements in its language."""
    text = " ".join(t.strip().rstrip(".。") + ("。" if language in ("ko", "zh-Hant") else ".") for t in texts)
    if not texts:
        return {"language": language, "method": "none", "note": "no text"}
    if language in ("en", "fr"):
        from textstat.textstat import textstatistics

        scorer = (
            textstatistics()
        )  # an instance of our own: textstat's module-level one holds a global language
        scorer.set_lang(language)
        found: dict[str, Any] = {
            "language": language,
            "method": "textstat 0.7.8",
            "flesch_reading_ease": round(scorer.flesch_reading_ease(text), 1),
        }
        if language == "en":
            found["flesch_kincaid_grade"] = round(scorer.flesch_kincaid_grade(text), 1)
        return found
    sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
    characters = sum(len(re.sub(r"\s+", "", s)) for s in sentences)
    return {
        "language": language,
        "method": "mean sentence length in characters (no textstat formula for this language)",
        "characters_per_sentence": round(characters / max(len(sentences), 1), 1),
    }


def describe(found: dict[str, Any]) -> str:
    """The measures in one line."""
    if "flesch_kincaid_grade" in found:
        return (
            f"Flesch reading ease {found['flesch_reading_ease']}, "
            f"Flesch-Kincaid grade {found['flesch_kincaid_grade']}"
        )
    if "flesch_reading_ease" in found:
        return f"Flesch reading ease (Kandel-Moles) {found['flesch_reading_ease']}"
    if "characters_per_sentence" in found:
        return f"{found['characters_per_sentence']} characters per sentence"
    return "not measured"
