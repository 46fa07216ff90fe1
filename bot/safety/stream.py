"""Filtering an answer that arrives in pieces, so that no piece released carries a banned word,
whole or split across pieces (`敏感` then `词`).

Reusable by any door that streams: the JSON doors use it (bot/api/responses.py), and so can the
WeChat door when its long answers are sent as they are written.
"""

from __future__ import annotations

from bot.safety.text import positions
from bot.safety.words import WordList, masked


class StreamFilter:
    """`feed(piece)` answers the text safe to release now; `finish()` answers the rest, at the end.

    A word that ends in a later piece starts within the last `longest - 1` characters read so far
    (separators are not read, so `敏 感` then `词` is one word): those are held back, with the
    separators among and after them; everything before is released, every character of every match
    in it masked (＊), as WordList.mask masks the whole answer. Matching reads what the model wrote,
    never the masks, and a match that runs into the held tail keeps its characters there marked.
    Each piece's text is held at most until the next piece or the end. `matches` counts the matches;
    a caller that blocks instead of masking stops at the first piece that raises it."""

    def __init__(self, words: WordList):
        self.words = words
        self.matches = 0
        self.found: set[str] = set()  # the words matched (their readings), for the per-word tally
        self._keep = max(words.longest - 1, 0)
        self._held = ""  # as the model wrote it
        self._marked: set[int] = set()  # indexes in _held of characters of a match

    def feed(self, piece: str) -> str:
        """Masked text that can no longer become part of a word, from what was held and `piece`."""
        pending, marked = self._held + piece, self._marked
        if self.words.hits(pending):
            spans = self.words.spans(pending) or [(0, len(pending))]  # see WordList.mask
            self.matches += sum(1 for _, end in spans if end > len(self._held))  # not counted again
            self.found.update(self.words.found(pending))
            marked = marked | {i for start, end in spans for i in range(start, end)}
        cut = self._cut(pending)
        self._held, self._marked = pending[cut:], {i - cut for i in marked if i >= cut}
        return masked(pending[:cut], [i for i in marked if i < cut])

    def finish(self) -> str:
        """The held tail, masked: nothing more can come to complete a word in it."""
        rest = masked(self._held, self._marked)
        self._held, self._marked = "", set()
        return rest

    def _cut(self, text: str) -> int:
        """Where the held tail starts: at the first of the last `_keep` characters read."""
        if self._keep == 0 or not text:
            return len(text)
        reading, origins = positions(text)
        if not reading:  # only separators: no word can start in them
            return len(text)
        return origins[max(len(reading) - self._keep, 0)]
