"""Requests per minute, shared by every worker: a sliding one-minute window per caller in Redis.

Each window is a sorted set of the admitted requests' timestamps: a request is admitted while fewer
than `limit` were admitted in the last 60 s, so no minute anywhere holds more than `limit` (no burst
at a window's edge). A refused request is not counted, and says when the oldest entry leaves.
The Lua below is shared by every script that checks a window, so each check stays one round trip.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable

from bot.errors import ChatError, Failure

WINDOW_MS = 60_000

# wait_ms: 0 if the window has room, else milliseconds until its oldest entry leaves.
# admit: count one request (ARGV-provided unique member) in the window.
WINDOW_LUA = """
local function wait_ms(key, limit, now, window)
  if limit <= 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
local function admit(key, limit, now, window, member)
  if limit <= 0 then return end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
"""


def now_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def request_member(now: int) -> str:
    """A window entry unique to one request (two requests in the same millisecond both count)."""
    return f"{now}-{secrets.token_hex(4)}"


def rate_limited(wait_ms: int, who: str) -> ChatError:
    """RATE_LIMITED with Retry-After: whole seconds until the window has room again (at least 1)."""
    seconds = max(1, math.ceil(wait_ms / 1000))
    return ChatError(Failure.RATE_LIMITED, f"{who}，请 {seconds} 秒后再试", retry_after=seconds)
