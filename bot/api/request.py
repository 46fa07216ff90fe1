"""How both JSON doors read a body: a JSON object, whatever the Content-Type, or a clear 400.

What the object must hold is its door's model (bot/api/bodies.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from bot.errors import ChatError, Failure, shown

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
