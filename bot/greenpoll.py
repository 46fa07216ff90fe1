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
    """`select.poll` for gevent workers: gevent's, except that `poll(0)` asks the kernel directly."""

    def __init__(self, green, kernel):
        self._green, self._kernel = green(), kernel
        self._registered: dict[int, int] = {}

    def register(self, fd, eventmask: int = select.POLLIN | select.POLLPRI | select.POLLOUT) -> None:
        self._green.register(fd, eventmask)
        self._registered[fd if isinstance(fd, int) else fd.fileno()] = eventmask

    def modify(self, fd, eventmask: int) -> None:
        self.register(fd, eventmask)

    def unregister(self, fd) -> None:
        self._green.unregister(fd)
        del self._registered[fd if isinstance(fd, int) else fd.fileno()]

    def poll(self, timeout=None):
        if timeout != 0:
            return self._green.poll(timeout)
        kernel = self._kernel()
        for fd, eventmask in self._registered.items():
            kernel.register(fd, eventmask)
        return kernel.poll(0)


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
