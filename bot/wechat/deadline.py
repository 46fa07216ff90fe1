"""When a delivery must decide its reply, so that the reply reaches WeChat before its 5 s, under load too.

A delivery waits for the answer until BOT_WECHAT_WINDOW after it arrived, then replies. On a busy
machine the reply leaves later than that: the worker wakes late (other greenlets, other processes on
the CPU) and rendering and encrypting the reply take their share. A late reply to WeChat's last
delivery is the one that hurts: the follower sees 该公众号暂时无法提供服务. So every delivery decides
earlier by how late this worker's recent replies were (the largest lateness of the last half minute,
with room to spare), and the last delivery a tenth of WeChat's timeout earlier again. A reply's
lateness is measured twice: when its wait ends (the worker woke late) and when the reply has been
written to the socket (rendering, encrypting and sending it took long), so the margin covers both.
"""

from __future__ import annotations

import time
from collections import deque
from contextvars import ContextVar

LAST_MARGIN = 0.1  # of WeChat's timeout: the last delivery decides this much earlier (0.5 s of 5 s)
MAX_LAG = 0.2  # of WeChat's timeout: the most recent lateness may take off the window (1 s of 5 s)
LAG_SPAN = 30.0  # seconds of waits the lateness is judged on
LAG_FACTOR = 2.0  # room to spare: the reply's own work grows with the same load that woke it late

# The time the current request's delivery planned to decide its reply, once its wait has ended: the
# view reports when that reply has left (sent()). A context variable: one per request greenlet.
_planned: ContextVar[float | None] = ContextVar("reply_planned", default=None)


class ReplyClock:
    """Decision times for deliveries, from the window and this worker's recent lateness."""

    def __init__(self, window: float, timeout: float):
        self.window = window  # BOT_WECHAT_WINDOW
        self.timeout = timeout  # BOT_WECHAT_TIMEOUT
        self._late: deque[tuple[float, float]] = deque(maxlen=256)  # (when, seconds late)

    def decide_by(self, arrived: float, last: bool) -> float:
        """The monotonic time a delivery that arrived at `arrived` decides its reply."""
        margin = self.lag() + (LAST_MARGIN * self.timeout if last else 0.0)
        return arrived + max(self.window - margin, 0.1 * self.window)

    def woke(self, planned: float) -> None:
        """A wait planned to end at `planned` has ended now: remember how late it woke, and that this
        request's reply is due at `planned` (sent() measures it again when it has left)."""
        now = time.monotonic()
        self._late.append((now, max(0.0, now - planned)))
        _planned.set(planned)

    def begin(self) -> None:
        """A new delivery on this request context: nothing is due for it yet."""
        _planned.set(None)

    def sent(self) -> None:
        """The reply has been written out: if it was decided at its deadline, remember how late it left."""
        planned = _planned.get()
        if planned is not None:
            _planned.set(None)
            now = time.monotonic()
            self._late.append((now, max(0.0, now - planned)))

    def lag(self) -> float:
        """Seconds to take off the window: the recent lateness, with room to spare, within bounds."""
        horizon = time.monotonic() - LAG_SPAN
        while self._late and self._late[0][0] < horizon:
            self._late.popleft()
        worst = max((late for _, late in self._late), default=0.0)
        return min(LAG_FACTOR * worst, MAX_LAG * self.timeout)

    def thinking_seconds(self, arrived: float, deliveries: int) -> float:
        """How long ago the follower asked, seen from a delivery: WeChat retries once per timeout."""
        return (deliveries - 1) * self.timeout + time.monotonic() - arrived
