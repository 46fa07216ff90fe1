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

from bot.ids import log_id, valid_openid
from bot.store import keyspace
from bot.store.keyspace import DAY_TTL
from bot.store.scripts import Script
from bot.store.vault import Vault

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drained:
    record: dict[str, str]  # the old record's fields
    day_use: tuple[str, str]  # today's tokens and calls


class Drain(Script):
    """Delete an old record and its day counter: answers {today's tokens, calls, field, value, …}, or
    nil if there is no record."""

    KEYS = ("record", "day")
    LUA = """
local record = KEYS[1]
local day = KEYS[2]
local fields = redis.call('HGETALL', record)
if #fields == 0 then return false end
local use = redis.call('HMGET', day, 'tokens', 'calls')
redis.call('DEL', record, day)
local answer = {use[1] or '0', use[2] or '0'}
for _, item in ipairs(fields) do table.insert(answer, item) end
return answer
"""

    @staticmethod
    def decode(answer: list | None) -> Drained | None:
        if not answer:
            return None
        tokens, calls, *flat = answer
        return Drained(dict(zip(flat[::2], flat[1::2], strict=True)), (tokens, calls))


class Place(Script):
    """Write a moved record (`fields`: field, value, …) and today's use under the new fingerprint.
    Never overwrites a record that exists: its balance and use are added to instead."""

    KEYS = ("record", "day")
    ARGV = ("tokens", "calls", "day_ttl")
    TAIL = "fields"
    LUA = """
local record = KEYS[1]
local day = KEYS[2]
local tokens = ARGV[1]
local calls = ARGV[2]
local day_ttl = ARGV[3]
local fields = {unpack(ARGV, 4)}
if redis.call('EXISTS', record) == 1 then
  for i = 1, #fields, 2 do
    if fields[i] == 'balance' or fields[i] == 'used' then redis.call('HINCRBY', record, fields[i], fields[i + 1]) end
  end
else
  redis.call('HSET', record, unpack(fields))
end
if tonumber(tokens) > 0 or tonumber(calls) > 0 then
  redis.call('HINCRBY', day, 'tokens', tokens)
  redis.call('HINCRBY', day, 'calls', calls)
  redis.call('EXPIRE', day, day_ttl)
end
return 1
"""


class Repoint(Script):
    """Point the follower's account at the key's new fingerprint and sealed copy, if it still points
    at the old one: answers whether it did."""

    KEYS = ("account",)
    ARGV = ("old_fp", "new_fp", "sealed")
    LUA = """
local account = KEYS[1]
local old_fp = ARGV[1]
local new_fp = ARGV[2]
local sealed = ARGV[3]
if redis.call('HGET', account, 'key_fp') ~= old_fp then return 0 end
redis.call('HSET', account, 'key_fp', new_fp, 'key_sealed', sealed)
return 1
"""

    @staticmethod
    def decode(answer: int) -> bool:
        return answer == 1


@dataclass
class ResealReport:
    moved: int = 0  # keys now under the current secret that were not before
    current: int = 0  # already under the current secret
    unreadable: int = 0  # sealed under neither secret: their followers need `keys rotate`


class KeyMigration:
    def __init__(self, client: redis.Redis, vault: Vault):
        self.redis = client
        self.vault = vault
        self._drain, self._place, self._repoint = Drain(client), Place(client), Repoint(client)

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
        drained = self._drain(record=keyspace.api_key(old), day=keyspace.api_key_day(old, day))
        if drained is not None:
            record = drained.record
            record["balance"] = str(int(record.get("balance", 0)) + int(record.get("reserved", 0)))
            record["reserved"] = "0"
            fields = [item for pair in record.items() for item in pair]
            tokens, calls = drained.day_use
            self._place(
                *fields, record=keyspace.api_key(new), day=keyspace.api_key_day(new, day), tokens=tokens,
                calls=calls, day_ttl=DAY_TTL,
            )  # fmt: skip
            owner = owner or record.get("owner")
        if owner and valid_openid(owner):
            self._repoint(account=keyspace.account(owner), old_fp=old, new_fp=new, sealed=self.vault.seal(api_key))
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
