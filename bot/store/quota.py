"""Token balances charged atomically: reserve before the upstream call, settle or refund after.

Each step is one Lua script on one key's hash, so concurrent requests on any number of workers can
never overdraw a balance, and the sum of what is charged is the sum of the usage reported.
"""

from __future__ import annotations

import redis

from bot.errors import ChatError, Failure
from bot.store import keyspace
from bot.store.apikeys import today

DAY_TTL = 3 * 86400

# ARGV: wanted, minimum. Reserve up to `wanted`, refusing when less than `minimum` is left.
# Answers {status, reserved, owner, balance}: status 1 reserved, 0 unknown key, -1 too little left.
_RESERVE = """
local record = redis.call('HMGET', KEYS[1], 'balance', 'owner')
if not record[1] then return {0, 0, '', 0} end
local balance = tonumber(record[1])
local minimum = tonumber(ARGV[2])
if balance < minimum then return {-1, 0, record[2], balance} end
local amount = math.min(balance, tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'balance', -amount)
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
return {1, amount, record[2], balance - amount}
"""

# ARGV: reserved, actual, day_ttl. Charge the actual usage, drawing on the balance if it exceeds the
# reservation (never below zero), return the rest. A key revoked meanwhile has nothing to settle.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local reserved, actual = tonumber(ARGV[1]), tonumber(ARGV[2])
local charge = math.min(actual, reserved)
if actual > reserved then
  local balance = tonumber(redis.call('HGET', KEYS[1], 'balance'))
  charge = charge + math.max(0, math.min(actual - reserved, balance))
end
redis.call('HINCRBY', KEYS[1], 'balance', reserved - charge)
redis.call('HINCRBY', KEYS[1], 'reserved', -reserved)
if charge > 0 then
  redis.call('HINCRBY', KEYS[1], 'used', charge)
  redis.call('INCRBY', KEYS[2], charge)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return charge
"""


class KeyLedger:
    """The scripts that charge API keys; `payer(fp)` binds them to one key for one request."""

    def __init__(self, client: redis.Redis):
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def payer(self, fingerprint: str) -> KeyPayer:
        return KeyPayer(self, fingerprint)


class KeyPayer:
    """One API key paying for one request: reserve, then settle (a refund is a settle of 0)."""

    def __init__(self, ledger: KeyLedger, fingerprint: str):
        self.ledger = ledger
        self.fingerprint = fingerprint
        self.owner = ""

    def reserve(self, wanted: int, minimum: int) -> int:
        """Set aside up to `wanted` tokens; ChatError if the key is unknown or holds under `minimum`."""
        keys = [keyspace.api_key(self.fingerprint)]
        status, amount, owner, balance = self.ledger._reserve(keys=keys, args=[wanted, minimum])
        if status == 0:
            raise ChatError(Failure.INVALID_KEY)
        if status < 0:
            raise ChatError(Failure.QUOTA_EXHAUSTED, f"余额 {balance}，本次请求至少需要 {minimum}")
        self.owner = owner
        return int(amount)

    def settle(self, reserved: int, actual: int) -> int:
        """Charge `actual` tokens against `reserved` and return the rest; answers what was charged."""
        keys = [keyspace.api_key(self.fingerprint), keyspace.api_key_day(self.fingerprint, today())]
        return int(self.ledger._settle(keys=keys, args=[reserved, actual, DAY_TTL]))
