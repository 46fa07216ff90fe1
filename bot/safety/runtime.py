"""Words banned at run time, kept in Redis and seen by every worker within seconds, at no cost to
a message: each worker polls one version counter in the background and rebuilds its list only
when the counter moved. Also the day's tally of hits that /stats shows.

A change writes the set first and raises the version after, so a worker that sees the new version
reads the new set (or a newer one, which the next poll reads again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from bot.background import Loop
from bot.ids import today
from bot.safety.text import normalise
from bot.store import keyspace
from bot.store.keyspace import DAY_TTL

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # a change reaches every worker within this and a rebuild (docs/operations.md)
MAX_RUNTIME_WORDS = 100_000
REFRESHER_NAME = "banned-words"  # the thread's name: bench.redis_round_trips leaves its polls out


class WordStore:
    """The run-time words (kept as their readings, so `del` finds what `add` stored) and the tally."""

    def __init__(self, client):
        self.redis = client

    def snapshot(self) -> tuple[int, list[str]]:
        """The version, then the words (a change between the two is read again at the next poll)."""
        version = int(self.redis.get(keyspace.banned_words_version()) or 0)
        return version, sorted(self.redis.smembers(keyspace.banned_words()))

    def version(self) -> int:
        return int(self.redis.get(keyspace.banned_words_version()) or 0)

    def add(self, words: Iterable[str]) -> int:
        """Ban `words` (already checked); the number that were not banned yet."""
        readings = sorted({normalise(w) for w in words})
        added = 0
        for start in range(0, len(readings), 1000):
            added += self.redis.sadd(keyspace.banned_words(), *readings[start : start + 1000])
        self.redis.incr(keyspace.banned_words_version())
        return added

    def remove(self, word: str) -> bool:
        """Lift a run-time ban; False if the word was not banned at run time."""
        removed = bool(self.redis.srem(keyspace.banned_words(), normalise(word)))
        if removed:
            self.redis.incr(keyspace.banned_words_version())
        return removed

    def count(self) -> int:
        return int(self.redis.scard(keyspace.banned_words()))

    def tally(self, direction: str) -> None:
        """Count one hit today (China time): `question` refused, or `answer` masked or blocked."""
        key = keyspace.refusals_day(today())
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, direction, 1)
            pipe.expire(key, DAY_TTL)
            pipe.execute()

    def today(self) -> dict[str, int]:
        counts = self.redis.hgetall(keyspace.refusals_day(today()))
        return {"question": int(counts.get("question", 0)), "answer": int(counts.get("answer", 0))}


class Refresher:
    """Polls the version every POLL_SECONDS and calls `rebuild(words)` when it moved: a greenlet in
    gunicorn's gevent workers, a thread elsewhere (as the turn wake-ups' listener)."""

    def __init__(self, store: WordStore, version: int, rebuild: Callable[[list[str]], None]):
        self.store, self.seen, self.rebuild = store, version, rebuild
        self._failing = False
        self.loop = Loop(REFRESHER_NAME, POLL_SECONDS, self.poll)
        self.start, self.close = self.loop.start, self.loop.close

    def poll(self) -> None:
        """One look at the version; a failure is logged once per outage and the old list stays."""
        try:
            if self.store.version() != self.seen:
                version, words = self.store.snapshot()
                self.rebuild(words)
                self.seen = version
            if self._failing:
                logger.info("banned words: Redis answers again")
            self._failing = False
        except Exception as error:  # Redis down: keep checking with the list in hand
            if not self._failing:
                reason = type(error).__name__
                logger.warning("banned words: cannot read the run-time list (%s); keeping the last", reason)
            self._failing = True
