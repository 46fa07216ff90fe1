"""Who asks and who pays on the JSON doors: a request's key, `key_required`, and the key's payer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import g, request

from bot.api.bodies import MALFORMED_KEY
from bot.errors import ChatError, Failure
from bot.ids import log_id
from bot.services import services
from bot.store.quota import KeyPayer

BEARER_HINT = "send your key as 'Authorization: Bearer sk-…'"


@dataclass(frozen=True)
class ApiKey:
    """A request's key, well-formed: itself (never logged) and the fingerprint it is found under."""

    key: str = field(repr=False)
    fingerprint: str


def api_key_of(key: str) -> ApiKey:
    """A well-formed key, or ChatError (missing, or cannot be a key). No Redis: whether the key
    exists is the ledger's first question."""
    if key == "":
        raise ChatError(Failure.MISSING_KEY)
    key = key.strip()
    fingerprint = services().keys.fingerprint(key)
    if fingerprint is None:
        raise ChatError(Failure.INVALID_KEY, MALFORMED_KEY)
    g.log_id = log_id(fingerprint)  # the request's log line names the key by this, never the key
    return ApiKey(key, fingerprint)


def bearer_key() -> ApiKey:
    """The key of `Authorization: Bearer sk-…`, well-formed, or 401."""
    if "Authorization" not in request.headers:
        raise ChatError(Failure.MISSING_KEY, BEARER_HINT)
    scheme, _, key = request.headers["Authorization"].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ChatError(Failure.INVALID_KEY, "expected 'Authorization: Bearer sk-…'")
    return api_key_of(key)


def key_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view for key holders only that spends nothing (the model list): its bearer key must exist
    now, or 401; one Redis read. The chat views leave that question to the ledger's reservation,
    which asks it in the round trip it makes anyway."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        api_key, keys = bearer_key(), services().keys
        if not keys.active(api_key.fingerprint) and not keys.adopt(api_key.key):
            raise ChatError(Failure.INVALID_KEY)
        return view(**kwargs)

    return wrapped


def key_payer(api_key: ApiKey, user: str | None) -> KeyPayer:
    """The key paying for this request. A request for a `user` costs one more Redis read: its block.
    During a BOT_SECRET rotation a key the ledger does not find is looked for under the previous one."""
    svc = services()
    blocked = bool(user) and svc.blocks.user_blocked(user)
    return svc.ledger.payer(api_key.fingerprint, user, blocked, lambda: svc.keys.adopt(api_key.key))
