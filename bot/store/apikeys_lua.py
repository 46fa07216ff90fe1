"""The scripts behind API keys (bot/store/apikeys.py): issue a follower's key once, retire it, grant
it tokens. Each is atomic over one key's or one follower's keys (one hash slot); its KEYS and ARGV
are named on its first lines and in its type (bot/store/scripts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.store.scripts import Script


class Claimed(StrEnum):
    CLAIMED = "claimed"  # the account points at the new key now
    TAKEN = "taken"  # another key was there already: that one wins
    MOVED = "moved"  # the funds waiting for a key moved since the issuer read them: read them again


class ClaimAccount(Script):
    """Point the follower's account at a new key unless one is there already, taking the funds that
    waited for it (unless they moved since `moves` was read; '' for none). Answers {outcome} or
    {'taken', that key sealed}."""

    KEYS = ("account",)
    ARGV = ("fp", "sealed", "created", "moves")
    LUA = """
local account = KEYS[1]
local fp = ARGV[1]
local sealed = ARGV[2]
local created = ARGV[3]
local moves = ARGV[4]
local existing = redis.call('HGET', account, 'key_sealed')
if existing then return {'taken', existing} end
if (redis.call('HGET', account, 'moves') or '') ~= moves then return {'moved'} end
redis.call('HSET', account, 'key_fp', fp, 'key_sealed', sealed, 'key_created', created, 'granted', 1)
redis.call('HDEL', account, 'balance', 'used')
redis.call('HINCRBY', account, 'moves', 1)
return {'claimed'}
"""

    @staticmethod
    def decode(answer: list) -> tuple[Claimed, str]:
        """(outcome, the key that won, sealed, or '')."""
        return Claimed(answer[0]), answer[1] if len(answer) > 1 else ""


@dataclass(frozen=True)
class Retired:
    balance: int  # what the follower keeps: the balance, with holds whose lease had passed
    used: int


class RetireKey(Script):
    """Delete the key's record and answer {balance, used}: what the follower keeps (nil if there is
    none). Holds whose lease has passed come back first. The live ones are their requests' own: kept
    aside `revoked_ttl` s so that each, when it settles, charges the follower what it used and gives
    back the rest (store/quota.py)."""

    KEYS = ("record", "holds", "revoked_holds")
    ARGV = ("now_ms", "revoked_ttl")
    LUA = """
local record = KEYS[1]
local holds = KEYS[2]
local revoked_holds = KEYS[3]
local now_ms = ARGV[1]
local revoked_ttl = ARGV[2]
local f = redis.call('HMGET', record, 'balance', 'used')
if not f[1] then return false end
local balance = tonumber(f[1])
for _, hold in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms)) do
  balance = balance + tonumber(string.match(hold, ':(%d+)$'))
end
redis.call('ZREMRANGEBYSCORE', holds, '-inf', now_ms)
redis.call('DEL', record)
if redis.call('EXISTS', holds) == 1 then
  redis.call('RENAME', holds, revoked_holds)
  redis.call('EXPIRE', revoked_holds, revoked_ttl)
end
return {balance, tonumber(f[2] or 0)}
"""

    @staticmethod
    def decode(answer: list | None) -> Retired:
        return Retired(int(answer[0]), int(answer[1])) if answer else Retired(0, 0)


class Grant(Script):
    """Add `tokens` to a key's balance: answers the new balance, or nil if the key does not exist."""

    KEYS = ("record",)
    ARGV = ("tokens",)
    LUA = """
local record = KEYS[1]
local tokens = ARGV[1]
if redis.call('EXISTS', record) == 0 then return false end
return redis.call('HINCRBY', record, 'balance', tokens)
"""
