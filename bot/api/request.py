"""What both JSON doors read the same way: the body, the `user` field, who pays, and how to stream."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Response, g, request

from bot.errors import ChatError, Failure, shown
from bot.extensions import services
from bot.store.quota import KeyPayer
from bot.store.vault import log_id

logger = logging.getLogger(__name__)

MAX_USER_CHARS = 256
_A_KEY = "\x00key"  # a path step naming an object's key rather than its value
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_json_object() -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type (the spec's curl example sends none)."""
    try:
        text = request.get_data(cache=False).decode("utf-8-sig")  # a leading BOM is tolerated
    except UnicodeDecodeError:
        raise ChatError(Failure.BAD_REQUEST, "body is not UTF-8") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        detail = f"invalid JSON at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else "invalid JSON"
        raise ChatError(Failure.BAD_REQUEST, detail) from None
    except RecursionError:  # `[[[[…` a hundred thousand deep: the parser's stack, not ours to give
        raise ChatError(Failure.BAD_REQUEST, "JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise ChatError(Failure.BAD_REQUEST, f"expected a JSON object, got {type(body).__name__}")
    # Strict UTF-8 carries no surrogate, so one can only come from a \uD8xx–\uDFxx escape: walk the
    # whole body only when the text has such an escape.
    where = _lone_surrogate(body) if _SURROGATE_ESCAPE.search(text) else None
    if where is not None:
        raise ChatError(Failure.BAD_REQUEST, f"{where} is not valid Unicode (a lone surrogate \\u escape)")
    return body


def _lone_surrogate(body: dict[str, Any]) -> str | None:
    """Where a string holds a lone surrogate (JSON's "\\ud800"): no UTF-8 can carry it onward."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return _path_text(path) or "body"
        elif isinstance(value, dict):
            stack.extend((k, (*path, _A_KEY)) for k in value)
            stack.extend((v, (*path, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
    return None


def _path_text(path: tuple[str | int, ...]) -> str:
    """messages[2].content, as the other errors name a place."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == _A_KEY:
            text += " (a key)"
        else:
            text += ("." if text else "") + (part if part.isascii() and part.isidentifier() else shown(part))
    return text


def read_stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise ChatError(Failure.BAD_REQUEST, f"stream must be true or false, got {shown(stream)}")
    return stream


def read_user(body: dict[str, Any]) -> str | None:
    """The optional end-user id: a string of at most 256 characters."""
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ChatError(Failure.BAD_REQUEST, f"user must be a string, got {type(user).__name__}")
    if user is not None and len(user) > MAX_USER_CHARS:
        raise ChatError(Failure.BAD_REQUEST, f"user has {len(user)} characters, at most {MAX_USER_CHARS}")
    return user or None


@dataclass(frozen=True)
class ApiKey:
    """A request's key, well-formed: itself (never logged) and the fingerprint it is found under."""

    key: str = field(repr=False)
    fingerprint: str


def api_key_of(key: Any) -> ApiKey:
    """A well-formed key, or ChatError (missing, or cannot be a key). No Redis: whether the key
    exists is the ledger's first question."""
    if key is None or key == "":
        raise ChatError(Failure.MISSING_KEY)
    if not isinstance(key, str):
        raise ChatError(Failure.INVALID_KEY, f"the key must be a string, got {type(key).__name__}")
    key = key.strip()
    fingerprint = services().keys.fingerprint(key)
    if fingerprint is None:
        raise ChatError(Failure.INVALID_KEY, "expected 'sk-' followed by 48 letters or digits")
    g.log_id = log_id(fingerprint)  # the request's log line names the key by this, never the key
    return ApiKey(key, fingerprint)


def key_payer(api_key: ApiKey, user: str | None) -> KeyPayer:
    """The key paying for this request. A request for a `user` costs one more Redis read: its block.
    During a BOT_SECRET rotation a key the ledger does not find is looked for under the previous one."""
    svc = services()
    blocked = bool(user) and svc.blocks.user_blocked(user)
    return svc.ledger.payer(api_key.fingerprint, user, blocked, lambda: svc.keys.adopt(api_key.key))


def event_stream(events: Iterator[bytes]) -> Response:
    """A text/event-stream response whose events reach the client as they are made."""
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and friends: do not hold events back
    return response
