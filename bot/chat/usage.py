"""The spec's token estimate: tokens = Han characters + words × 1.3, rounded half up.

A Han character is any character of the Unicode Han script (CJK Unified Ideographs and their
extensions, compatibility ideographs, 〇). A word is a maximal run of other letters or digits
(`str.isalnum`), so "GPT-4o" is two words, "2023年" is one word and one Han character, and
punctuation, spaces and emoji count nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_HAN = (
    "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef\U00030000-\U0003134f\U0002f800-\U0002fa1f"
)
_HAN_RE = re.compile(f"[{_HAN}]")
# A word: letters/digits that are not Han ([^\W_] is "alphanumeric" in Python's re).
_WORD_RE = re.compile(f"(?:(?![{_HAN}])[^\\W_])+")


@dataclass(frozen=True)
class Counts:
    han: int = 0
    words: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.han + other.han, self.words + other.words)

    @property
    def tokens(self) -> int:
        # Integer arithmetic: han + words * 1.3, rounded half up, with no float error.
        return (self.han * 10 + self.words * 13 + 5) // 10


def count(text: str) -> Counts:
    """Han characters and words in one text."""
    return Counts(len(_HAN_RE.findall(text)), len(_WORD_RE.findall(text)))


def estimate_tokens(texts: Iterable[str] | str) -> int:
    """Tokens of one text, or of several texts counted together and rounded once."""
    if isinstance(texts, str):
        texts = (texts,)
    total = Counts()
    for text in texts:
        total = total + count(text)
    return total.tokens


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
