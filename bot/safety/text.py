"""What a text says for matching: NFKC, lower-cased, with its separators dropped.

A separator is any character that is not a letter or a digit in any script: spaces, punctuation,
symbols, emoji, controls, invisible characters such as U+200B, combining marks. So `敏 感 词`,
`敏*感*词`, `敏、感、词` and `敏\u200b感词` all read `敏感词`, and full-width `ＡＢＣ` and circled `ⓐⓑⓒ`
read `abc`. Words are read the same way, so a word made only of separators reads as nothing.

`normalise` is the hot path: a handful of C passes over the whole text, no per-character Python.
rapidfuzz's `default_process` lower-cases and blanks every non-alphanumeric character in one C++
pass (a regular expression takes ten times as long); NFKC runs only on the parts of the reading that
are not already normal (one `１` in 2,000 characters costs a few µs, not the whole text's NFKC), and
as NFKD then NFC (`_nfkc`).
`positions` is the slow path, run only to find a match in the original text (to mask it): it reads
the text a cluster at a time and says where each character of the reading came from.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz.utils import default_process

# Symbols whose NFKC holds a letter or a digit: ⓐ, Kangxi radicals such as ⼈ (人), ㊙, ㍿, ™, 🄰…
# They must go through NFKC before separators are dropped. Generated from unicodedata (Unicode 14,
# Python 3.11), less ₨ (U+20A8, "Rs"): its UTF-16 high byte is that of “ ” — and … (see below), which
# nearly every answer holds. tests/test_sensitive_words.py checks the list against unicodedata.
LETTERED_SYMBOLS = (
    "\u2100-\u2101\u2103\u2105-\u2106\u2109\u2116\u2120-\u2122\u213b\u249c-\u24e9\u2e9f\u2ef3"
    "\u2f00-\u2fd5\u3196-\u319f\u3200-\u321e\u322a-\u3247\u3250\u3260-\u327e\u328a-\u32b0\u32c0-\u33ff"
    "\ufdfc\U0001f110-\U0001f12e\U0001f130-\U0001f14f\U0001f16a-\U0001f16c\U0001f190\U0001f200-\U0001f202"
    "\U0001f210-\U0001f23b\U0001f240-\U0001f248\U0001f250-\U0001f251"
)
_LETTERED = re.compile(f"[{LETTERED_SYMBOLS}]")
# The high bytes (UTF-16) of every range above: a text with none of them has no lettered symbol, and
# this is told in three C passes, where searching with the expression above takes five times longer.
_NOT_LETTERED_HIGH = bytes(b for b in range(256) if b not in (0x21, 0x24, 0x2E, 0x2F, 0x31, 0x32, 0x33, 0xFD, 0xD8))


_LEAF = 64  # a part this short is normalised whole, not halved again


def normalise(text: str) -> str:
    """The text as words are matched against it."""
    if text.encode("utf-16-le")[1::2].translate(None, _NOT_LETTERED_HIGH) and _LETTERED.search(text):
        text = _nfkc(text)
    read = default_process(text).replace(" ", "")  # every separator became a space
    if unicodedata.is_normalized("NFKC", read):
        return read
    parts: list[str] = []
    _normal_parts(read, parts)  # ＡＢＣ, Ⅻ, ℅
    return "".join(parts)


def _normal_parts(read: str, parts: list[str]) -> None:
    """Append `_reread(read)` for a `read` known not to be normal, paying for NFKC only where it is not:
    halved before a character NFKC can cut at (`_cuttable`), a normal half is kept as it is."""
    while len(read) > _LEAF:
        cut = len(read) // 2
        while cut < len(read) and not _cuttable(read[cut]):
            cut += 1
        if cut == len(read):  # nowhere to cut
            break
        head, read = read[:cut], read[cut:]
        if unicodedata.is_normalized("NFKC", head):  # then the tail is not
            parts.append(head)
            continue
        _normal_parts(head, parts)
        if unicodedata.is_normalized("NFKC", read):
            parts.append(read)
            return
    parts.append(_reread(read))


def _cuttable(char: str) -> bool:
    """Whether NFKC can cut before `char`: canonical class 0, NFKC-normal, and never the second of a
    composition (tests/test_sensitive_words.py checks it). Nearly every character of a Chinese reading."""
    return (
        char < "\x80" or "\u4e00" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7a3"
        or "\u3041" <= char <= "\u3096" or "\u30a1" <= char <= "\u30fa"
    )  # fmt: skip


def _reread(read: str) -> str:
    """NFKC may give capitals (Ⅻ → XII) or separators (½ → 1⁄2): read what it gives again."""
    return default_process(_nfkc(read)).replace(" ", "")


def _nfkc(text: str) -> str:
    """NFKC exactly (NFC of NFKD, by definition): CPython's own NFKC composes every character again once
    one is not normal (~110 ns each), where NFC returns at once when NFKD left nothing to compose."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text))


def positions(text: str) -> tuple[str, list[int]]:
    """The reading of `text` and, for each of its characters, the index in `text` it came from.

    Read a cluster at a time (a character and the combining marks after it), so that `e` + U+0301
    reads as NFKC's `é` would; a character may read as several (`㍿`) or as none (a separator)."""
    reading: list[str] = []
    origins: list[int] = []
    start = 0
    for end in range(1, len(text) + 1):
        if end < len(text) and unicodedata.combining(text[end]):
            continue
        piece = _read(text[start:end])
        reading.append(piece)
        origins.extend([start] * len(piece))
        start = end
    return "".join(reading), origins


@lru_cache(maxsize=8192)
def _read(cluster: str) -> str:
    return normalise(cluster)
