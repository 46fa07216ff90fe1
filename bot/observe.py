"""Every request's id, its one log line and its count on /metrics, from two hooks on the app.

The id is the caller's `X-Request-Id` when it is sane (a proxy's, say), else a new one; it is echoed
back in the response and carried by every log line written while the request runs (a LogRecord
factory reads it from a context variable, so the chat core's lines have it without knowing Flask).
The request line names the key by its fingerprint prefix or the follower by openid, never a key,
a token or message text; `BOT_LOG_CONTENT=1` adds the question, cut short, for debugging.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from flask import Flask, Response, g, request

from bot import metrics

logger = logging.getLogger("bot.request")

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CONTENT_LOG_CHARS = 200
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def install_log_context() -> None:
    """Give every LogRecord a `request_id` attribute ("-" outside a request); idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id.get()
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
        extra = f" content={g.log_content[:CONTENT_LOG_CHARS]!r}"
    ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    # No query string: /wechat's is signature noise, and nothing on the JSON doors belongs there.
    logger.info(
        "door=%s %s %s status=%d ms=%d who=%s outcome=%s%s",
        door,
        request.method,
        request.path,
        status,
        ms,
        who,
        outcome,
        extra,
    )
    return response


def register(app: Flask, log_content: bool) -> None:
    """The request hooks; create_app has installed the log context before configuring logging."""
    app.before_request(_begin)
    app.after_request(lambda response: _finish(response, log_content))
