"""Zero-timeout polls straight to the kernel under gevent.

redis-py checks every pooled connection with `select.poll().poll(0)` before each command, and
urllib3 checks every reused HTTP connection the same way. gevent's patched `poll` answers even a
zero-timeout poll by starting watchers and going once around its hub (tens of microseconds, and
other greenlets run meanwhile); the kernel's own poll answers it at once and, with no timeout,
never blocks the worker. Polls that may wait still go through gevent.
"""

from __future__ import annotations

import select

from gevent import monkey


class _Poll:
    """`select.poll` for gevent workers: the kernel's poll for `poll(0)`, gevent's for a poll that
    may wait (built only then, from the same registrations)."""

    def __init__(self, green, kernel):
        self._green, self._kernel = green, kernel()
        self._registered: dict[int, int] = {}

    def register(self, fd, eventmask: int = select.POLLIN | select.POLLPRI | select.POLLOUT) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._kernel.register(fd, eventmask)
        self._registered[fd] = eventmask

    def modify(self, fd, eventmask: int) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._kernel.modify(fd, eventmask)
        self._registered[fd] = eventmask

    def unregister(self, fd) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._kernel.unregister(fd)
        del self._registered[fd]

    def poll(self, timeout=None):
        if timeout == 0:
            return self._kernel.poll(0)
        green = self._green()
        for fd, eventmask in self._registered.items():
            green.register(fd, eventmask)
        return green.poll(timeout)


def install() -> bool:
    """Use _Poll as `select.poll` if gevent has patched it; answers whether it did."""
    if not monkey.is_module_patched("select") or getattr(select.poll, "zero_timeout_to_kernel", False):
        return False
    green, kernel = select.poll, monkey.get_original("select", "poll")

    def poll() -> _Poll:
        return _Poll(green, kernel)

    poll.zero_timeout_to_kernel = True  # type: ignore[attr-defined]
    select.poll = poll
    return True
