"""Work each worker does on a timer, off every request's path: the banned-word poll, the system
prompt's poll and the console's statistics flush.

A loop is a greenlet in gunicorn's gevent workers (threading is patched there) and a daemon thread
elsewhere (`flask run`, tests, benchmarks), named so that bench.redis_round_trips can leave its
Redis commands out of a message's count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import gevent
from gevent import monkey

NAMES: set[str] = set()  # every loop's thread name


class Loop:
    """Calls `tick()` every `seconds` until closed; the first call comes `seconds` after start, or at
    once with `at_once` (a value that must be right before the first request)."""

    def __init__(self, name: str, seconds: float, tick: Callable[[], None], *, at_once: bool = False):
        NAMES.add(name)
        self.name, self.seconds, self.tick, self.at_once = name, seconds, tick, at_once
        self.closed = False

    def start(self) -> None:
        if monkey.is_module_patched("threading"):
            gevent.spawn(self._run)
        else:
            threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def close(self) -> None:
        self.closed = True

    def _run(self) -> None:
        if self.at_once:
            self.tick()
        while not self.closed:
            time.sleep(self.seconds)
            if not self.closed:
                self.tick()
