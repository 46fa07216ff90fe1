"""A key's history for its follower's page: tokens per day (90 days) and its last requests.

Both are written by the scripts that charge the key anyway (bot/store/usage_lua.py), so a request
costs no extra round trip; this module gives them their inputs and reads them back (off the hot path).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import redis

from bot import metrics
from bot.errors import ChatError
from bot.ids import CHINA, today
from bot.store import keyspace

HISTORY_DAYS = 90
HISTORY_TTL = HISTORY_DAYS * 86400
RECENT_SIZE = 50


@lru_cache(maxsize=1024)  # every request asks for the same day's: strptime costs ~20 µs
def day_before(day: str, days: int) -> str:
    """YYYYMMDD `days` before `day`."""
    return (datetime.strptime(day, "%Y%m%d") - timedelta(days=days)).strftime("%Y%m%d")


class KeyHistory:
    """The history inputs of one request's two scripts: when it began, through which door."""

    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint
        self.started = time.monotonic()
        self.door = metrics.current_door() or "api"

    def entry(self, now_ms: int) -> str:
        """`<ms>|<door>|<latency ms>`: the script adds the outcome and the tokens."""
        return f"{now_ms}|{self.door}|{int((time.monotonic() - self.started) * 1000)}"

    def reserve_inputs(self, now_ms: int) -> dict[str, object]:
        return {"entry": self.entry(now_ms), "recent_size": RECENT_SIZE, "history_ttl": HISTORY_TTL}

    def settle_inputs(self, now_ms: int) -> dict[str, object]:
        day = today(now_ms / 1000)
        return {
            "days": keyspace.api_key_days(self.fingerprint), "recent": keyspace.api_key_recent(self.fingerprint),
            "today": day, "oldest_day": day_before(day, HISTORY_DAYS - 1), "history_ttl": HISTORY_TTL,
            "entry": self.entry(now_ms), "outcome": outcome_now(), "recent_size": RECENT_SIZE,
        }  # fmt: skip


def outcome_now() -> str:
    """How the request ends, as a settle sees it: a refund made while a ChatError is being handled
    is that failure's; one made while the request is torn down otherwise is 'aborted'."""
    error = sys.exc_info()[1]
    if error is None:
        return "ok"
    return error.failure.name.lower() if isinstance(error, ChatError) else "aborted"


@dataclass(frozen=True)
class Request:
    at: datetime  # China time
    door: str
    latency_ms: int
    outcome: str
    tokens: int


def parse_request(line: str) -> Request | None:
    """One line of a key's recent list, or None for a line this version cannot read."""
    try:
        ms, door, latency, outcome, tokens = line.split("|")
        return Request(datetime.fromtimestamp(int(ms) / 1000, CHINA), door, int(latency), outcome, int(tokens))
    except ValueError:
        return None


def read_history(client: redis.Redis, fingerprints: Iterable[str], openid: str) -> tuple[dict, dict, list[Request]]:
    """(API tokens per day, WeChat tokens per day, recent requests newest first) over a follower's
    keys, current first; one pipeline (each command names one key, so Cluster routes it)."""
    fps = list(dict.fromkeys(fingerprints))
    with client.pipeline(transaction=False) as pipe:
        for fp in fps:
            pipe.hgetall(keyspace.api_key_days(fp))
            pipe.lrange(keyspace.api_key_recent(fp), 0, RECENT_SIZE - 1)
        pipe.hgetall(keyspace.follower_days(openid))
        answers = pipe.execute()
    api: dict[str, int] = {}
    recent: list[Request] = []
    for days, lines in zip(answers[0:-1:2], answers[1:-1:2], strict=True):
        for day, tokens in days.items():
            api[day] = api.get(day, 0) + int(tokens)
        recent.extend(r for r in map(parse_request, lines) if r is not None)
    wechat = {day: int(tokens) for day, tokens in answers[-1].items()}
    recent.sort(key=lambda r: r.at, reverse=True)
    return api, wechat, recent[:RECENT_SIZE]


def follower_history(openid: str, day: str) -> dict[str, object]:
    """The inputs by which the script recording a WeChat turn adds its tokens to the follower's days."""
    return {
        "days": keyspace.follower_days(openid), "today": day, "oldest_day": day_before(day, HISTORY_DAYS - 1),
        "history_ttl": HISTORY_TTL,
    }  # fmt: skip
