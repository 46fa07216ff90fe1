"""The scripts that charge an API key (bot/store/quota.py): reserve before the upstream call, settle
after. Each is atomic over one key's keys (one hash slot); its KEYS and ARGV are named on its first
lines and in its type (bot/store/scripts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.store.limits import WINDOW_LUA
from bot.store.scripts import Script
from bot.store.usage_lua import RECENT_LUA


class Reserved(StrEnum):
    RESERVED = "reserved"
    UNKNOWN_KEY = "unknown_key"
    BLOCKED = "blocked"  # the key's owner or the request's `user`
    KEY_RATE = "key_rate"  # over the key's requests per minute
    USER_RATE = "user_rate"  # over the `user`'s requests per minute
    TOO_POOR = "too_poor"  # the balance is below the request's minimum


@dataclass(frozen=True)
class Reservation:
    status: Reserved
    amount: int  # tokens set aside (RESERVED)
    owner: str  # the key's follower ('' for an unknown key)
    balance: int  # what is left (RESERVED), or what there was (TOO_POOR)
    wait_ms: int  # until the window has room (KEY_RATE, USER_RATE)


class Reserve(Script):
    """Return the key's expired holds first. Then check, in order: the key exists, neither its owner
    nor the `user` is blocked, both windows have room, the balance holds `minimum`; then count the
    request and reserve up to `wanted`, held as `<hold>:<amount>` until the lease passes.
    `user_window` is optional (a request without `user`). Answers {status, amount, owner, balance, wait_ms}."""

    KEYS = ("record", "holds", "key_window", "recent", "user_window")
    ARGV = ("wanted", "minimum", "now_ms", "window_ms", "key_rpm", "user_rpm", "member", "user_blocked", "hold")
    ARGV += ("lease_ms", "entry", "recent_size", "history_ttl")
    LUA = (
        WINDOW_LUA
        + RECENT_LUA
        + """
local record = KEYS[1]
local holds = KEYS[2]
local key_window = KEYS[3]
local recent = KEYS[4]
local user_window = KEYS[5]
local wanted = tonumber(ARGV[1])
local minimum = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])
local window_ms = tonumber(ARGV[4])
local key_rpm = tonumber(ARGV[5])
local user_rpm = tonumber(ARGV[6])
local member = ARGV[7]
local user_blocked = ARGV[8] == '1'
local hold = ARGV[9]
local lease_ms = tonumber(ARGV[10])
local entry = ARGV[11]
local recent_size = tonumber(ARGV[12])
local history_ttl = ARGV[13]
if redis.call('EXISTS', record) == 0 then return {'unknown_key', 0, '', 0, 0} end
local stranded = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms)
if #stranded > 0 then
  local back = 0
  for _, held in ipairs(stranded) do back = back + tonumber(string.match(held, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now_ms)
  redis.call('HINCRBY', record, 'balance', back)
  redis.call('HINCRBY', record, 'reserved', -back)
end
local f = redis.call('HMGET', record, 'balance', 'owner', 'blocked')
local owner = f[2]
local function refuse(status, balance, wait)  -- answered, and noted in the key's recent requests
  return note(recent, entry, status, 0, recent_size, history_ttl, {status, 0, owner, balance, wait})
end
if f[3] == '1' or user_blocked then return refuse('blocked', 0, 0) end
local key_wait, user_wait = wait_ms(key_window, key_rpm, now_ms, window_ms), 0
if user_window then user_wait = wait_ms(user_window, user_rpm, now_ms, window_ms) end
if user_wait > key_wait then return refuse('user_rate', 0, user_wait) end
if key_wait > 0 then return refuse('key_rate', 0, key_wait) end
admit(key_window, key_rpm, now_ms, window_ms, member)
if user_window then admit(user_window, user_rpm, now_ms, window_ms, member) end
local balance = tonumber(f[1])
if balance < minimum then return refuse('too_poor', balance, 0) end
local amount = math.min(balance, wanted)
redis.call('HINCRBY', record, 'balance', -amount)
redis.call('HINCRBY', record, 'reserved', amount)
redis.call('ZADD', holds, now_ms + lease_ms, hold .. ':' .. amount)
return {'reserved', amount, owner, balance - amount, 0}
"""
    )

    @staticmethod
    def decode(answer: list) -> Reservation:
        status, amount, owner, balance, wait = answer
        return Reservation(Reserved(status), int(amount), owner, int(balance), int(wait))


@dataclass(frozen=True)
class Settlement:
    charged: int
    returned: int | None  # for a request whose key was revoked while it ran: the rest of its reservation


class Settle(Script):
    """Charge the actual usage, drawing on the balance if it exceeds the reservation (never below zero),
    and return the rest. A hold returned already (its lease passed) reserves nothing: all is drawn on
    the balance. Answers {charged}; or, for a request whose key was revoked while it ran (its hold is
    among the revoked ones), {charged, the rest of its reservation}, which the caller gives back to
    the follower, whose funds no longer include it. A key gone otherwise has nothing to settle."""

    KEYS = ("record", "day", "holds", "revoked_holds", "days", "recent")
    ARGV = ("reserved", "actual", "day_ttl", "hold", "today", "oldest_day", "history_ttl", "entry", "outcome")
    ARGV += ("recent_size",)
    LUA = (
        RECENT_LUA
        + """
local record = KEYS[1]
local day = KEYS[2]
local holds = KEYS[3]
local revoked_holds = KEYS[4]
local days = KEYS[5]
local recent = KEYS[6]
local reserved = tonumber(ARGV[1])
local actual = tonumber(ARGV[2])
local day_ttl = ARGV[3]
local hold = ARGV[4]
local today = ARGV[5]
local oldest_day = ARGV[6]
local history_ttl = ARGV[7]
local entry = ARGV[8]
local outcome = ARGV[9]
local recent_size = tonumber(ARGV[10])
local held = redis.call('ZREM', holds, hold)
local charge = math.min(actual, reserved)
local function count(tokens)
  note(recent, entry, outcome, tokens, recent_size, history_ttl, nil)
  if tokens <= 0 then return end
  redis.call('HINCRBY', day, 'tokens', tokens)
  redis.call('HINCRBY', day, 'calls', 1)
  redis.call('EXPIRE', day, day_ttl)
  tally_day(days, today, tokens, oldest_day, history_ttl)
end
if redis.call('EXISTS', record) == 0 then
  if redis.call('ZREM', revoked_holds, hold) == 0 then return {0} end
  count(charge)
  return {charge, reserved - charge}
end
if held == 0 then reserved, charge = 0, 0 end
if actual > reserved then
  local balance = tonumber(redis.call('HGET', record, 'balance'))
  charge = charge + math.max(0, math.min(actual - reserved, balance))
end
redis.call('HINCRBY', record, 'balance', reserved - charge)
if reserved > 0 then redis.call('HINCRBY', record, 'reserved', -reserved) end
if charge > 0 then redis.call('HINCRBY', record, 'used', charge) end
count(charge)
return {charge}
"""
    )

    @staticmethod
    def decode(answer: list) -> Settlement:
        charged, *returned = answer
        return Settlement(int(charged), int(returned[0]) if returned else None)
