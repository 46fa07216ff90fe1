"""A follower's tokens and use, which outlive any one key of theirs.

While the follower has a key, its record (`bot:{k:<fp>}`) holds their balance and use, where each
request's reserve script can reach them in one round trip. Between keys (after a revoke, before the
next issue) they wait in the follower's account (`bot:{u:<openid>}:account`, fields `balance` and
`used`), and the next key starts from them. The account also says whether the follower ever got
the grant (`granted`), so the grant comes with their first key only, and counts every change of
the waiting funds (`moves`), so that an issue takes them only as it read them.

A key's record and the account live in different Cluster slots, so a move is two scripts: the
key's record is retired first (the key fails at once), then what it held is deposited. A deposit
finds where the follower's funds are now: their current key if they have one, else the account.
"""

from __future__ import annotations

import logging
import time

import redis

from bot.store import keyspace

logger = logging.getLogger(__name__)

_ATTEMPTS = 20
_PAUSE = 0.05  # seconds between attempts: another worker is between the two steps of a revoke

# KEYS: the account. ARGV: the retired key's fingerprint ('' for none), tokens, use.
# Unhook the retired key if the account still points at it. Then, if the follower has a key, answer
# its fingerprint (the deposit goes there); else add to the funds waiting for their next key.
_PARK = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'key_fp') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'key_fp', 'key_sealed', 'key_created')
end
local current = redis.call('HGET', KEYS[1], 'key_fp')
if current then return current end
redis.call('HINCRBY', KEYS[1], 'balance', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'used', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'moves', 1)
redis.call('HSET', KEYS[1], 'granted', 1)
return false
"""

# KEYS: a key's record. ARGV: tokens, use. Add them to a live key; 0 if it is gone (being revoked).
_CREDIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'balance', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'used', ARGV[2])
return 1
"""


class Funds:
    """Moves a follower's balance and use between their keys and their account."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._park = client.register_script(_PARK)
        self._credit = client.register_script(_CREDIT)

    def deposit(self, openid: str, tokens: int, used: int, retired: str = "") -> bool:
        """Give the follower `tokens` and `used`, wherever their funds are now; `retired`: the key
        they came from, unhooked from the account in the same step. False if they could not be
        placed (a revoke left half done), which is logged with the amounts."""
        account = keyspace.account(openid)
        for attempt in range(_ATTEMPTS):
            current = self._park(keys=[account], args=[retired if attempt == 0 else "", tokens, used])
            if current is None or self._credit(keys=[keyspace.api_key(current)], args=[tokens, used]):
                return True
            time.sleep(_PAUSE)  # the current key is being retired: its revoke parks the funds next
        logger.error("could not give %s back %d tokens (used %d): their account names a gone key", openid, tokens, used)
        return False
