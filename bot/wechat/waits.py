"""Model calls running in this worker, so a delivery here waits on an event rather than polling Redis.

The courier (bot/wechat/courier.py) starts one entry per model call; gunicorn's worker exit hook
(config/gunicorn.conf.py) drains them before the worker stops.
"""

from __future__ import annotations

import threading
import time
from typing import Any

POLL_SECONDS = 0.2  # how often a wait with nothing to wake it looks again (a reply in Redis, the calls running)


class _Call:
    """A model call running here: the deliveries waiting on it, and the reply they get."""

    __slots__ = ("done", "replies", "early", "writing")

    def __init__(self, early: bool, writing: Any = None):
        self.done = threading.Event()
        self.replies: list[str] = []
        self.early = early  # may hand its reply over before Redis has recorded it
        self.writing = writing  # the answer as it arrives (bot/wechat/writer.py's Writing)

    def answer(self, reply: str | None) -> None:
        if not self.done.is_set():
            if reply:
                self.replies.append(reply)
            self.done.set()


class LocalWaits:
    """Model calls running in this process, so a delivery here waits on an event, not on Redis.

    An entry lives while its call runs and hands the decided reply to the deliveries waiting on it;
    a delivery that arrives after the call ended reads the reply from Redis."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}

    def start(self, key: str, early: bool = True, writing: Any = None) -> None:
        """A call begins. `early`: its reply may be handed over as soon as the script recording it
        is sent (offer); not for a call that redoes a message another run may have answered.
        `writing`: its answer as the model writes it, which deliveries here read without Redis."""
        self._calls[key] = _Call(early, writing)

    def offer(self, key: str, reply: str) -> None:
        """Hand the reply to the deliveries waiting here while the call is still recording it.

        The reply is the one the script decides unless a reply was decided before, by a deferral:
        the delivery deferring here first says so (keep_for_redis); one deferring on another worker
        does it when its own window ends, after the windows of the deliveries before it."""
        call = self._calls.get(key)
        if call is not None and call.early:
            call.answer(reply)

    def keep_for_redis(self, key: str) -> None:
        """A reply is being decided without the call (a deferral): waiters get what Redis records."""
        call = self._calls.get(key)
        if call is not None:
            call.early = False

    def finish(self, key: str, reply: str | None) -> None:
        """The call has ended: deliveries that still wait get `reply` (unless it was offered before)."""
        call = self._calls.pop(key, None)
        if call is not None:
            call.answer(reply)

    def get(self, key: str) -> _Call | None:
        return self._calls.get(key)

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for the running calls to end (a worker shutting down); answers how
        many are still running. They are not requests, so gunicorn's graceful stop does not wait."""
        deadline = time.monotonic() + timeout
        while self._calls and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        return len(self._calls)
