"""Who pays for a chat turn, charged atomically: reserve before the upstream call, settle after.

Two payers share the Payer contract of bot/chat/core.py: an API key's balance (KeyPayer) and a
follower's daily allowance for WeChat chat (TurnAllowance). Each step is one Lua script on one
owner's keys, so concurrent requests on any number of workers can never overdraw, and the sum of
what is charged is the sum of the usage reported. A refund is a settle of 0.

A key's reservation is also a hold with an expiry (the lease): a request that never settles, because
Redis went away mid-call or its worker died, has its tokens returned by the key's next reserve once
the lease has passed. While the request lives its hold is renewed (store/holds.py), so a stream
longer than the lease keeps what it reserved. A settle that comes after its hold was returned
charges the balance instead. A request in flight when its key is revoked charges the follower's
funds, wherever they are now (store/funds.py), and gives back the rest of its reservation there.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis

from bot.errors import ChatError, Failure
from bot.store import keyspace
from bot.store.apikeys import today
from bot.store.funds import Funds
from bot.store.holds import Hold, HoldKeeper
from bot.store.keyspace import DAY_TTL, valid_openid
from bot.store.limits import WINDOW_LUA, WINDOW_MS, now_ms, rate_limited, request_member

Clock = Callable[[], float]


# KEYS: the key's record, its holds, its window, the window of the request's `user` (optional).
# ARGV: wanted, minimum, now_ms, window_ms, key_rpm, user_rpm, member, user_blocked, hold id, lease_ms.
# Returns the key's expired holds first. Checks, in order: the key exists, neither its owner nor the
# `user` is blocked, both windows have room, the balance holds `minimum`; then counts the request and
# reserves up to `wanted`, held as `<hold id>:<amount>` until the lease passes.
# Answers {status, reserved, owner, balance, wait_ms}: 1 reserved, 0 unknown key, -1 too little
# left, -2 blocked, -3 over the key's limit, -4 over the user's limit.
_RESERVE = (
    WINDOW_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, '', 0, 0} end
local stranded = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if #stranded > 0 then
  local back = 0
  for _, hold in ipairs(stranded) do back = back + tonumber(string.match(hold, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'balance', back)
  redis.call('HINCRBY', KEYS[1], 'reserved', -back)
end
local record = redis.call('HMGET', KEYS[1], 'balance', 'owner', 'blocked')
if record[3] == '1' or ARGV[8] == '1' then return {-2, 0, record[2], 0, 0} end
local now, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local key_wait, user_wait = wait_ms(KEYS[3], tonumber(ARGV[5]), now, window), 0
if KEYS[4] then user_wait = wait_ms(KEYS[4], tonumber(ARGV[6]), now, window) end
if user_wait > key_wait then return {-4, 0, record[2], 0, user_wait} end
if key_wait > 0 then return {-3, 0, record[2], 0, key_wait} end
admit(KEYS[3], tonumber(ARGV[5]), now, window, ARGV[7])
if KEYS[4] then admit(KEYS[4], tonumber(ARGV[6]), now, window, ARGV[7]) end
local balance = tonumber(record[1])
local minimum = tonumber(ARGV[2])
if balance < minimum then return {-1, 0, record[2], balance, 0} end
local amount = math.min(balance, tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'balance', -amount)
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[10]), ARGV[9] .. ':' .. amount)
return {1, amount, record[2], balance - amount, 0}
"""
)

# KEYS: the key's record, its day, its holds, its revoked holds. ARGV: reserved, actual, day_ttl, hold.
# Charge the actual usage, drawing on the balance if it exceeds the reservation (never below zero),
# return the rest. A hold returned already (its lease passed) reserves nothing: all is drawn on the
# balance. Answers {charged, -1}; or, for a request whose key was revoked while it ran (its hold is
# among the revoked ones), {charged, the rest of its reservation}, which the caller gives back to
# the follower, whose funds no longer include it. A key gone otherwise has nothing to settle.
_SETTLE = """
local held = redis.call('ZREM', KEYS[3], ARGV[4])
local reserved, actual = tonumber(ARGV[1]), tonumber(ARGV[2])
local charge = math.min(actual, reserved)
local function count(tokens)
  if tokens <= 0 then return end
  redis.call('HINCRBY', KEYS[2], 'tokens', tokens)
  redis.call('HINCRBY', KEYS[2], 'calls', 1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('ZREM', KEYS[4], ARGV[4]) == 0 then return {0, -1} end
  count(charge)
  return {charge, reserved - charge}
end
if held == 0 then reserved, charge = 0, 0 end
if actual > reserved then
  local balance = tonumber(redis.call('HGET', KEYS[1], 'balance'))
  charge = charge + math.max(0, math.min(actual - reserved, balance))
end
redis.call('HINCRBY', KEYS[1], 'balance', reserved - charge)
if reserved > 0 then redis.call('HINCRBY', KEYS[1], 'reserved', -reserved) end
if charge > 0 then redis.call('HINCRBY', KEYS[1], 'used', charge) end
count(charge)
return {charge, -1}
"""


