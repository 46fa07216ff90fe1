"""Sign-in without passwords: one-time links the official account hands out, and session generations.

A link's token is 192 random bits from `secrets`; Redis keeps only its SHA-256, with the openid, for
ten minutes, and GETDEL takes it exactly once. Links that were not valid are counted per client
address, and an address past the cap is refused before its guess is looked at. A follower's session
generation lets "sign out everywhere" end every cookie issued before it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from enum import Enum

import redis

from bot.ids import valid_openid
from bot.store import keyspace

logger = logging.getLogger(__name__)

LINK_SECONDS = 600  # the issue: a link is valid for 10 minutes
TOKEN_BYTES = 24  # 192 bits, more than the 128 asked for
MISS_WINDOW_SECONDS = 600
MAX_MISSES = 20  # bad links per address per window; a person mistyping makes a few


class Redeemed(Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # used, expired or never issued: the three look the same, on purpose
    MALFORMED = "malformed"
    TOO_MANY = "too_many"  # this address guessed too often


@dataclass(frozen=True)
class Redemption:
    outcome: Redeemed
    openid: str = ""


def token_digest(token: str) -> str:
    """What Redis stores instead of a token: its SHA-256 (192 random bits need no secret key)."""
    return hashlib.sha256(token.encode()).hexdigest()


def plausible(token: str) -> bool:
    """Whether `token` has the shape of one of ours (url-safe base64 of TOKEN_BYTES)."""
    return len(token) == 32 and all(c.isalnum() or c in "-_" for c in token) and token.isascii()


class SignIns:
    """One-time sign-in links and session generations, in Redis (per-owner keys: Cluster works)."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def issue_link(self, openid: str) -> str:
        """A new one-time token for `openid`, valid LINK_SECONDS; Redis keeps its digest only."""
        if not valid_openid(openid):
            raise ValueError(f"not an openid: {openid!r}")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.redis.set(keyspace.login_link(token_digest(token)), openid, ex=LINK_SECONDS)
        logger.info("sign-in link issued for %s", openid)
        return token

    def redeem(self, token: str, address: str) -> Redemption:
        """Use a link once: the openid it was issued for, or why not. Misses count against `address`."""
        misses = keyspace.login_misses(address)
        if int(self.redis.get(misses) or 0) >= MAX_MISSES:
            return Redemption(Redeemed.TOO_MANY)
        openid = self.redis.getdel(keyspace.login_link(token_digest(token))) if plausible(token) else None
        if openid:
            return Redemption(Redeemed.OK, openid)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(misses, 0, ex=MISS_WINDOW_SECONDS, nx=True)  # the window starts at the first miss
            pipe.incr(misses)
            pipe.execute()
        return Redemption(Redeemed.UNKNOWN if plausible(token) else Redeemed.MALFORMED)

    def generation(self, openid: str) -> int:
        return int(self.redis.get(keyspace.follower_sessions(openid)) or 0)

    def end_all(self, openid: str) -> int:
        """Sign the follower out everywhere: every session issued before now stops on its next request."""
        return int(self.redis.incr(keyspace.follower_sessions(openid)))

    def standing(self, openid: str) -> tuple[int, bool]:
        """(session generation, blocked) in one round trip: what every signed-in request checks."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keyspace.follower_sessions(openid))
            pipe.exists(keyspace.follower_blocked(openid))
            generation, blocked = pipe.execute()
        return int(generation or 0), bool(blocked)
