"""Dialogue rules of the spec: who may speak when, how long a question may be, what is forgotten.

messages must be non-empty and odd in number, roles strictly user, assistant, user, …; every content a
non-empty string. The last content (the question) is at most 2000 characters. When all contents
together exceed 2000 characters, the oldest user/assistant pair is forgotten, one pair at a time,
so the dialogue still starts with `user` and alternates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.errors import ChatError, Failure, shown

MAX_CHARS = 2000
MAX_MESSAGES = 1000
ROLES = ("user", "assistant")
SYSTEM_ROLES = ("system", "developer")  # OpenAI's two names for the instructions before a dialogue


@dataclass(frozen=True)
class Turn:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def _invalid(detail: str) -> ChatError:
    return ChatError(Failure.INVALID_MESSAGES, detail)


def _parse_turn(i: int, item: Any, expected: str) -> Turn:
    if not isinstance(item, dict):
        raise _invalid(f"messages[{i}] must be an object, got {type(item).__name__}")
    role, content = item.get("role"), item.get("content")
    if role != expected:
        raise _invalid(f"messages[{i}].role must be {expected!r}, got {shown(role)}")
    if not isinstance(content, str):
        raise _invalid(f"messages[{i}].content must be a string, got {type(content).__name__}")
    if not content.strip():
        raise _invalid(f"messages[{i}].content must not be empty")
    return Turn(role, content)


def parse_dialogue(raw: Any, offset: int = 0) -> list[Turn]:
    """Validate the spec's `messages` and return them as Turns, or raise ChatError saying where.

    `offset` is the position of raw[0] in what the caller sent, so errors name the caller's index.
    """
    if raw is None:
        raise _invalid("messages is required")
    if not isinstance(raw, list):
        raise _invalid(f"messages must be a list, got {type(raw).__name__}")
    if not raw:
        raise _invalid("messages must not be empty")
    if len(raw) > MAX_MESSAGES:
        raise _invalid(f"messages has {len(raw)} items, at most {MAX_MESSAGES} are accepted")
    turns = [_parse_turn(i + offset, item, ROLES[i % 2]) for i, item in enumerate(raw)]
    if len(turns) % 2 == 0:
        raise _invalid(f"messages must have an odd number of items ending with 'user', got {len(turns)}")
    question = turns[-1].content
    if len(question) > MAX_CHARS:
        raise ChatError(
            Failure.QUESTION_TOO_LONG,
            f"the last message has {len(question)} characters, at most {MAX_CHARS} are allowed",
        )
    return turns


def parse_with_system(raw: Any) -> tuple[str | None, list[Turn]]:
    """OpenAI-style messages: one optional leading system (or developer) message, then the spec's.

    The system message is part of the 2000-character budget and is never forgotten: history is
    trimmed to what is left beside it, and it and the question together must fit.
    """
    if not (isinstance(raw, list) and raw and isinstance(raw[0], dict) and raw[0].get("role") in SYSTEM_ROLES):
        return None, parse_dialogue(raw)
    system = _parse_turn(0, raw[0], raw[0]["role"]).content
    if len(raw) == 1:
        raise _invalid("messages must have a 'user' message after the system message")
    turns = parse_dialogue(raw[1:], offset=1)
    total = len(system) + len(turns[-1].content)
    if total > MAX_CHARS:
        raise ChatError(
            Failure.QUESTION_TOO_LONG,
            f"the system message and the last message have {total} characters together, at most {MAX_CHARS}",
        )
    return system, turns


def trim_dialogue(turns: Sequence[Turn], budget: int = MAX_CHARS) -> list[Turn]:
    """Forget the oldest user/assistant pairs until all contents fit in `budget` characters."""
    total = sum(len(t.content) for t in turns)
    start = 0
    while total > budget and len(turns) - start > 1:
        total -= len(turns[start].content) + len(turns[start + 1].content)
        start += 2
    return list(turns[start:])
