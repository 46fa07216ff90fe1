"""Every Redis key the service uses, built in one place.

All keys start with `bot:` and carry a hash tag per owner (`{k:<fingerprint>}` for an API key,
`{u:<openid>}` for a follower), so every multi-key script of one owner stays in one Cluster slot.
"""

from __future__ import annotations

import hashlib

from bot.ids import valid_openid

PREFIX = "bot"
DAY_TTL = 3 * 86400  # day counters outlive their day: yesterday's figures stay readable


def _follower(openid: str) -> str:
    if not valid_openid(openid):
        raise ValueError(f"not an openid: {openid!r}")
    return f"{PREFIX}:{{u:{openid}}}"


def api_key(fingerprint: str) -> str:
    """Hash of one API key: owner, balance, reserved, used, created."""
    return f"{PREFIX}:{{k:{fingerprint}}}"


def api_key_day(fingerprint: str, day: str) -> str:
    """Hash of what one API key spent on one day (YYYYMMDD, China time): tokens, calls."""
    return f"{PREFIX}:{{k:{fingerprint}}}:day:{day}"


def account(openid: str) -> str:
    """Hash of one follower: the fingerprint and the encrypted copy of their API key."""
    return f"{_follower(openid)}:account"


def accounts_pattern() -> str:
    """SCAN pattern of every follower's account hash (re-sealing keys after a secret rotation)."""
    return f"{PREFIX}:{{u:*}}:account"


def history(openid: str) -> str:
    """The follower's dialogue with the bot on WeChat."""
    return f"{_follower(openid)}:history"


def key_owners() -> str:
    """How many followers have been issued an API key."""
    return f"{PREFIX}:{{stats}}:key-owners"


def day_patterns(day: str) -> tuple[str, str]:
    """SCAN patterns of one day's per-key and per-follower counters (for /stats, off the hot path)."""
    return f"{PREFIX}:{{k:*}}:day:{day}", f"{PREFIX}:{{u:*}}:day:{day}"


def message(openid: str, msg_id: str) -> str:
    """One delivered message (by WeChat's MsgId): its claim, answer and the reply it got."""
    return f"{_follower(openid)}:msg:{msg_id}"


def busy(openid: str) -> str:
    """Held by the message whose model call is running for this follower (with a lease)."""
    return f"{_follower(openid)}:busy"


def outbox(openid: str) -> str:
    """What the follower is still owed, oldest first: answer parts, or `m:<MsgId>` not ready yet."""
    return f"{_follower(openid)}:outbox"


def api_key_holds(fingerprint: str) -> str:
    """The key's reservations in flight (a sorted set: `<request>:<tokens>` scored by expiry, ms)."""
    return f"{PREFIX}:{{k:{fingerprint}}}:holds"


def api_key_revoked_holds(fingerprint: str) -> str:
    """A revoked key's reservations still in flight: each, when it settles, is charged to its follower."""
    return f"{PREFIX}:{{k:{fingerprint}}}:revoked"


def api_key_rate(fingerprint: str) -> str:
    """The key's requests of the last minute (a sorted set of timestamps)."""
    return f"{PREFIX}:{{k:{fingerprint}}}:rate"


def api_key_user_rate(fingerprint: str, user: str) -> str:
    """Requests of one `user` value of one key in the last minute; beside the key, in its slot."""
    return f"{PREFIX}:{{k:{fingerprint}}}:user:{_digest(user)}:rate"


def user_blocked(user: str) -> str:
    """Set while an admin blocks a `user` value, on every key (holds the value, for admins)."""
    return f"{PREFIX}:{{user:{_digest(user)}}}:blocked"


def follower_blocked(openid: str) -> str:
    """Set while an admin blocks a follower (their chat on WeChat and their API key)."""
    return f"{_follower(openid)}:blocked"


def follower_rate(openid: str) -> str:
    """The follower's chat messages of the last minute (a sorted set of timestamps)."""
    return f"{_follower(openid)}:rate"


def follower_day(openid: str, day: str) -> str:
    """Hash of the follower's WeChat chat on one day (YYYYMMDD, China time): used (tokens), messages."""
    return f"{_follower(openid)}:day:{day}"


def readiness() -> str:
    """Written by /readyz: proof that Redis takes writes (a replica after a failover does not)."""
    return f"{PREFIX}:{{ops}}:ready"


def _digest(value: str) -> str:
    # A `user` value is any string a developer chose: hashing keeps braces and colons out of keys.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def banned_words() -> str:
    """The words banned at run time (a set of their readings, bot/safety/text.py), beside their version."""
    return f"{PREFIX}:{{safety}}:words"


def banned_words_version() -> str:
    """Raised on every change of `banned_words`: each worker polls it and rebuilds its list on a change."""
    return f"{PREFIX}:{{safety}}:words:version"


def refusals_day(day: str) -> str:
    """Hash of one day's content-safety hits (questions refused, answers masked or blocked), for /stats."""
    return f"{PREFIX}:{{stats}}:refusals:{day}"


def login_link(digest: str) -> str:
    """A one-time sign-in link, by the SHA-256 of its token (the token itself is never stored): its openid."""
    return f"{PREFIX}:{{login:{digest}}}"


def login_misses(address: str) -> str:
    """Sign-in links from one client address that were not valid in the last window (guessing)."""
    return f"{PREFIX}:{{ip:{_digest(address)}}}:login-misses"


def follower_sessions(openid: str) -> str:
    """The follower's session generation: "sign out everywhere" moves it on, so older cookies stop."""
    return f"{_follower(openid)}:sessions"


def api_key_days(fingerprint: str) -> str:
    """Hash of the key's tokens per day (YYYYMMDD, China time), kept for the last 90 days."""
    return f"{PREFIX}:{{k:{fingerprint}}}:days"


def api_key_recent(fingerprint: str) -> str:
    """The key's last requests (a capped list, newest first): time, door, status, tokens, latency."""
    return f"{PREFIX}:{{k:{fingerprint}}}:recent"


def follower_days(openid: str) -> str:
    """Hash of the follower's WeChat chat tokens per day (YYYYMMDD, China time), the last 90 days."""
    return f"{_follower(openid)}:days"


def follower_retired_keys(openid: str) -> str:
    """Fingerprints of the follower's last revoked keys, newest first: their history stays on the portal."""
    return f"{_follower(openid)}:retired-keys"
