"""A sign-in link's token stays out of every log: the request line and gunicorn's access log name
`/login/…` instead of the path that holds it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import g, request

LINK_PREFIX = "/login/"
SHOWN = "/login/…"
_OWN_PATHS = ("/login/wechat", "/login/wechat/back")


def holds_token(path: str) -> bool:
    return path.startswith(LINK_PREFIX) and path not in _OWN_PATHS


def note_path() -> None:
    """Before a request: the path its log line shows (bot/observe.py reads g.log_path)."""
    if holds_token(request.path):
        g.log_path = SHOWN


class RedactLinks:
    """WSGI middleware: once the app has answered, the environ gunicorn's access log reads (%(U)s,
    %(r)s) no longer holds the token. The app has routed the request by then."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = self.app(environ, start_response)
        if holds_token(environ.get("PATH_INFO", "")):
            environ["PATH_INFO"] = SHOWN
            environ["RAW_URI"] = SHOWN
            environ["QUERY_STRING"] = ""
        return answer
