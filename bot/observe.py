"""Every request's id, its one log line and its count on /metrics, from two hooks on the app.

The id is the caller's `X-Request-Id` when it is sane (a proxy's, say), else a new one; it is echoed
back in the response and carried by every log line written while the request runs (a LogRecord
factory reads it from a context variable, so the chat core's lines have it without knowing Flask).
The request line names the key by its fingerprint prefix or the follower by openid, never a key,
a token or message text; `BOT_LOG_CONTENT=1` adds the question, cut short, for debugging.

Whatever a caller sent is escaped before it reaches a line (`loggable`): a path such as
`/x%0a2026-… INFO bot.request [forged]` must not write a second, forged line. The request line escapes
its fields; the LogRecord factory escapes any other string argument with a control or other
non-printable character in it, whichever module logs it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from flask import Flask, Response, g, request

from bot import metrics
from bot.chat.routing import forget_route, route_note

logger = logging.getLogger("bot.request")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CONTENT_LOG_CHARS = 200
_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def loggable(text: str) -> str:
    """`text` safe for one log line: itself when every character is printable and none is a backslash
    (one C scan each: the usual case), else with those characters escaped as repr() would write them
    (\\n, \\x1b, \\u2028, \\\\), so a caller's value can neither end the line nor pass for an escape."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(c: str) -> str:
    if c.isprintable() and c != "\\":
        return c
    if c in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _escape_args(args: Any) -> Any:
    """A record's %-arguments, any string holding a non-printable character escaped. A printable one is
    left alone: it cannot break the line, and repr() output (content=…) must not be escaped twice.
    A mapping (gunicorn's access-log atoms, %(U)s the decoded path) is escaped in place: it is the
    record's own, and its class may do more than a dict (gunicorn's answers "-" for a missing atom)."""
    if type(args) is tuple:
        if any(type(a) is str and not a.isprintable() for a in args):
            return tuple(loggable(a) if type(a) is str else a for a in args)
    elif isinstance(args, dict):
        for name, value in args.items():
            if type(value) is str and not value.isprintable():
                args[name] = loggable(value)
    return args


def install_log_context() -> None:
    """Give every LogRecord a `request_id` attribute ("-" outside a request) and escaped string
    arguments (a request's path logged by any module stays on its one line); idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        if record.args:
            record.args = _escape_args(record.args)
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def current_request_id() -> str:
    """The id of the request being served ("-" outside one), for answers made outside Flask's hooks."""
    return _request_id.get()


def note_content(text: str) -> None:
    """The question of this request, logged on its line only when BOT_LOG_CONTENT is on."""
    g.log_content = text


def note_answer(answer_id: str, tokens: int) -> None:
    """The answer this request returned, named on its log line (one line per request, not two)."""
    g.answer = f" id={answer_id} tokens={tokens}"


def _begin() -> None:
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.monotonic()
    g.door = metrics.door_of(request.path)
    _request_id.set(g.request_id)
    forget_route()
    metrics.enter_door(g.door)  # never reset: a stream's tokens are charged after this request's hooks


def _finish(response: Response, log_content: bool) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "-")
    status, door = response.status_code, g.get("door", "other")
    failure = g.get("failure")
    outcome = failure.name.lower() if failure is not None else ("ok" if status < 400 else f"http_{status}")
    metrics.count_request(door, status, outcome)
    who = g.get("log_id") or (f"openid={g.openid}" if g.get("openid") else "-")
    extra = g.get("answer", "")
    if log_content and g.get("log_content"):
        extra = f" content={g.log_content[:CONTENT_LOG_CHARS]!r}"  # repr: quoted, every control escaped
    extra += route_note()  # which upstream answered and which failed (with several configured)
    ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    path = g.get("log_path") or request.path  # a sign-in link's token is never logged (bot/web/redact.py)
    log_request(door, request.method, path, status, ms, who, outcome, extra)
    return response


def log_request(
    door: str, method: str, path: str, status: int, ms: float, who: str, outcome: str, extra: str = ""
) -> None:
    """A request's one line. The method and the %-decoded path are the caller's: escaped.
    No query string: /wechat's is signature noise, and nothing on the JSON doors belongs there."""
    line = "door=%s %s %s status=%d ms=%d who=%s outcome=%s%s"
    logger.info(line, door, loggable(method), loggable(path), status, ms, who, outcome, extra)


def register(app: Flask, log_content: bool) -> None:
    """The request hooks; create_app has installed the log context before configuring logging."""
    app.before_request(_begin)
    app.after_request(lambda response: _finish(response, log_content))
