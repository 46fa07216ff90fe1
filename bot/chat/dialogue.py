"""Dialogue rules of the spec: who may speak when, how long a question may be, what is forgotten.

The JSON doors' models (bot/api/bodies.py) check each message's type; these are the rules across
messages that a schema cannot state.

messages must be non-empty and odd in number, roles strictly user, assistant, user, …; every content a
non-empty string. The last content (the question) is at most 2000 characters. When all contents
together exceed 2000 characters, the oldest user/assistant pair is forgotten, one pair at a time,
so the dialogue still starts with `user` and alternates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def invalid_messages(detail: str) -> ChatError:
    return ChatError(Failure.INVALID_MESSAGES, detail)


def wrong_role(i: int, expected: str, got: object) -> ChatError:
    """The refusal of a role out of turn, whether a schema or the alternation found it."""
    return invalid_messages(f"messages[{i}].role must be {expected!r}, got {shown(got)}")


def empty_content(i: int) -> ChatError:
    return invalid_messages(f"messages[{i}].content must not be empty")


def too_many(count: int, system_first: bool = False) -> ChatError:
    """More messages than a dialogue may have (OpenAI's door takes a system message besides)."""
    besides = f" ({MAX_MESSAGES + 1} with a system message first)" if system_first else ""
    return invalid_messages(f"messages has {count} items, at most {MAX_MESSAGES} are accepted{besides}")


def check_dialogue(turns: Sequence[Turn], offset: int = 0) -> list[Turn]:
    """The spec's rules on well-typed turns, or ChatError saying where: roles alternate from 'user',
    no content is blank, the number is odd, the question is at most MAX_CHARS characters.

    `offset` is the position of turns[0] in what the caller sent, so errors name the caller's index.
    """
    if not turns:
        raise invalid_messages("messages must not be empty")
    if len(turns) > MAX_MESSAGES:
        raise too_many(len(turns))
    for i, turn in enumerate(turns):
        if turn.role != ROLES[i % 2]:
            raise wrong_role(i + offset, ROLES[i % 2], turn.role)
        if not turn.content.strip():
            raise empty_content(i + offset)
    if len(turns) % 2 == 0:
        raise invalid_messages(f"messages must have an odd number of items ending with 'user', got {len(turns)}")
    question = turns[-1].content
    if len(question) > MAX_CHARS:
        raise ChatError(
            Failure.QUESTION_TOO_LONG,
            f"the last message has {len(question)} characters, at most {MAX_CHARS} are allowed",
        )
    return list(turns)


def check_with_system(turns: Sequence[Turn]) -> tuple[str | None, list[Turn]]:
    """OpenAI-style turns: one optional leading system (or developer) message, then the spec's.

    The system message is part of the 2000-character budget and is never forgotten: history is
    trimmed to what is left beside it, and it and the question together must fit.
    """
    if not turns or turns[0].role not in SYSTEM_ROLES:
        return None, check_dialogue(turns)
    system = turns[0].content
    if not system.strip():
        raise empty_content(0)
    if len(turns) == 1:
        raise invalid_messages("messages must have a 'user' message after the system message")
    dialogue = check_dialogue(turns[1:], offset=1)
    total = len(system) + len(dialogue[-1].content)
    if total > MAX_CHARS:
        raise ChatError(
            Failure.QUESTION_TOO_LONG,
            f"the system message and the last message have {total} characters together, at most {MAX_CHARS}",
        )
    return system, dialogue


def trim_dialogue(turns: Sequence[Turn], budget: int = MAX_CHARS) -> list[Turn]:
    """Forget the oldest user/assistant pairs until all contents fit in `budget` characters."""
    total = sum(len(t.content) for t in turns)
    start = 0
    while total > budget and len(turns) - start > 1:
        total -= len(turns[start].content) + len(turns[start + 1].content)
        start += 2
    return list(turns[start:])
