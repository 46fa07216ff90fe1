"""The audit log: every admin action, from the console, WeChat's admin commands and the CLI.

One Redis stream, `bot:audit`: its entry IDs are the milliseconds the action was written, so the
stream is in time order and entries older than 180 days are trimmed by MINID on each write. Admin
actions are rare (a few a minute at most), so one key is no hot spot, Cluster or not. Nothing here
deletes an entry: the console can only read. A key's value never reaches an entry: any `sk-…` text
in a field is cut to `sk-…` before it is written, whatever the caller passed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import redis

from bot.ids import CHINA
from bot.store.keyspace import PREFIX

KEEP_DAYS = 180
STREAM = f"{PREFIX}:audit"
FIELD_CHARS = 200  # what a field keeps: enough for an openid, an id, an amount or a short reason
_KEY = re.compile(r"sk-[A-Za-z0-9_-]+")
VIAS = ("console", "wechat", "cli")


def scrub(value: object) -> str:
    """A field as stored: any API key in it cut to `sk-…`, control characters dropped, bounded."""
    text = _KEY.sub("sk-…", str(value))
    return "".join(c for c in text if c.isprintable())[:FIELD_CHARS]


@dataclass(frozen=True)
class Entry:
    id: str
    who: str  # an admin's openid, or cli:<system user>
    via: str  # console, wechat or cli
    action: str
    target: str  # an openid or a key's fingerprint id, never a key
    detail: str

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(int(self.id.split("-")[0]) / 1000, CHINA)

    @property
    def when(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M:%S")


class AuditLog:
    def __init__(self, client: redis.Redis):
        self.redis = client

    def record(self, who: str, via: str, action: str, target: str = "", detail: str = "") -> str:
        """Write one entry before the action's success is reported; raises if Redis cannot take it."""
        if via not in VIAS:
            raise ValueError(f"expected one of {VIAS}, got {via!r}")
        oldest = int((time.time() - KEEP_DAYS * 86400) * 1000)
        fields = {"who": scrub(who), "via": via, "action": scrub(action), "target": scrub(target),
                  "detail": scrub(detail)}  # fmt: skip
        return self.redis.xadd(STREAM, fields, minid=oldest, approximate=True)

    def recent(self, count: int = 100, before: str = "+") -> list[Entry]:
        """The newest entries first, `count` at most, older than the entry id `before`."""
        top = before if before == "+" else f"({before}"
        return [_entry(i, f) for i, f in self.redis.xrevrange(STREAM, max=top, min="-", count=count)]

    def between(self, start_ms: int, end_ms: int, batch: int = 500) -> Iterator[Entry]:
        """Every entry written from `start_ms` to `end_ms`, oldest first, read `batch` at a time."""
        low = f"{start_ms}-0"
        while True:
            rows = self.redis.xrange(STREAM, min=low, max=f"{end_ms}-{2**64 - 1}", count=batch)
            yield from (_entry(i, f) for i, f in rows)
            if len(rows) < batch:
                return
            low = f"({rows[-1][0]}"


def _entry(entry_id: str, fields: dict[str, str]) -> Entry:
    return Entry(entry_id, fields.get("who", ""), fields.get("via", ""), fields.get("action", ""),
                 fields.get("target", ""), fields.get("detail", ""))  # fmt: skip
