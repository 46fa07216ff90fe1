"""Each upstream's health, as this worker has seen it: failures in a row, a cool-down, a single trial.

Kept per worker, in memory: reading or writing it costs no Redis round trip, so a message or an API
call talks to Redis exactly as often with several upstreams as with one. The price: each worker
learns of an outage by itself (up to BOT_UPSTREAM_FAILURES failed attempts per worker, a few
milliseconds each for a refused connection), and each probes a recovered upstream by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HealthState:
    """What the operator is shown (/healthz?upstreams=1, /upstreams on WeChat)."""

    # up | failing (failed lately, still tried) | down (cooling down, skipped) | trial (its cool-down is
    # over: the next request to reach it, and only that one, tries it)
    state: str
    failures: int  # in a row
    retry_in: float  # seconds until a trial request may try it again (0 unless down)


class Health:
    """An upstream that fails `limit` times in a row is skipped for `cooldown` seconds; then one
    request at a time tries it (a trial) until one succeeds, which restores it."""

    def __init__(self, limit: int, cooldown: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.cooldown, self.clock = limit, cooldown, clock
        self.failures = 0
        self.failed_at = float("-inf")
        self.down_until = 0.0
        self.trial = False  # a request is trying it after its cool-down
        self._lock = threading.Lock()  # worker threads (tests, the CLI); greenlets never switch inside

    def admit(self) -> bool:
        """Whether a call may try it now; True after a cool-down claims the single trial."""
        if self.failures < self.limit:
            return True
        with self._lock:
            if self.trial or self.clock() < self.down_until:
                return False
            self.trial = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.trial = 0, False

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            self.failed_at = self.clock()
            self.trial = False
            if self.failures >= self.limit:
                self.down_until = self.clock() + self.cooldown

    def rank(self) -> int:
        """How unhealthy it looks when calls are ordered: its failures in a row, forgotten a cool-down
        after the last one, so one blip does not leave it behind its equals for good."""
        if self.failures == 0 or self.clock() - self.failed_at >= self.cooldown:
            return 0
        return min(self.failures, self.limit)

    def abandoned(self) -> None:
        """The attempt ended with no verdict (the caller's request was refused, or the call was
        killed): a trial it held is given back."""
        with self._lock:
            self.trial = False

    def report(self) -> HealthState:
        if self.failures < self.limit:
            return HealthState("failing" if self.failures else "up", self.failures, 0.0)
        left = max(0.0, self.down_until - self.clock())
        return HealthState("down" if left and not self.trial else "trial", self.failures, round(left, 1))
