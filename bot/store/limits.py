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

import redis

from bot.errors import ChatError, Failure
from bot.store import keyspace

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

# KEYS: follower's block flag, follower's window. ARGV: limit, now_ms, window_ms, member.
# Answers {status, wait_ms}: 1 admitted, -1 blocked, -2 over the limit.
_ADMIT_FOLLOWER = (
    WINDOW_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0} end
local limit, now, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = wait_ms(KEYS[2], limit, now, window)
if wait > 0 then return {-2, wait} end
admit(KEYS[2], limit, now, window, ARGV[4])
return {1, 0}
"""
)


def now_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def request_member(now: int) -> str:
    """A window entry unique to one request (two requests in the same millisecond both count)."""
    return f"{now}-{secrets.token_hex(4)}"


def rate_limited(wait_ms: int, who: str) -> ChatError:
    """RATE_LIMITED with Retry-After: whole seconds until the window has room again (at least 1)."""
    seconds = max(1, math.ceil(wait_ms / 1000))
    return ChatError(Failure.RATE_LIMITED, f"{who}，请 {seconds} 秒后再试", retry_after=seconds)


class FollowerGate:
    """Whether a follower's WeChat chat message may go to the model now: one script, one round trip."""

    def __init__(self, client: redis.Redis, rpm: int, clock: Callable[[], float] = time.time):
        self.rpm = rpm
        self.clock = clock
        self._admit = client.register_script(_ADMIT_FOLLOWER)

    def admit(self, openid: str) -> None:
        """Count one chat message of `openid`; ChatError BLOCKED or RATE_LIMITED (retry_after) if not."""
        now = now_ms(self.clock)
        keys = [keyspace.follower_blocked(openid), keyspace.follower_rate(openid)]
        status, wait = self._admit(keys=keys, args=[self.rpm, now, WINDOW_MS, request_member(now)])
        if status == -1:
            raise ChatError(Failure.BLOCKED)
        if status == -2:
            raise rate_limited(int(wait), f"每分钟最多 {self.rpm} 条")
