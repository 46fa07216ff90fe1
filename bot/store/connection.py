"""The one Redis client of an app: standalone, Cluster or Sentinel, with bounded blocking pools.

Cluster mode is detected (`INFO cluster`) unless REDIS_CLUSTER says yes or no. Every key the service
uses carries a hash tag per owner (bot/store/keyspace.py), so each script and pipeline stays in one
slot and runs unchanged on a cluster.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import SlotNotCoveredError
from redis.sentinel import Sentinel

logger = logging.getLogger(__name__)

# Under gevent hundreds of greenlets may want Redis at once; a blocking pool makes them queue for a
# connection (up to POOL_TIMEOUT) instead of failing with MaxConnectionsError.
# Every command the service sends is a short script, so a Redis that does not answer within these is
# down or hung: waiting for a connection, connecting and reading add up to 4.5 s at worst, so a
# follower still gets "服务繁忙" inside WeChat's 5-second window.
POOL_SIZE = 64
POOL_TIMEOUT = 1.5
CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
_OPTIONS = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT, "decode_responses": True}
# A readiness probe must answer within a load balancer's check: a few connections, 1-second waits.
PROBE_TIMEOUT = 1.0
_PROBE = {"socket_timeout": PROBE_TIMEOUT, "socket_connect_timeout": PROBE_TIMEOUT, "decode_responses": True}


def connect(
    url: str, cluster: str = "auto", sentinels: tuple[str, ...] = (), sentinel_master: str = "", probe: bool = False
):
    """A client for `url` (redis://, rediss:// or unix://), or for the Sentinel-monitored master.

    `probe`: a small client with short timeouts, for health checks that must answer fast.
    """
    options, size, wait = (_PROBE, 4, PROBE_TIMEOUT) if probe else (_OPTIONS, POOL_SIZE, POOL_TIMEOUT)
    if sentinels:
        hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in sentinels]
        sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": 2.0}, **options)
        return sentinel.master_for(sentinel_master, max_connections=size)
    if cluster == "yes" or (cluster == "auto" and _is_cluster(url)):
        return RedisCluster.from_url(
            url, connection_pool_class=redis.BlockingConnectionPool, max_connections=size, timeout=wait, **options
        )
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=size, timeout=wait, **options)
    return redis.Redis(connection_pool=pool)


def _is_cluster(url: str) -> bool:
    probe = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except redis.RedisError as error:
        logger.warning("could not ask Redis whether it is a cluster (%s): assuming it is not", type(error).__name__)
        return False
    finally:
        probe.close()


def disconnect(client) -> None:
    """Close every connection of a client made by connect()."""
    if isinstance(client, RedisCluster):
        for node in client.get_nodes():
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()
        client.close()
    else:
        client.connection_pool.disconnect()


class _Kept:
    """A few connections run_script keeps checked out of one pool between its calls, so that each
    call skips the pool's queue and bookkeeping (a measurable share of a script's round trip under
    gevent). At most KEEP stay kept; the others go back to the pool for every other command."""

    KEEP = 4

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: list = []


_kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def _take(pool):
    kept = _kept.get(pool)
    if kept is None or kept.pid != os.getpid():
        return pool.get_connection()
    try:
        connection = kept.idle.pop()  # atomic: threads outside gevent may race for the last one
    except IndexError:
        return pool.get_connection()
    try:
        try:  # as the pool checks: connected, and nothing unread nor closed by Redis
            connection.connect()
            if connection.can_read():
                raise redis.ConnectionError("a connection with data waiting")
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()
            connection.connect()
    except BaseException:
        pool.release(connection)
        raise
    return connection


def _give_back(pool, connection) -> None:
    kept = _kept.get(pool)
    if kept is None or kept.pid != os.getpid():
        with _kept_lock:
            kept = _kept.get(pool)
            if kept is None or kept.pid != os.getpid():  # a new pool, or a forked process (not its parent's)
                kept = _kept[pool] = _Kept()
    if len(kept.idle) < _Kept.KEEP:
        kept.idle.append(connection)
    else:
        pool.release(connection)


# Answers that mean a script did not run at all, so running it the usual way is safe.
_NOT_RUN = (
    redis.exceptions.NoScriptError, redis.exceptions.MovedError, redis.exceptions.AskError,
    redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError,
)  # fmt: skip


def _node_of(client, key: str):
    """The client of the node serving `key` (the client itself unless it is a Cluster's), or None."""
    if not isinstance(client, RedisCluster):
        return client
    try:
        return client.get_node_from_key(key).redis_connection
    except SlotNotCoveredError:  # a cluster in the middle of a failover: redis-py finds the slot's new owner
        return None


def run_script(
    client, script: Script, keys: list[str], args: list,
    sent: Callable[[], None] = lambda: None, idempotent: bool = True,
):  # fmt: skip
    """Run a registered script straight on a pooled connection, calling `sent()` (once, unless it
    could not be sent) as soon as its command is written, so the caller's next work overlaps the
    round trip. Redis promises no order between connections: nothing correct may depend on a later
    command finding the script run. Where the quick way fails (script not loaded, a slot moved, a
    connection broken before sending) the script runs the usual way; a connection lost after
    sending leaves unknown whether it ran: an `idempotent` script is run again, any other raises."""
    node = _node_of(client, keys[0])
    if node is None:
        answer = script(keys=keys, args=args)
        sent()
        return answer
    pool = node.connection_pool
    connection = _take(pool)
    written = False
    try:
        connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        written = True
        sent()
        return connection.read_response()
    except (redis.ConnectionError, redis.TimeoutError):
        # Broken before the command was whole (Redis drops it), or after: its answer may still come.
        connection.disconnect()
        if written and not idempotent:
            raise
    except _NOT_RUN:
        pass
    except BaseException:
        connection.disconnect()  # an answer may be left unread (a greenlet killed mid-call, say)
        raise
    finally:
        _give_back(pool, connection)
    answer = script(keys=keys, args=args)
    if not written:
        sent()
    return answer
