"""OpenAI's chat-completions format: the request we accept, the bodies and chunks we answer, errors.

Only what the service can honour is accepted: `n` other than 1 is refused, `temperature` and
`top_p` are checked and passed through, `max_tokens` (or `max_completion_tokens`) caps the answer.
Fields the service has no use for (tools, logprobs, …) are ignored, as the spec's door does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify

from bot.api.request import read_stream_flag, read_user
from bot.chat.core import Completion, Options
from bot.chat.dialogue import Turn, parse_with_system
from bot.errors import ChatError, Failure, shown

# Failure → (HTTP status, OpenAI error type, OpenAI error code), as OpenAI's API answers them.
# Out of balance is OpenAI's 429 insufficient_quota, which its SDKs raise as RateLimitError.
_ERRORS: dict[Failure, tuple[int, str, str | None]] = {
    Failure.QUESTION_TOO_LONG: (400, "invalid_request_error", "context_length_exceeded"),
    Failure.MISSING_KEY: (401, "invalid_request_error", None),
    Failure.INVALID_KEY: (401, "invalid_request_error", "invalid_api_key"),
    Failure.QUOTA_EXHAUSTED: (429, "insufficient_quota", "insufficient_quota"),
    Failure.BLOCKED: (403, "permission_error", "blocked"),
    Failure.RATE_LIMITED: (429, "requests", "rate_limit_exceeded"),
    Failure.UPSTREAM_FAILED: (502, "server_error", "upstream_error"),
    Failure.UPSTREAM_TIMEOUT: (504, "server_error", "timeout"),
}


def error_body(failure: Failure, message: str) -> tuple[dict[str, Any], int]:
    """OpenAI's `{"error": {message, type, param, code}}` and its HTTP status for a Failure."""
    status, kind, code = _ERRORS.get(failure) or (failure.http_status, _kind(failure.http_status), None)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}, status


def _kind(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def error_response(failure: Failure, message: str, retry_after: int | None = None) -> Response:
    body, status = error_body(failure, message)
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if failure is Failure.QUOTA_EXHAUSTED:
        response.headers["x-should-retry"] = "false"  # a 429 the SDKs must not retry: it will not pass
    return response


MAX_MODEL_CHARS = 256


@dataclass(frozen=True)
class ChatRequest:
    model: str
    turns: list[Turn]  # the system message, if any, travels in options
    options: Options
    stream: bool
    include_usage: bool
    user: str | None


def parse_request(body: dict[str, Any], default_model: str) -> ChatRequest:
    """An OpenAI chat-completions body, validated, or ChatError naming the field and what it got."""
    model = _model(body.get("model"), default_model)
    n = body.get("n")
    if n not in (None, 1) or isinstance(n, bool):
        raise ChatError(Failure.BAD_REQUEST, f"n must be 1 (one answer per request), got {shown(n)}")
    system, turns = parse_with_system(_flatten(body.get("messages")))
    stream = read_stream_flag(body)
    options = Options(
        max_tokens=_max_tokens(body),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        system=system,
    )
    return ChatRequest(model, turns, options, stream, _include_usage(body, stream), read_user(body))


def _model(model: Any, default_model: str) -> str:
    """The model named, echoed in the answer and in every chunk of a stream: a string (absent or
    empty: the configured one) of at most 256 characters, or a 250 KB name would make a 63 MB stream."""
    if model is None or model == "":
        return default_model
    if not isinstance(model, str):
        raise ChatError(Failure.BAD_REQUEST, f"model must be a string, got {type(model).__name__}")
    if len(model) > MAX_MODEL_CHARS:
        raise ChatError(Failure.BAD_REQUEST, f"model has {len(model)} characters, at most {MAX_MODEL_CHARS}")
    return model


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ChatError(Failure.BAD_REQUEST, f"{name} must be a number, got {shown(value)}")
    if not low <= value <= high:
        raise ChatError(Failure.BAD_REQUEST, f"{name} must be between {low:g} and {high:g}, got {shown(value)}")
    return float(value)


def _max_tokens(body: dict[str, Any]) -> int | None:
    name = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChatError(Failure.BAD_REQUEST, f"{name} must be a positive integer, got {shown(value)}")
    return value


def _include_usage(body: dict[str, Any], stream: bool) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise ChatError(Failure.BAD_REQUEST, "stream_options is only allowed with stream: true")
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        detail = f"stream_options must be like {{'include_usage': true}}, got {shown(options)}"
        raise ChatError(Failure.BAD_REQUEST, detail)
    return options.get("include_usage", False)


def _flatten(messages: Any) -> Any:
    """OpenAI lets content be a list of parts; text parts are joined, anything else is refused."""
    if not isinstance(messages, list):
        return messages
    return [
        _flatten_one(i, m) if isinstance(m, dict) and isinstance(m.get("content"), list) else m
        for i, m in enumerate(messages)
    ]


def _flatten_one(i: int, message: dict[str, Any]) -> dict[str, Any]:
    texts = []
    for j, part in enumerate(message["content"]):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            detail = f"messages[{i}].content[{j}] must be a text part, got {shown(kind)}"
            raise ChatError(Failure.INVALID_MESSAGES, detail)
        texts.append(part["text"])
    return {**message, "content": "".join(texts)}


def chat_id(answer_id: str) -> str:
    return "chatcmpl-" + answer_id.removeprefix("as-")


def completion_body(completion: Completion, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": completion.content, "refusal": None}
    return {
        "id": chat_id(completion.id),
        "object": "chat.completion",
        "created": completion.created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": completion.finish_reason}],
        "usage": completion.usage.as_dict(),
        "system_fingerprint": None,
    }


def chunk(head: dict[str, Any], delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    """One `chat.completion.chunk`; `head` has id, object, created, model (and usage: null)."""
    return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
