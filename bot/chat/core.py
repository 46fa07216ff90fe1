"""One chat turn, the same for every door: trim, reserve quota, ask the model, count, settle."""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot import metrics
from bot.chat.dialogue import MAX_CHARS, Turn, trim_dialogue
from bot.chat.providers import Pieces, Provider
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
class Options:
    """What a caller may set per request (the OpenAI door); None keeps the service's default."""

    max_tokens: int | None = None  # caps the answer, and so the reservation
    temperature: float | None = None
    top_p: float | None = None
    system: str | None = None  # the caller's system message, in place of BOT_SYSTEM_PROMPT
    route: str | None = None  # the upstreams serving the public model the caller named (bot/chat/routing.py)

    def sampling(self) -> dict[str, float]:
        values = {"temperature": self.temperature, "top_p": self.top_p}
        return {name: value for name, value in values.items() if value is not None}


DEFAULTS = Options()


@dataclass(frozen=True)
class Completion:
    id: str
    created: int
    content: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class Prepared:
    """A turn ready to go upstream: trimmed, priced, its tokens reserved."""

    messages: list[dict[str, str]]
    prompt_tokens: int
    reserved: int

    @property
    def answer_tokens(self) -> int:
        return self.reserved - self.prompt_tokens


def charge(payer: Payer, reserved: int, actual: int) -> int:
    """Settle a reservation at the actual usage, and count what was charged on /metrics."""
    charged = payer.settle(reserved, actual)
    metrics.count_tokens(charged, getattr(payer, "kind", "other"))
    return charged


def new_completion_id() -> str:
    """`as-` and 10 random letters or digits, from one draw of the system's random source."""
    n, letters = secrets.randbelow(len(_ID_ALPHABET) ** 10), []
    for _ in range(10):
        n, i = divmod(n, len(_ID_ALPHABET))
        letters.append(_ID_ALPHABET[i])
    return "as-" + "".join(letters)


class ChatService:
    def __init__(self, provider: Provider, system_prompt: str, answer_tokens: int):
        self.provider = provider
        self.system_prompt = system_prompt
        self.answer_tokens = answer_tokens

    def complete(self, turns: Sequence[Turn], payer: Payer, options: Options = DEFAULTS) -> Completion:
        """Answer the last user turn of a validated dialogue, charging `payer` what it used."""
        ready = self.prepare(turns, payer, options)
        try:
            with metrics.timed_upstream():
                reply = self.provider.complete(ready.messages, ready.answer_tokens, options.sampling(), options.route)
        except BaseException:  # includes a greenlet killed mid-call: the caller pays nothing
            payer.settle(ready.reserved, 0)
            raise
        usage = Usage(ready.prompt_tokens, estimate_tokens(reply.content))
        charge(payer, ready.reserved, usage.total_tokens)
        return Completion(new_completion_id(), int(time.time()), reply.content, reply.finish_reason, usage)

    def stream(self, turns: Sequence[Turn], payer: Payer, options: Options = DEFAULTS) -> AnswerStream:
        """Like complete(), but the answer arrives in pieces; the first is in hand before this returns.

        Every failure up to the first piece raises ChatError here, costing nothing, so a door can
        still answer it with a plain error response before sending a byte of the stream.
        """
        ready = self.prepare(turns, payer, options)
        try:
            with metrics.timed_upstream():
                pieces = self.provider.stream(ready.messages, ready.answer_tokens, options.sampling(), options.route)
                first = next(pieces)
        except BaseException:
            payer.settle(ready.reserved, 0)
            raise
        return AnswerStream(new_completion_id(), int(time.time()), ready, payer, pieces, first)

    def prepare(self, turns: Sequence[Turn], payer: Payer, options: Options = DEFAULTS) -> Prepared:
        """Trim the dialogue (a caller's system message shares the budget), price it, reserve."""
        system = options.system
        dialogue = tuple(trim_dialogue(turns, MAX_CHARS - len(system or "")))
        prompt_tokens = estimate_tokens([system or "", *(t.content for t in dialogue)])
        answer = min(self.answer_tokens, options.max_tokens or self.answer_tokens)
        reserved = payer.reserve(prompt_tokens + answer, prompt_tokens + min(answer, MIN_ANSWER_TOKENS))
        messages = self.upstream_messages(dialogue, self.system_prompt if system is None else system)
        return Prepared(messages, prompt_tokens, reserved)

    def upstream_messages(self, dialogue: Sequence[Turn], system: str) -> list[dict[str, str]]:
        return ([{"role": "system", "content": system}] if system else []) + [t.as_dict() for t in dialogue]


class AnswerStream:
    """A streaming answer, billed for what the model produced, whether or not the caller stayed.

    Iterate for text pieces. close() (at the end, on an error, or when the caller hangs up) stops
    the upstream and settles once: prompt plus the produced text, so a refund if nothing came.
    """

    def __init__(self, id: str, created: int, ready: Prepared, payer: Payer, pieces: Pieces, first: str):
        self.id, self.created = id, created
        self.usage = Usage(ready.prompt_tokens, 0)
        self._ready, self._payer, self._pieces = ready, payer, pieces
        self._produced = [first]
        self._next: str | None = first
        self._settled = False
        self.content_filtered = False  # set when content safety withheld the rest (bot/safety/guard.py)

    @property
    def finish_reason(self) -> str:
        return "content_filter" if self.content_filtered else self._pieces.finish_reason

    def __iter__(self) -> Iterator[str]:
        while self._next is not None:
            piece, self._next = self._next, None
            yield piece
            self._next = next(self._pieces, None)
            if self._next is not None:
                self._produced.append(self._next)

    def close(self) -> None:
        """Hang up on the model if it is still writing, and charge what it produced (once)."""
        if self._settled:
            return
        self._settled = True
        self._pieces.close()
        self.usage = Usage(self._ready.prompt_tokens, estimate_tokens("".join(self._produced)))
        charge(self._payer, self._ready.reserved, self.usage.total_tokens)
