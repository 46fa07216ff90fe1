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
from bot.store.scripts import Script

logger = logging.getLogger(__name__)

_ATTEMPTS = 20
_PAUSE = 0.05  # seconds between attempts: another worker is between the two steps of a revoke


class Park(Script):
    """Unhook the `retired` key ('' for none) if the account still points at it. Then, if the follower
    has a key, answer its fingerprint (the deposit goes there); else add `tokens` and `used` to the
    funds waiting for their next key, and answer nil."""

    KEYS = ("account",)
    ARGV = ("retired", "tokens", "used")
    LUA = """
local account = KEYS[1]
local retired = ARGV[1]
local tokens = ARGV[2]
local used = ARGV[3]
if retired ~= '' and redis.call('HGET', account, 'key_fp') == retired then
  redis.call('HDEL', account, 'key_fp', 'key_sealed', 'key_created')
end
local current = redis.call('HGET', account, 'key_fp')
if current then return current end
redis.call('HINCRBY', account, 'balance', tokens)
redis.call('HINCRBY', account, 'used', used)
redis.call('HINCRBY', account, 'moves', 1)
redis.call('HSET', account, 'granted', 1)
return false
"""


class Credit(Script):
    """Add `tokens` and `used` to a live key: answers whether it was there (not being revoked)."""

    KEYS = ("record",)
    ARGV = ("tokens", "used")
    LUA = """
local record = KEYS[1]
local tokens = ARGV[1]
local used = ARGV[2]
if redis.call('EXISTS', record) == 0 then return 0 end
redis.call('HINCRBY', record, 'balance', tokens)
redis.call('HINCRBY', record, 'used', used)
return 1
"""

    @staticmethod
    def decode(answer: int) -> bool:
        return answer == 1


class Funds:
    """Moves a follower's balance and use between their keys and their account."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._park = Park(client)
        self._credit = Credit(client)

    def deposit(self, openid: str, tokens: int, used: int, retired: str = "") -> bool:
        """Give the follower `tokens` and `used`, wherever their funds are now; `retired`: the key
        they came from, unhooked from the account in the same step. False if they could not be
        placed (a revoke left half done), which is logged with the amounts."""
        account = keyspace.account(openid)
        for attempt in range(_ATTEMPTS):
            current = self._park(account=account, retired=retired if attempt == 0 else "", tokens=tokens, used=used)
            if current is None or self._credit(record=keyspace.api_key(current), tokens=tokens, used=used):
                return True
            time.sleep(_PAUSE)  # the current key is being retired: its revoke parks the funds next
        logger.error("could not give %s back %d tokens (used %d): their account names a gone key", openid, tokens, used)
        return False
