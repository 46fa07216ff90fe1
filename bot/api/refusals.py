"""A body that fails its model is refused with its first error, in the service's codes and words.

pydantic's own messages never reach a caller: each field has a sentence here saying what was
expected and what came, quoting the caller's value (cut short), as the service's other errors do.
Which error comes first is the model's field order (bot/api/bodies.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.api.bodies import MALFORMED_KEY, MAX_MODEL_CHARS, MAX_USER_CHARS, TEMPERATURE, TOP_P, OpenAIChatRequest
from bot.chat.dialogue import ROLES, SYSTEM_ROLES, empty_content, invalid_messages, too_many, wrong_role
from bot.errors import ChatError, Failure, shown

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], body: dict[str, Any]) -> M:
    """`body` as a `model`, or ChatError for its first error."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise refusal(first, body, model) from None


def refusal(error: ErrorDetails, body: dict[str, Any], model: type[BaseModel]) -> ChatError:
    field = str(error["loc"][0])
    if field == "messages":
        return _messages_refusal(error, body.get("messages"), issubclass(model, OpenAIChatRequest))
    return _REFUSALS[field](field, body.get(field))


def _bad(detail: str) -> ChatError:
    return ChatError(Failure.BAD_REQUEST, detail)


def _flag(name: str, value: Any) -> ChatError:
    return _bad(f"{name} must be true or false, got {shown(value)}")


def _text(limit: int) -> Callable[[str, Any], ChatError]:
    def refuse(name: str, value: Any) -> ChatError:
        if not isinstance(value, str):
            return _bad(f"{name} must be a string, got {type(value).__name__}")
        return _bad(f"{name} has {len(value)} characters, at most {limit}")

    return refuse


def _number(low: float, high: float) -> Callable[[str, Any], ChatError]:
    def refuse(name: str, value: Any) -> ChatError:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return _bad(f"{name} must be a number, got {shown(value)}")
        return _bad(f"{name} must be between {low:g} and {high:g}, got {shown(value)}")

    return refuse


def _count(name: str, value: Any) -> ChatError:
    return _bad(f"{name} must be a positive integer, got {shown(value)}")


def _one(name: str, value: Any) -> ChatError:
    return _bad(f"{name} must be 1 (one answer per request), got {shown(value)}")


def _stream_options(name: str, value: Any) -> ChatError:
    return _bad(f"{name} must be like {{'include_usage': true}}, got {shown(value)}")


def _key(name: str, value: Any) -> ChatError:
    if value is None or value == "":
        return ChatError(Failure.MISSING_KEY)
    if not isinstance(value, str):
        return ChatError(Failure.INVALID_KEY, f"the key must be a string, got {type(value).__name__}")
    return ChatError(Failure.INVALID_KEY, MALFORMED_KEY)


_REFUSALS: dict[str, Callable[[str, Any], ChatError]] = {
    "stream": _flag,
    "user": _text(MAX_USER_CHARS),
    "model": _text(MAX_MODEL_CHARS),
    "api_secret_key": _key,
    "n": _one,
    "temperature": _number(*TEMPERATURE),
    "top_p": _number(*TOP_P),
    "max_tokens": _count,
    "max_completion_tokens": _count,
    "stream_options": _stream_options,
}


def _messages_refusal(error: ErrorDetails, raw: Any, openai: bool) -> ChatError:
    """Name the item and say what it should be, as the dialogue rules do."""
    where = error["loc"][1:]
    if not where:
        if raw is None:
            return invalid_messages("messages is required")
        if not isinstance(raw, list):
            return invalid_messages(f"messages must be a list, got {type(raw).__name__}")
        if not raw:
            return invalid_messages("messages must not be empty")
        return too_many(len(raw), system_first=openai)
    i, item = int(where[0]), raw[int(where[0])]
    if len(where) == 1:
        return invalid_messages(f"messages[{i}] must be an object, got {type(item).__name__}")
    if where[1] == "role":
        return wrong_role(i, _expected_role(raw, i, openai), item.get("role"))
    return _content_refusal(i, item.get("content"), openai)


def _expected_role(raw: list[Any], i: int, openai: bool) -> str:
    """The role position i must have: OpenAI's door counts from after a leading system message."""
    first = raw[0]
    offset = int(openai and isinstance(first, dict) and first.get("role") in SYSTEM_ROLES)
    return ROLES[(i - offset) % 2]


def _content_refusal(i: int, content: Any, openai: bool) -> ChatError:
    if isinstance(content, str) or (openai and content == []):
        return empty_content(i)
    if not (openai and isinstance(content, list)):
        return invalid_messages(f"messages[{i}].content must be a string, got {type(content).__name__}")
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            return invalid_messages(f"messages[{i}].content[{j}] must be a text part, got {shown(kind)}")
    return invalid_messages(f"messages[{i}].content must be a string or a list of text parts")
