"""Filtering an answer that arrives in pieces, so that no piece released carries a banned word,
whole or split across pieces (`敏感` then `词`).

Reusable by any door that streams: the JSON doors use it (bot/api/responses.py), and so can the
WeChat door when its long answers are sent as they are written.
"""

from __future__ import annotations

from bot.safety.text import positions
from bot.safety.words import WordList


class StreamFilter:
    """`feed(piece)` answers the text safe to release now; `finish()` answers the rest, at the end.

    A word that ends in a later piece starts within the last `longest - 1` characters read so far
    (separators are not read, so `敏 感` then `词` is one word): those are held back, with the
    separators among and after them; everything before is released, every match in it masked (＊).
    Each piece's text is held at most until the next piece or the end. `matches` counts what was
    masked; a caller that blocks instead of masking stops at the first piece that raises it."""

    def __init__(self, words: WordList):
        self.words = words
        self.matches = 0
        self._keep = max(words.longest - 1, 0)
        self._held = ""

    def feed(self, piece: str) -> str:
        """Masked text that can no longer become part of a word, from what was held and `piece`."""
        pending = self._held + piece
        if self.words.hits(pending):
            pending, count = self.words.mask(pending)
            self.matches += count
        cut = self._cut(pending)
        self._held = pending[cut:]
        return pending[:cut]

    def finish(self) -> str:
        """The held tail: nothing more can come to complete a word in it (it was masked when fed)."""
        rest, self._held = self._held, ""
        return rest

    def _cut(self, text: str) -> int:
        """Where the held tail starts: at the first of the last `_keep` characters read."""
        if self._keep == 0 or not text:
            return len(text)
        reading, origins = positions(text)
        if not reading:  # only separators: no word can start in them
            return len(text)
        return origins[max(len(reading) - self._keep, 0)]
