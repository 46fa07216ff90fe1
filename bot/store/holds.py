"""Keeping a key's reservations held for as long as their requests live.

A reservation is a hold with a lease, so that one whose request died (its worker gone, Redis away at
settle time) goes back to the balance. A live request may outlast any lease: a stream has no total
time limit, and a caller may stop reading for as long as it likes. So while a request is alive in
this process its hold is renewed, off the request's own path: one thread (a greenlet under gevent)
per process and ledger wakes six times a lease and, in one pipelined round trip, moves on the expiry
of every hold whose lease is a third gone. A request shorter than that costs nothing; a longer one
costs one ZADD per third of a lease, shared with every other long request of the process.

`ZADD XX` never brings back a hold that a reserve has already returned (a renewal that came too
late): its request then settles against the balance, as before. Holds are watched through weak
references, so a request dropped without settling stops being renewed and its hold returns after
the lease as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.store.limits import now_ms

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Hold:
    """One request's reservation: the sorted set it is in, its member there, and when it expires."""

    key: str
    member: str
    expires_ms: int


class HoldKeeper:
    def __init__(self, client: redis.Redis, lease_ms: int, clock: Callable[[], float] = time.time):
        self.redis = client
        self.lease_ms = lease_ms
        self.clock = clock
        self._holds: weakref.WeakSet[Hold] = weakref.WeakSet()
        self._lock = threading.Lock()  # held only around in-memory work, never across a yield
        self._runner: int | None = None  # the pid whose renewing thread runs, if one does

    def watch(self, hold: Hold) -> None:
        """Keep `hold` alive until release(); starts this process's renewing thread if none runs."""
        with self._lock:
            self._holds.add(hold)
            start, self._runner = self._runner != os.getpid(), os.getpid()
        if start:
            threading.Thread(target=self._run, name="hold-keeper", daemon=True).start()

    def release(self, hold: Hold) -> None:
        """The request is settling (or gave up): stop renewing its hold."""
        with self._lock:
            self._holds.discard(hold)

    def renew_due(self) -> int:
        """Renew every watched hold whose lease is a third gone, in one round trip; answers how many."""
        now = now_ms(self.clock)
        with self._lock:
            due = [hold for hold in self._holds if hold.expires_ms - now <= self.lease_ms * 2 // 3]
        if not due:
            return 0
        with self.redis.pipeline(transaction=False) as pipe:
            for hold in due:
                pipe.zadd(hold.key, {hold.member: now + self.lease_ms}, xx=True, ch=True)
            kept = pipe.execute()
        for hold, renewed in zip(due, kept, strict=True):
            if renewed:
                hold.expires_ms = now + self.lease_ms
            else:  # settled meanwhile, or returned already: nothing left to keep
                self.release(hold)
        return sum(1 for renewed in kept if renewed)

    def _run(self) -> None:
        try:
            while self._round():
                pass
        except BaseException:  # a fault, reported by the thread's hook: the next watch starts another
            with self._lock:
                self._runner = None
            raise

    def _round(self) -> bool:
        """Wait a sixth of a lease and renew what is due; False, and the thread ends, once none is watched."""
        time.sleep(self.lease_ms / 6000)
        with self._lock:
            if not self._holds:
                self._runner = None  # under the lock: a watch() now sees no runner and starts one
                return False
        try:
            self.renew_due()
        except redis.RedisError as error:  # the next round tries again, well within the lease
            logger.warning("could not renew reservations: %s", type(error).__name__)
        return True
