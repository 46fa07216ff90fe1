"""`POST /api/v1/chat/completions`, exactly as shared/spec/chat-api.md describes it."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Response, jsonify, request

from bot.api import bp
from bot.chat.core import Completion
from bot.chat.dialogue import parse_dialogue
from bot.errors import ChatError, Failure
from bot.extensions import services
from bot.store.vault import log_id

logger = logging.getLogger(__name__)

MAX_USER_CHARS = 256


def read_json_object() -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type (the spec's curl example sends none)."""
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise ChatError(Failure.BAD_REQUEST, "body is not UTF-8") from None
    except ValueError as exc:
        detail = f"invalid JSON at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else "invalid JSON"
        raise ChatError(Failure.BAD_REQUEST, detail) from None
    if not isinstance(body, dict):
        raise ChatError(Failure.BAD_REQUEST, f"expected a JSON object, got {type(body).__name__}")
    return body


def _check_options(body: dict[str, Any]) -> None:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ChatError(Failure.BAD_REQUEST, f"stream must be true or false, got {stream!r}")
    if stream:
        raise ChatError(Failure.STREAM_UNSUPPORTED)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ChatError(Failure.BAD_REQUEST, f"user must be a string, got {type(user).__name__}")
    if user is not None and len(user) > MAX_USER_CHARS:
        raise ChatError(Failure.BAD_REQUEST, f"user has {len(user)} characters, at most {MAX_USER_CHARS}")


def _fingerprint(body: dict[str, Any]) -> str:
    key = body.get("api_secret_key")
    if key is None or key == "":
        raise ChatError(Failure.MISSING_KEY)
    if not isinstance(key, str):
        raise ChatError(Failure.INVALID_KEY, f"api_secret_key must be a string, got {type(key).__name__}")
    fingerprint = services().keys.fingerprint(key.strip())
    if fingerprint is None:
        raise ChatError(Failure.INVALID_KEY, "expected 'sk-' followed by 48 letters or digits")
    return fingerprint


def completion_body(completion: Completion) -> dict[str, Any]:
    return {
        "code": 0,
        "msg": "",
        "id": completion.id,
        "created": completion.created,
        "choices": [
            {
                "message": {"role": "assistant", "content": completion.content},
                "finish_reason": completion.finish_reason,
                "index": 0,
            }
        ],
        "usage": completion.usage.as_dict(),
    }


@bp.post("/api/v1/chat/completions")
def chat_completions() -> Response:
    started = time.monotonic()
    body = read_json_object()
    _check_options(body)
    fingerprint = _fingerprint(body)
    turns = parse_dialogue(body.get("messages"))
    svc = services()
    try:
        completion = svc.chat.complete(turns, svc.ledger.payer(fingerprint))
    except ChatError as error:
        logger.info("api chat %s failed: %s (%s)", log_id(fingerprint), error.failure.name, error.message)
        raise
    logger.info(
        "api chat %s ok id=%s tokens=%d ms=%d",
        log_id(fingerprint),
        completion.id,
        completion.usage.total_tokens,
        (time.monotonic() - started) * 1000,
    )
    return jsonify(completion_body(completion))
