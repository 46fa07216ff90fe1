"""The one Redis client of an app: a bounded, blocking connection pool with timeouts."""

from __future__ import annotations

import redis

# Under gevent hundreds of greenlets may want Redis at once; a blocking pool makes them queue for a
# connection (up to POOL_TIMEOUT) instead of failing with MaxConnectionsError.
POOL_SIZE = 64
POOL_TIMEOUT = 5.0
SOCKET_TIMEOUT = 5.0


def connect(url: str) -> redis.Redis:
    """A client for `url` (redis://, rediss:// or unix://) that answers str, not bytes."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=2.0,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)