class KeyLedger:
    """The scripts that charge API keys; `payer(fp)` binds them to one key for one request."""

    def __init__(
        self, client: redis.Redis, key_rpm: int = 0, user_rpm: int = 0, clock: Clock = time.time,
        lease_seconds: float = 90.0,
    ):  # fmt: skip
        self.key_rpm = key_rpm
        self.user_rpm = user_rpm
        self.lease_ms = int(lease_seconds * 1000)
        self.clock = clock
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self.keeper = HoldKeeper(client, self.lease_ms, clock)
        self.funds = Funds(client)

    def payer(
        self, fingerprint: str, user: str | None = None, user_blocked: bool = False,
        adopt: Callable[[], bool] | None = None,
    ) -> KeyPayer:  # fmt: skip
        """The key paying for one request made for `user` (the API's optional end-user id).
        `adopt`: asked for a key the ledger does not find; moves it from a previous BOT_SECRET if it
        is there (KeyStore.adopt: nothing to do, and no Redis, unless a rotation is under way)."""
        return KeyPayer(self, fingerprint, user, user_blocked, adopt)


class KeyPayer:
    """One API key paying for one request: reserve, then settle (a refund is a settle of 0).

    Reserving also admits the request: blocks and the per-key and per-user rate limits are checked
    and counted in the same script, so a request costs Redis two round trips, reserve and settle.
    """

    kind = "key"  # on /metrics: tokens charged to API keys

    def __init__(
        self, ledger: KeyLedger, fingerprint: str, user: str | None = None, user_blocked: bool = False,
        adopt: Callable[[], bool] | None = None,
    ):  # fmt: skip
        self.ledger = ledger
        self.adopt = adopt
        self.fingerprint = fingerprint
        self.user = user
        self.user_blocked = user_blocked
        self.owner = ""
        self.hold = secrets.token_hex(8)  # names this request's reservation in the key's holds
        self.held: Hold | None = None  # the reservation, renewed while this request lives

    def reserve(self, wanted: int, minimum: int) -> int:
        """Set aside up to `wanted` tokens, or ChatError: unknown key, blocked, rate limited, too poor."""
        ledger, now = self.ledger, now_ms(self.ledger.clock)
        fp = self.fingerprint
        keys = [keyspace.api_key(fp), keyspace.api_key_holds(fp), keyspace.api_key_rate(fp)]
        if self.user:
            keys.append(keyspace.api_key_user_rate(fp, self.user))
        args = [wanted, minimum, now, WINDOW_MS, ledger.key_rpm, ledger.user_rpm, request_member(now)]
        args += [int(self.user_blocked), self.hold, ledger.lease_ms]
        status, amount, owner, balance, wait = ledger._reserve(keys=keys, args=args)
        if status == 0:
            adopt, self.adopt = self.adopt, None
            if adopt is not None and adopt():  # a key from before a BOT_SECRET rotation, moved now
                return self.reserve(wanted, minimum)
            raise ChatError(Failure.INVALID_KEY)
        if status == -2:
            raise ChatError(Failure.BLOCKED)
        if status == -3:
            raise rate_limited(int(wait), f"该 key 每分钟最多 {ledger.key_rpm} 次")
        if status == -4:
            raise rate_limited(int(wait), f"该 user 每分钟最多 {ledger.user_rpm} 次")
        if status == -1:
            raise ChatError(Failure.QUOTA_EXHAUSTED, f"余额 {balance}，本次请求至少需要 {minimum}")
        self.owner = owner
        self.held = Hold(keys[1], f"{self.hold}:{amount}", now + ledger.lease_ms)
        ledger.keeper.watch(self.held)
        return int(amount)

    def settle(self, reserved: int, actual: int) -> int:
        """Charge `actual` tokens against `reserved` and return the rest; answers what was charged."""
        if self.held is not None:
            self.ledger.keeper.release(self.held)  # first: a settle that fails leaves a hold to return
        fp = self.fingerprint
        keys = [keyspace.api_key(fp), keyspace.api_key_day(fp, today()), keyspace.api_key_holds(fp)]
        keys.append(keyspace.api_key_revoked_holds(fp))
        args = [reserved, actual, DAY_TTL, f"{self.hold}:{reserved}"]
        charged, rest = self.ledger._settle(keys=keys, args=args)
        if rest >= 0 and valid_openid(self.owner):  # its key was revoked meanwhile
            self.ledger.funds.deposit(self.owner, rest, charged)
        return int(charged)


class TurnAllowance:
    """A follower's daily allowance for WeChat chat, paying for one turn.

    It is read when the turn takes the follower's single model slot (bot/store/conversation.py), so
    no other turn of theirs can spend it meanwhile: checking it here is exact, and the charge is
    recorded with the turn itself, in the same script. An answer longer than what was left is
    counted in full, so a day can pass the cap by one answer; the next question is then refused."""

    kind = "follower"  # on /metrics: tokens charged to followers' daily allowance

    def __init__(self, cap: int, used_today: int):
        self.cap = cap
        self.used_today = used_today
        self.charged = 0

    def reserve(self, wanted: int, minimum: int) -> int:
        if self.cap <= 0:
            return wanted
        left = self.cap - self.used_today
        if left < minimum:
            detail = f"今日额度 {self.cap}，还剩 {max(left, 0)}，本次至少需要 {minimum}"
            raise ChatError(Failure.QUOTA_EXHAUSTED, detail)
        return min(wanted, left)

    def settle(self, reserved: int, actual: int) -> int:
        self.charged = actual
        return actual
