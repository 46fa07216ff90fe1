"""The small names every layer shares: a follower's openid, a key's name in the logs, the day.

Kept apart from the doors and the store so that both may use them without importing each other.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))
# fullmatch, not `$`: `$` also matches before a trailing newline, and "o…\n" would name another follower
_OPENID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_openid(openid: str) -> bool:
    """WeChat openids are short runs of letters, digits, '-' and '_'; nothing else reaches a key."""
    return bool(_OPENID_RE.fullmatch(openid))


def log_id(fingerprint: str) -> str:
    """What a log line may say about a key: a short prefix of its fingerprint, never the key."""
    return f"key#{fingerprint[:10]}"


def today(now: float | None = None) -> str:
    """The day in China (YYYYMMDD): daily counters reset at midnight where the followers are."""
    return datetime.fromtimestamp(time.time() if now is None else now, CHINA).strftime("%Y%m%d")
