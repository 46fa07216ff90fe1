"""API keys: issued once per follower, looked up after, revoked or rotated at once everywhere.

Redis holds, per key, `bot:{k:<fp>}` (owner, balance, reserved, used, created) where fp is the
key's HMAC fingerprint; and per follower, `bot:{u:<openid>}:account` (fp and the sealed key, and
between keys their balance: see store/funds.py). There is no cache in process memory: every request
reads Redis, so a revoked key fails on its next use.

The balance and use are the follower's, not one key's: a revoke parks them in the account and the
next key continues them, and a rotate is exactly a revoke followed by an issue. Only a follower's
first key comes with the grant.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import time
from dataclasses import dataclass

import redis

from bot import metrics
from bot.ids import log_id, today
from bot.store import keyspace
from bot.store.apikeys_lua import ClaimAccount, Claimed, Grant, RetireKey
from bot.store.funds import Funds
from bot.store.keyspace import DAY_TTL
from bot.store.limits import now_ms
from bot.store.rekey import KeyMigration, ResealReport
from bot.store.usage import HISTORY_TTL
from bot.store.vault import Vault

logger = logging.getLogger(__name__)

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_RE = re.compile(r"^sk-[A-Za-z0-9]{48}$")
_ISSUE_ATTEMPTS = 5
RETIRED_KEPT = 10  # revoked keys whose history the portal still shows (each kept 90 days at most)


def new_key() -> str:
    """`sk-` and 48 letters or digits from the OS's CSPRNG."""
    return "sk-" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(48))


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    owner: str
    balance: int
    reserved: int
    used: int
    used_today: int
    created: int
    blocked: bool = False


