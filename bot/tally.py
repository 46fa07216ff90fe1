"""What this worker saw since its last statistics flush that a counter cannot hold: who was active
(distinct openids) and which banned words were hit. One per app; bot/console/traffic.py flushes it.

A message's cost is one set add. Nothing is taken out until a flush has written it, so a flush that
fails leaves everything for the next. Memory is bounded: past MAX_ACTIVE openids the flusher is asked
to flush early, and openids beyond twice that (a flood while Redis is down) are dropped and counted.
"""

from __future__ import annotations

import threading
from collections import Counter

MAX_ACTIVE = 10_000  # openids held before an early flush (~1.2 MB); twice this is the hard cap


class Tally:
    """In-memory sets and counts for one worker, read by its flusher every few seconds."""

    def __init__(self, cap: int = MAX_ACTIVE):
        self.cap = cap
        self.active: set[str] = set()  # openids that chatted or called the API
        self.dropped = 0  # openids not kept: the set was at its hard cap
        self.words: Counter[str] = Counter()  # banned word (its reading) → hits
        self._words_lock = threading.Lock()  # hits only: a += is not atomic between threads

    def saw(self, openid: str) -> None:
        """A follower was active (a chat turn on WeChat, or a chat API call with their key)."""
        # No lock: set.add is atomic under the GIL, and the flusher never swaps the set (see taken).
        if len(self.active) < 2 * self.cap:
            self.active.add(openid)
        elif openid not in self.active:
            self.dropped += 1

    def crowded(self) -> bool:
        """Whether the flusher should not wait for its next turn."""
        return len(self.active) >= self.cap

    def hit(self, words: list[str]) -> None:
        """Banned words found in one question or answer (only on a hit: the clean path never comes here)."""
        with self._words_lock:
            self.words.update(words)

    def taken(self) -> tuple[set[str], dict[str, int]]:
        """Copies of what is held now (each copy is one C call, atomic under the GIL)."""
        with self._words_lock:
            return self.active.copy(), dict(self.words)

    def written(self, active: set[str], words: dict[str, int]) -> None:
        """Forget what a flush wrote: an openid seen again since stays only if the copy missed it."""
        self.active -= active
        with self._words_lock:
            self.words.subtract(words)
            for word in [w for w, n in self.words.items() if n <= 0]:
                del self.words[word]
