"""Today's figures for the admins' /stats, read off the per-key and per-follower day counters.

Nothing is counted for /stats on the hot path: every answered turn already records its tokens on the
payer's day hash, in the same script that charges it. /stats sums those with SCAN (on every node of a
cluster): a cost paid only when an admin asks, in proportion to the keys Redis holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from bot.ids import today
from bot.store import keyspace

BATCH = 500


@dataclass(frozen=True)
class DayStats:
    key_owners: int
    messages: int
    chat_tokens: int
    api_calls: int
    api_tokens: int


class Stats:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def _sum(self, pattern: str, *fields: str) -> list[int]:
        totals = [0] * len(fields)
        keys = list(self.redis.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), BATCH):  # one pipelined round trip per batch, not per key
            with self.redis.pipeline(transaction=False) as pipe:
                for key in keys[start : start + BATCH]:
                    pipe.hmget(key, *fields)
                for values in pipe.execute():
                    for i, value in enumerate(values):
                        totals[i] += int(value or 0)
        return totals

    def today(self) -> DayStats:
        key_days, follower_days = keyspace.day_patterns(today())
        api_calls, api_tokens = self._sum(key_days, "calls", "tokens")
        messages, chat_tokens = self._sum(follower_days, "messages", "used")
        owners = int(self.redis.get(keyspace.key_owners()) or 0)
        return DayStats(owners, messages, chat_tokens, api_calls, api_tokens)
