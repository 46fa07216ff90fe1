"""What many tests share: a question as the JSON doors take it, a request to each door as a caller
sends it, a key's record as `keys show` reads it, a clock a test moves by hand, and WeChat's
"still thinking" placeholder."""

from __future__ import annotations

from typing import Any

from bot.services import services
from bot.store.apikeys import KeyInfo
from bot.wechat import texts

SPEC_URL = "/api/v1/chat/completions"
OPENAI_URL = "/v1/chat/completions"

Messages = list[dict[str, Any]] | str


def one(question: str) -> list[dict[str, str]]:
    """A dialogue of one user question, as both doors take `messages`."""
    return [{"role": "user", "content": question}]


def _dialogue(messages: Messages) -> list[dict[str, Any]]:
    return one(messages) if isinstance(messages, str) else messages


def ask(client, key: str, messages: Messages = "hi", **extra: Any):
    """The spec door's answer to a caller with `key`: `messages`, or one question; `extra` body fields."""
    return client.post(SPEC_URL, json={"api_secret_key": key, "messages": _dialogue(messages), **extra})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ask_openai(client, key: str, messages: Messages = "hi", **extra: Any):
    """The OpenAI door's answer to a caller with `key` as its Bearer token."""
    body = {"model": "gpt-4o", "messages": _dialogue(messages), **extra}
    return client.post(OPENAI_URL, json=body, headers=bearer(key))


def key_info(app, key: str) -> KeyInfo | None:
    """The key's balance, use and holds as the service keeps them (None once revoked)."""
    with app.app_context():
        store = services().keys
        return store.info(store.fingerprint(key))


class Clock:
    """A clock that stands still until a test moves it (`clock.now += 61`), for code that takes `clock=`."""

    def __init__(self, now: float = 1_767_240_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def thinking(reply: str | None) -> bool:
    """Whether a WeChat reply is the placeholder that says how long the model has been thinking."""
    head, tail = texts.THINKING_FOR.split("{seconds}")
    return reply is not None and reply.startswith(head) and reply.endswith(tail) and reply[len(head)].isdigit()
