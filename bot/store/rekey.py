"""Moving API keys from BOT_SECRET_PREVIOUS to BOT_SECRET, so a secret rotation loses no key.

A key's record lives under its fingerprint, an HMAC keyed by the secret: a new secret gives every
key a new fingerprint. While BOT_SECRET_PREVIOUS is set, a key not found under its current
fingerprint is looked up under the previous one and moved on that first use; `keys reseal` moves
them all at once (it reads each follower's sealed copy, so it needs no key from anyone).

A move drains the old record in one script (its slot) and places it under the new fingerprint in
another (the new slot: in a Cluster the two differ, so it cannot be one script). Reservations in
flight on the old record are folded back into the balance: their requests settle against nothing,
so at worst one answer in flight during the move is free, and no token stays reserved for ever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from bot.store import keyspace
from bot.store.keyspace import DAY_TTL
from bot.store.vault import Vault, log_id

logger = logging.getLogger(__name__)


# KEYS: the old record, its day counter. Delete both; answer the record's fields and the day's use.
_DRAIN = """
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return false end
local day = redis.call('HMGET', KEYS[2], 'tokens', 'calls')
redis.call('DEL', KEYS[1], KEYS[2])
table.insert(record, '__tokens')
table.insert(record, day[1] or '0')
table.insert(record, '__calls')
table.insert(record, day[2] or '0')
return record
"""

# KEYS: the new record, its day counter. ARGV: the day's tokens and calls, the day's TTL, then field,
# value, …
# Never overwrites a record that exists: its balance and use are added to instead.
_PLACE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 4, #ARGV, 2 do
    if ARGV[i] == 'balance' or ARGV[i] == 'used' then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
  end
else
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
end
if tonumber(ARGV[1]) > 0 or tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[1])
  redis.call('HINCRBY', KEYS[2], 'calls', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return 1
"""

# KEYS: the follower's account. ARGV: old fp, new fp, key sealed under the current secret.
_REPOINT = """
if redis.call('HGET', KEYS[1], 'key_fp') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'key_fp', ARGV[2], 'key_sealed', ARGV[3])
return 1
"""


@dataclass
class ResealReport:
    moved: int = 0  # keys now under the current secret that were not before
    current: int = 0  # already under the current secret
    unreadable: int = 0  # sealed under neither secret: their followers need `keys rotate`


class KeyMigration:
    def __init__(self, client: redis.Redis, vault: Vault):
        self.redis = client
        self.vault = vault
        self._drain = client.register_script(_DRAIN)
        self._place = client.register_script(_PLACE)
        self._repoint = client.register_script(_REPOINT)

    def adopt(self, api_key: str, day: str) -> bool:
        """Move `api_key` from its previous-secret fingerprint, if a record is there (first use);
        answers whether it did."""
        if self.vault.previous is None:
            return False
        old = self.vault.previous.fingerprint(api_key)
        if not self.redis.exists(keyspace.api_key(old)):
            return False
        self.move(old, api_key, day)
        return True

    def move(self, old: str, api_key: str, day: str, owner: str | None = None) -> None:
        """Re-index one key under the current secret and re-seal its follower's copy."""
        new = self.vault.fingerprint(api_key)
        flat = self._drain(keys=[keyspace.api_key(old), keyspace.api_key_day(old, day)])
        if flat:
            record = dict(zip(flat[::2], flat[1::2], strict=True))
            day_use = [record.pop("__tokens"), record.pop("__calls")]
            record["balance"] = str(int(record.get("balance", 0)) + int(record.get("reserved", 0)))
            record["reserved"] = "0"
            fields = [item for pair in record.items() for item in pair]
            self._place(keys=[keyspace.api_key(new), keyspace.api_key_day(new, day)], args=[*day_use, DAY_TTL, *fields])
            owner = owner or record.get("owner")
        if owner and keyspace.valid_openid(owner):
            self._repoint(keys=[keyspace.account(owner)], args=[old, new, self.vault.seal(api_key)])
        logger.info("moved %s to %s under the current BOT_SECRET", log_id(old), log_id(new))

    def reseal_all(self, day: str) -> ResealReport:
        """Move every follower's key to the current secret (`flask --app wsgi keys reseal`)."""
        report = ResealReport()
        for account in self.redis.scan_iter(match=keyspace.accounts_pattern(), count=500):
            fp, sealed = self.redis.hmget(account, "key_fp", "key_sealed")
            if not sealed:
                continue
            key = self.vault.open_current(sealed)
            if key is not None and self.vault.fingerprint(key) == fp:
                report.current += 1
                continue
            key = key or self.vault.open(sealed)
            if key is None or not fp:
                report.unreadable += 1
                continue
            self.move(fp, key, day, owner=account.split("{u:", 1)[1].split("}", 1)[0])
            report.moved += 1
        return report
