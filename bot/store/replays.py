"""Which message each signed WeChat query carried, for the message modes that take plaintext.

In plaintext mode WeChat's `signature` covers token, timestamp and nonce, not the body: a query
captured from any access log could carry another body for as long as the timestamp is fresh. So the
first message seen with a (timestamp, nonce) pair owns it for the replay window; the same message
again (WeChat's retries, a replay of the genuine delivery) passes, and any other message is refused.
Safe mode needs none of this: its msg_signature covers the encrypted body.
"""

from __future__ import annotations

import hashlib

import redis

from bot.store.keyspace import PREFIX
from bot.store.scripts import Script


class BindPair(Script):
    """Tie a signed (timestamp, nonce) pair to the message `identity` for `ttl_s`: answers 1 if the
    pair is new or already carried this message, 0 if it carried another."""

    KEYS = ("pair",)
    ARGV = ("identity", "ttl_s")
    LUA = """
local pair = KEYS[1]
local identity = ARGV[1]
local ttl_s = ARGV[2]
local seen = redis.call('GET', pair)
if seen then return seen == identity and 1 or 0 end
redis.call('SET', pair, identity, 'EX', ttl_s)
return 1
"""

    @staticmethod
    def decode(answer: int) -> bool:
        return answer == 1


def pair_key(pair: str) -> str:
    """One signed (timestamp, nonce) pair; hashed, so the key's shape never depends on the query."""
    return f"{PREFIX}:{{d:{hashlib.sha256(pair.encode()).hexdigest()[:32]}}}"


class SignedQueries:
    def __init__(self, client: redis.Redis, window_seconds: int):
        # A pair is fresh for `window_seconds` either side of its timestamp: keep it that long twice.
        self.ttl = 2 * int(window_seconds) + 60
        self.redis = client
        self._bind = BindPair(client)

    def bind(self, pair: str, identity: str) -> bool:
        """Tie the pair to the message `identity` (a digest of all it says); False if it carried another."""
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return self._bind.run(pair=pair_key(pair), identity=digest, ttl_s=self.ttl)