class KeyStore:
    def __init__(self, client: redis.Redis, vault: Vault, grant_tokens: int):
        self.redis = client
        self.vault = vault
        self.grant_tokens = grant_tokens
        self._claim, self._retire, self._grant = ClaimAccount(client), RetireKey(client), Grant(client)
        self.funds = Funds(client)
        self.migration = KeyMigration(client, vault)

    def fingerprint(self, api_key: str) -> str | None:
        """The fingerprint of a well-formed key, or None for anything that cannot be a key."""
        return self.vault.fingerprint(api_key) if KEY_RE.match(api_key) else None

    def lookup(self, api_key: str) -> str | None:
        """The fingerprint a request's key is found under; during a BOT_SECRET rotation (previous
        secret set) a key still indexed under the previous secret is moved on this first use."""
        fp = self.fingerprint(api_key)
        if fp and self.vault.previous is not None and not self.active(fp):
            self.adopt(api_key)
        return fp

    def adopt(self, api_key: str) -> bool:
        """During a BOT_SECRET rotation: move a key still indexed under the previous secret (its
        first use since), answering whether it did. The API calls this only for a key the ledger
        did not find, so a request with a current key costs nothing more."""
        return self.migration.adopt(api_key, today())

    def reseal(self) -> ResealReport:
        """Move every key to the current BOT_SECRET at once."""
        return self.migration.reseal_all(today())

    def _create(self, openid: str, balance: int, used: int) -> tuple[str, str]:
        key = new_key()
        fp = self.vault.fingerprint(key)
        record = {"owner": openid, "balance": balance, "reserved": 0, "used": used, "created": int(time.time())}
        if self.redis.exists(keyspace.follower_blocked(openid)):
            record["blocked"] = 1  # a blocked follower's new key is blocked too (see store/blocks.py)
        self.redis.hset(keyspace.api_key(fp), mapping=record)
        return key, fp

    def issue(self, openid: str) -> tuple[str, bool]:
        """The follower's key and whether it was created now (the first ask issues, later ones look up).
        A new key continues the follower's balance and use; only their first comes with the grant."""
        account = keyspace.account(openid)
        for _ in range(_ISSUE_ATTEMPTS):
            fields = self.redis.hmget(account, "key_sealed", "granted", "balance", "used", "moves")
            sealed, granted, balance, used, moves = fields
            if sealed:
                return self._open(sealed, openid), False
            # The key record exists before the account points at it, so a key is never shown unusable.
            key, fp = self._create(openid, int(balance or 0) if granted else self.grant_tokens, int(used or 0))
            outcome, winner = self._claim(
                account=account, fp=fp, sealed=self.vault.seal(key), created=int(time.time()), moves=moves or ""
            )
            if outcome is Claimed.CLAIMED:
                if not granted:
                    self.redis.incr(keyspace.key_owners())
                    metrics.count_key_issued()  # the console's "new keys" (bot/console/traffic.py)
                logger.info("issued %s to %s", log_id(fp), openid)
                return key, True
            self.redis.delete(keyspace.api_key(fp))  # another worker issued one first, or the funds moved
            if outcome is Claimed.TAKEN:
                return self._open(winner, openid), False
        raise RuntimeError(f"the balance of {openid} kept changing while a key was issued")

    def _open(self, sealed: str, openid: str) -> str:
        key = self.vault.open(sealed)
        if key is None:
            raise RuntimeError(f"the key of {openid} was sealed under another BOT_SECRET")
        return key

    def current_key(self, openid: str) -> tuple[str | None, bool]:
        """(the follower's key or None, whether they ever had one): read only, never issues."""
        sealed, granted = self.redis.hmget(keyspace.account(openid), "key_sealed", "granted")
        return (self._open(sealed, openid) if sealed else None), bool(granted)

    def fingerprint_of(self, openid: str) -> str | None:
        return self.redis.hget(keyspace.account(openid), "key_fp")

    def active(self, fingerprint: str) -> bool:
        """Whether the key exists now (not revoked); one read, no cache."""
        return bool(self.redis.exists(keyspace.api_key(fingerprint)))

    def info(self, fingerprint: str) -> KeyInfo | None:
        """Owner, balance and use of a key (None if unknown or revoked)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keyspace.api_key(fingerprint))
            pipe.hget(keyspace.api_key_day(fingerprint, today()), "tokens")
            record, day = pipe.execute()
        if not record:
            return None
        return KeyInfo(
            fingerprint=fingerprint,
            owner=record.get("owner", ""),
            balance=int(record.get("balance", 0)),
            reserved=int(record.get("reserved", 0)),
            used=int(record.get("used", 0)),
            used_today=int(day or 0),
            created=int(record.get("created", 0)),
            blocked=record.get("blocked") == "1",
        )

    def revoke(self, openid: str) -> bool:
        """Revoke the follower's key; the next request with it fails, on every worker. Its balance
        and use wait in the follower's account for their next key."""
        fp = self.fingerprint_of(openid)
        if not fp:
            return False
        left = self._retire(
            record=keyspace.api_key(fp), holds=keyspace.api_key_holds(fp),
            revoked_holds=keyspace.api_key_revoked_holds(fp), now_ms=now_ms(), revoked_ttl=DAY_TTL,
        )  # fmt: skip
        self.funds.deposit(openid, left.balance, left.used, retired=fp)
        self._remember_retired(openid, fp)
        logger.info("revoked %s of %s", log_id(fp), openid)
        return True

    def _remember_retired(self, openid: str, fp: str) -> None:
        """Keep the last revoked keys' fingerprints, so the follower's usage history outlives a rotation."""
        retired = keyspace.follower_retired_keys(openid)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(retired, fp)
            pipe.ltrim(retired, 0, RETIRED_KEPT - 1)
            pipe.expire(retired, HISTORY_TTL)
            pipe.execute()

    def history_keys(self, openid: str) -> list[str]:
        """The fingerprints whose history is the follower's: their current key's, then the retired ones'."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keyspace.account(openid), "key_fp")
            pipe.lrange(keyspace.follower_retired_keys(openid), 0, RETIRED_KEPT - 1)
            current, retired = pipe.execute()
        return ([current] if current else []) + retired

    def rotate(self, openid: str) -> str:
        """Revoke the follower's key and issue a new one, which continues the balance and use."""
        old = self.fingerprint_of(openid)
        self.revoke(openid)
        key, _ = self.issue(openid)
        logger.info("rotated %s of %s to %s", log_id(old or "-"), openid, log_id(self.vault.fingerprint(key)))
        return key

    def grant(self, fingerprint: str, tokens: int) -> int | None:
        """Add tokens to a key's balance; the new balance, or None if the key does not exist."""
        balance = self._grant(record=keyspace.api_key(fingerprint), tokens=tokens)
        return None if balance is None else int(balance)
