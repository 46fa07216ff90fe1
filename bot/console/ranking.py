"""The lists on /admin/keys: the keys that used the most tokens over the last days, and the newest keys.

Both walk the per-key records with SCAN, a batch of keys per pipelined round trip: an operator's
page, never a request's path. Tokens per day come from the day history the API already keeps
(bot/store/usage.py, 90 days), so the lists cost nothing elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis

from bot.store import keyspace

BATCH = 200


@dataclass(frozen=True)
class KeyUse:
    fingerprint: str
    owner: str  # "" for a revoked key (its record is gone; its history stays 90 days)
    tokens: int
    created: int = 0


def key_days(client: redis.Redis, days: list[str]) -> Iterator[tuple[str, str, list[int]]]:
    """(fingerprint, owner, tokens on each of `days`) for every key with a day history."""
    pattern = keyspace.api_key_days("*")
    head, tail = pattern.split("*")
    found = list(client.scan_iter(match=pattern, count=1000))
    for first in range(0, len(found), BATCH):
        batch = [k[len(head) : -len(tail)] for k in found[first : first + BATCH]]  # bot:{k:<fp>}:days → fp
        with client.pipeline(transaction=False) as pipe:
            for fp in batch:
                pipe.hmget(keyspace.api_key_days(fp), *days)
                pipe.hget(keyspace.api_key(fp), "owner")
            answers = pipe.execute()
        for i, fp in enumerate(batch):
            yield fp, answers[2 * i + 1] or "", [int(t or 0) for t in answers[2 * i]]


def top_keys(client: redis.Redis, days: list[str], count: int = 20) -> list[KeyUse]:
    """The `count` keys that used the most tokens over `days`, most first (idle keys left out)."""
    used = [KeyUse(fp, owner, sum(tokens)) for fp, owner, tokens in key_days(client, days) if sum(tokens)]
    return sorted(used, key=lambda k: -k.tokens)[:count]


def newest_keys(client: redis.Redis, count: int = 20) -> list[KeyUse]:
    """The `count` keys issued last (active ones: a revoked key's record is gone), newest first."""
    head = keyspace.api_key("")[:-1]  # bot:{k:
    found = [k for k in client.scan_iter(match=keyspace.api_key("*"), count=1000) if k.endswith("}")]
    keys: list[KeyUse] = []
    for first in range(0, len(found), BATCH):
        batch = found[first : first + BATCH]
        with client.pipeline(transaction=False) as pipe:
            for name in batch:
                pipe.hmget(name, "owner", "created", "used")
            for name, (owner, created, used) in zip(batch, pipe.execute(), strict=True):
                keys.append(KeyUse(name[len(head) : -1], owner or "", int(used or 0), int(created or 0)))
    return sorted(keys, key=lambda k: -k.created)[:count]
