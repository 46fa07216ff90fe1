"""How long a request's body may take to arrive: BOT_BODY_TIMEOUT seconds, then 408 and the connection closed.

gunicorn's gevent worker reads a body only when the app asks for it, from a socket with no timeout:
a client that sends `Content-Length: 100000` and then a byte every few seconds holds one of the
worker's WORKER_CONNECTIONS for as long as it likes. BodyDeadline gives the whole body a deadline
counted from the moment the request reaches the app: each read of wsgi.input runs under a hub
timer of what is left of it, which raises BodyTimeout in the reading greenlet (as gevent.Timeout
would). Not the socket's timeout: that bounds each recv(), and gunicorn reads a body in a loop of
them, so a byte every second would never trip it. The request line and headers are bounded by
gunicorn (`keepalive`, see config/worker.py), and how many connections one address may hold by
config/worker.py.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gevent import get_hub, getcurrent

from bot import metrics
from bot.observe import current_request_id, log_request

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyTimeout(BaseException):
    """The body was not in by its deadline. A BaseException, as gevent.Timeout is, so that no
    `except Exception` between the socket and BodyDeadline (werkzeug's stream turns an OSError into
    a 400, a door's parser into its own error) can answer it as something else."""


class _DeadlineInput:
    """wsgi.input whose reads end by `deadline` (time.monotonic()), raising BodyTimeout if not done."""

    def __init__(self, stream: Any, deadline: float):
        self.stream, self.deadline = stream, deadline

    def _by_deadline(self, read: Callable[..., Any], *args: Any) -> Any:
        # What gevent.Timeout does, on the hub's timer directly: a tenth of its cost, on every read.
        # Past the deadline a read still takes what has already arrived (it does not wait): 1 ms.
        timer = get_hub().loop.timer(max(self.deadline - time.monotonic(), 0.001))
        timer.start(getcurrent().throw, BodyTimeout)
        try:
            return read(*args)
        finally:
            timer.close()

    def read(self, size: int | None = -1) -> bytes:
        return self._by_deadline(self.stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._by_deadline(self.stream.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._by_deadline(self.stream.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class BodyDeadline:
    """WSGI middleware: a request with a body under gunicorn gets `seconds` to deliver all of it."""

    def __init__(self, app: WSGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        # HTTP/2 bodies come in frames the connection reads, not from this request's own socket. Told by
        # the protocol gunicorn parsed: HTTP_VERSION, which its HTTP/2 worker sets, is also what an
        # HTTP/1.1 client's own `Version: 2` header becomes, and would skip the deadline.
        if sock is None or not _has_body(environ) or environ.get("SERVER_PROTOCOL", "").startswith("HTTP/2"):
            return self.app(environ, start_response)
        started = time.monotonic()
        environ["wsgi.input"] = _DeadlineInput(environ["wsgi.input"], started + self.seconds)
        try:
            return self.app(environ, start_response)
        except BodyTimeout:
            return self._too_slow(environ, start_response, sock, started)

    def _too_slow(
        self, environ: dict[str, Any], start_response: Callable[..., Any], sock: Any, started: float
    ) -> list[bytes]:
        """408, logged and counted like any answer; the read side is shut so that the server, done
        with this response, finds the connection at its end instead of draining the rest of the body."""
        with contextlib.suppress(OSError):  # the client may be gone already
            sock.shutdown(socket.SHUT_RD)
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")  # as Flask decodes it
        door, ms = metrics.door_of(path), (time.monotonic() - started) * 1000
        metrics.count_request(door, 408, "body_timeout")
        log_request(door, environ.get("REQUEST_METHOD", "-"), path, 408, ms, "-", "body_timeout")
        body = f"request body not received within {self.seconds:g} s\n".encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        headers.append(("X-Request-Id", current_request_id()))
        start_response("408 Request Timeout", headers)
        return [body]


def _has_body(environ: dict[str, Any]) -> bool:
    return environ.get("CONTENT_LENGTH", "") not in ("", "0") or "HTTP_TRANSFER_ENCODING" in environ
