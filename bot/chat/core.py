"""One chat turn, the same for every door: trim, reserve quota, ask the model, count, settle."""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.chat.dialogue import Turn, trim_dialogue
from bot.chat.providers import Provider
from bot.chat.usage import Usage, estimate_tokens

logger = logging.getLogger(__name__)

# The least answer a request must be able to pay for, beyond its prompt, to be sent upstream.
MIN_ANSWER_TOKENS = 16
_ID_ALPHABET = string.ascii_lowercase + string.digits


class Payer(Protocol):
    """Whoever pays for a turn: an API key's balance, or a follower's daily allowance."""

    def reserve(self, wanted: int, minimum: int) -> int: ...

    def settle(self, reserved: int, actual: int) -> int: ...


@dataclass(frozen=True)
class Completion:
    id: str
    created: int
    content: str
    finish_reason: str
    usage: Usage
    dialogue: tuple[Turn, ...]  # what was sent upstream, after trimming


def new_completion_id() -> str:
    return "as-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


class ChatService:
    def __init__(self, provider: Provider, system_prompt: str, answer_tokens: int):
        self.provider = provider
        self.system_prompt = system_prompt
        self.answer_tokens = answer_tokens

    def complete(self, turns: Sequence[Turn], payer: Payer) -> Completion:
        """Answer the last user turn of a validated dialogue, charging `payer` what it used."""
        dialogue = trim_dialogue(turns)
        prompt_tokens = estimate_tokens(t.content for t in dialogue)
        reserved = payer.reserve(prompt_tokens + self.answer_tokens, prompt_tokens + MIN_ANSWER_TOKENS)
        try:
            reply = self.provider.complete(self.upstream_messages(dialogue), reserved - prompt_tokens)
        except BaseException:  # includes a greenlet killed mid-call: the caller pays nothing
            payer.settle(reserved, 0)
            raise
        usage = Usage(prompt_tokens, estimate_tokens(reply.content))
        payer.settle(reserved, usage.total_tokens)
        return Completion(
            new_completion_id(), int(time.time()), reply.content, reply.finish_reason, usage, tuple(dialogue)
        )

    def upstream_messages(self, dialogue: Sequence[Turn]) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [t.as_dict() for t in dialogue]
