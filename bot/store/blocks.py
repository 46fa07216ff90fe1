"""Admin blocks of a follower (openid) or of an API `user` value, effective on the next request.

A follower's block lives in their slot (`bot:{u:<openid>}:blocked`), where the WeChat admission
script reads it, and is mirrored as `blocked=1` onto their API key's record, where the key's reserve
script reads it: so blocking a follower stops their key too without a cross-slot read. A `user`
value's block is global (`bot:{user:<digest>}:blocked`); the API reads it only when a request
carries `user`.
"""

from __future__ import annotations

import logging

import redis

from bot.store import keyspace
from bot.store.scripts import Script

logger = logging.getLogger(__name__)


class FlagKey(Script):
    """Flag a key record blocked only if it exists: HSET on a revoked key's name would leave a husk."""

    KEYS = ("record",)
    LUA = """
local record = KEYS[1]
if redis.call('EXISTS', record) == 1 then redis.call('HSET', record, 'blocked', 1) end
return 0
"""


class Blocklist:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._flag = FlagKey(client)

    def block_user(self, user: str) -> bool:
        """Block a `user` value on every key; False if it was blocked already."""
        created = bool(self.redis.set(keyspace.user_blocked(user), user, nx=True))
        logger.info("blocked user value %r", user)
        return created

    def unblock_user(self, user: str) -> bool:
        """Lift a `user` block; False if there was none."""
        return bool(self.redis.delete(keyspace.user_blocked(user)))

    def user_blocked(self, user: str) -> bool:
        return bool(self.redis.exists(keyspace.user_blocked(user)))

    def block_openid(self, openid: str) -> bool:
        """Block a follower's chat and API key; False if they were blocked already."""
        created = bool(self.redis.set(keyspace.follower_blocked(openid), 1, nx=True))
        self._mirror(openid, True)
        logger.info("blocked follower %s", openid)
        return created

    def unblock_openid(self, openid: str) -> bool:
        """Lift a follower's block; False if there was none."""
        removed = bool(self.redis.delete(keyspace.follower_blocked(openid)))
        self._mirror(openid, False)
        return removed

    def openid_blocked(self, openid: str) -> bool:
        return bool(self.redis.exists(keyspace.follower_blocked(openid)))

    def _mirror(self, openid: str, blocked: bool) -> None:
        fingerprint = self.redis.hget(keyspace.account(openid), "key_fp")
        if not fingerprint:
            return
        record = keyspace.api_key(fingerprint)
        if blocked:
            self._flag(record=record)
        else:
            self.redis.hdel(record, "blocked")
