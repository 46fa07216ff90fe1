"""Daily counters for the admins' /stats: one pipelined round trip per counted event."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from bot.store import keyspace
from bot.store.apikeys import today

KEEP_DAYS = 8


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

    def _count(self, **fields: int) -> None:
        key = keyspace.stats_day(today())
        with self.redis.pipeline(transaction=False) as pipe:
            for name, amount in fields.items():
                pipe.hincrby(key, name, amount)
            pipe.expire(key, KEEP_DAYS * 86400)
            pipe.execute()

    def count_message(self, tokens: int) -> None:
        self._count(messages=1, chat_tokens=tokens)

    def count_api_call(self, tokens: int) -> None:
        self._count(api_calls=1, api_tokens=tokens)

    def today(self) -> DayStats:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keyspace.stats_key_owners())
            pipe.hgetall(keyspace.stats_day(today()))
            owners, day = pipe.execute()
        return DayStats(
            key_owners=int(owners or 0),
            messages=int(day.get("messages", 0)),
            chat_tokens=int(day.get("chat_tokens", 0)),
            api_calls=int(day.get("api_calls", 0)),
            api_tokens=int(day.get("api_tokens", 0)),
        )
