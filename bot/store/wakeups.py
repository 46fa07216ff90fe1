"""Questions waiting for a follower's model slot are woken when it frees, not by polling Redis.

A question that finds the slot taken joins the follower's queue (`bot:{u:<openid>}:busy:waiting`, a
sorted set by arrival) and sleeps. The script that frees the slot gives it to the first in the queue,
reserved for a few seconds, and PUBLISHes which message got it and which is next. Each worker holds
one subscription (one connection, whatever the number of waiting questions) and wakes the message
named; the next one re-checks when that reservation ends, in case its worker is gone. A waiting
question also re-checks when the holder's lease ends (a worker that died holding the slot), and all
of a worker's waiting questions re-check whenever its subscription starts again (messages published
while it was down are lost). Waiting costs O(1) Redis commands per finished turn.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import gevent
import redis
from gevent import monkey
from redis.cluster import RedisCluster

from bot.store import keyspace

logger = logging.getLogger(__name__)

CHANNEL = f"{keyspace.PREFIX}:turns"
TICK_SECONDS = 1.0  # the listener notices close() within this
QUIET_SECONDS = 30.0  # a subscription silent this long is pinged; one silent as long again is renewed
RETRY_SECONDS = 1.0  # between attempts to subscribe again after a failure
SUBSCRIBE_SECONDS = 1.0  # the first question to wait in a process waits at most this for the subscription
EXPIRY_MARGIN = 0.05  # a re-check timed to a key's expiry comes this much later, so it finds it expired


def waiting(openid: str) -> str:
    """The messages waiting for the follower's model slot (beside `busy`, in the same hash slot)."""
    return keyspace.busy(openid) + ":waiting"


class Waiter:
    """One question waiting in this process: it sleeps until its check time, which a wake-up brings
    forward. A wake-up that comes during a check is kept for the next sleep, so none is lost."""

    __slots__ = ("msg_id", "check_at", "_event")

    def __init__(self, msg_id: str):
        self.msg_id = msg_id
        self.check_at = math.inf
        self._event = threading.Event()

    def wake_at(self, when: float) -> None:
        if when < self.check_at:
            self.check_at = when
            self._event.set()

    def sleep(self, until: float) -> None:
        """Return at `until` (monotonic) or sooner if woken; the waiter is then ready for its next check."""
        self.check_at = min(self.check_at, until)
        while (remaining := self.check_at - time.monotonic()) > 0:
            self._event.wait(remaining)
            self._event.clear()
        self.check_at = math.inf


class Wakeups:
    """This process's questions waiting for a slot, woken by the one subscription it starts on first use."""

    def __init__(self, client, channel: str = CHANNEL):
        self.redis = client
        self.channel = channel
        self._waiters: dict[str, list[Waiter]] = {}
        self._lock = threading.Lock()
        self._listener_pid = 0  # the process whose listener runs (none after a fork)
        self._subscribed = threading.Event()
        self._failing = False  # the subscription is down: said once, until it is back
        self._closed = False

    @contextmanager
    def waiting(self, openid: str, msg_id: str) -> Iterator[Waiter]:
        """A waiter for `msg_id`, registered and (unless Redis is failing) subscribed before its first
        check, so that no wake-up sent after that check is missed."""
        waiter = Waiter(msg_id)
        with self._lock:
            self._waiters.setdefault(openid, []).append(waiter)
            self._listen_here()
        self._subscribed.wait(SUBSCRIBE_SECONDS)
        waiter.check_at = math.inf  # a wake-up sent before the first check needs no second one
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._waiters[openid]
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[openid]

    def close(self) -> None:
        """Stop listening (the app is closing); the listener ends within TICK_SECONDS."""
        self._closed = True

    def _listen_here(self) -> None:
        if self._listener_pid == os.getpid() or self._closed:
            return
        self._listener_pid = os.getpid()
        # A greenlet in gunicorn's gevent workers, a thread elsewhere (as the courier's model calls).
        if monkey.is_module_patched("threading"):
            gevent.spawn(self._listen)
        else:
            threading.Thread(target=self._listen, name="turn-wakeups", daemon=True).start()

    def _listen(self) -> None:
        """Subscribe, and subscribe again after any failure, until closed (one log line per outage)."""
        while not self._closed:
            pubsub = None
            self._subscribed.clear()
            try:
                pubsub = self._subscriber()
                pubsub.subscribe(self.channel)
                self._serve(pubsub)
            except Exception as error:  # Redis down, a cluster node gone: waiting questions use their timers
                if not self._closed and not self._failing:
                    logger.warning("turn wake-ups: subscription lost (%s), subscribing again", type(error).__name__)
                self._failing = True
                time.sleep(0 if self._closed else RETRY_SECONDS)
            finally:
                if pubsub is not None:
                    with suppress(Exception):
                        pubsub.close()

    def _subscriber(self):
        client = self.redis
        if isinstance(client, RedisCluster):
            # A PUBLISH reaches every node of a cluster, so any node serves; after a failure, another.
            client = client.get_redis_connection(client.get_random_node())
        return client.pubsub()  # a Sentinel client's finds the current master

    def _serve(self, pubsub) -> None:
        """Hand on what arrives; a connection that stops answering is given up (TCP alone may not tell)."""
        heard, pinged = time.monotonic(), False
        while not self._closed:
            message = pubsub.get_message(timeout=TICK_SECONDS)
            if message is not None:
                heard, pinged = time.monotonic(), False
                if self._failing and message["type"] == "subscribe":
                    logger.info("turn wake-ups: subscribed again")
                    self._failing = False
                self._handle(message)
            elif time.monotonic() - heard > 2 * QUIET_SECONDS:
                raise redis.ConnectionError(f"no answer to PING within {QUIET_SECONDS:.0f}s")
            elif time.monotonic() - heard > QUIET_SECONDS and not pinged:
                pubsub.ping()  # its answer arrives as a message
                pinged = True

    def _handle(self, message: dict) -> None:
        if message["type"] == "subscribe":  # (again): what was published meanwhile is lost, so all re-check
            self._wake_all()
            self._subscribed.set()
            return
        if message["type"] != "message":
            return
        try:
            openid, head, after, handoff_ms = json.loads(message["data"])
            recheck = time.monotonic() + float(handoff_ms) / 1000 + EXPIRY_MARGIN
            with self._lock:
                waiters = list(self._waiters.get(openid, ()))
        except (ValueError, TypeError):
            logger.warning("turn wake-ups: ignored a malformed message on %s", self.channel)
            return
        for waiter in waiters:
            if waiter.msg_id == head:
                waiter.wake_at(time.monotonic())
            elif waiter.msg_id == after:  # takes the slot if the reservation lapses unused
                waiter.wake_at(recheck)

    def _wake_all(self) -> None:
        with self._lock:
            waiters = [w for ws in self._waiters.values() for w in ws]
        for waiter in waiters:
            waiter.wake_at(time.monotonic())
