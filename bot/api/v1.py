"""The OpenAI-compatible door: `POST /v1/chat/completions`, `GET /v1/models`, `Authorization: Bearer`.

Same dialogue rules, trimming, quota and limits as the spec's door, so a follower's key works with
the official OpenAI SDKs. A request with no Authorization header whose body carries
`api_secret_key` is the spec's own curl example (it posts here): it is served exactly as
/api/v1/chat/completions would, in the spec's format, errors included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, g, jsonify, request

from bot.api import bp, chat
from bot.api.openai_format import ChatRequest, chat_id, chunk, completion_body, error_body, parse_request
from bot.api.request import ApiKey, api_key_of, event_stream, key_payer, read_json_object
from bot.chat.core import AnswerStream
from bot.chat.sse import event
from bot.errors import ChatError, Failure, shown
from bot.extensions import services
from bot.observe import note_answer, note_content
from bot.store.vault import log_id

logger = logging.getLogger(__name__)


def _bearer_key() -> ApiKey:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ChatError(Failure.INVALID_KEY, "expected 'Authorization: Bearer sk-…'")
    return api_key_of(key)


@bp.post("/v1/chat/completions")
def openai_chat_completions() -> Response:
    if "Authorization" not in request.headers:
        g.error_shape = "spec"  # until the body shows it is not the spec's curl example
        body = read_json_object()
        if "api_secret_key" in body:
            return chat.serve(body)
        g.error_shape = "openai"
        raise ChatError(Failure.MISSING_KEY, "send your key as 'Authorization: Bearer sk-…'")
    return _serve(_bearer_key(), parse_request(read_json_object(), services().settings.openai_model))


def _serve(api_key: ApiKey, req: ChatRequest) -> Response:
    started, svc = time.monotonic(), services()
    note_content(req.turns[-1].content)
    payer = key_payer(api_key, req.user)
    if req.stream:
        answer = svc.chat.stream(req.turns, payer, req.options)
        return event_stream(_chunks(answer, req, log_id(api_key.fingerprint), started))
    completion = svc.chat.complete(req.turns, payer, req.options)
    note_answer(completion.id, completion.usage.total_tokens)  # on the request's one log line
    return jsonify(completion_body(completion, req.model))


def _chunks(answer: AnswerStream, req: ChatRequest, who: str, started: float) -> Iterator[bytes]:
    """chat.completion.chunk events, [DONE] last; an error after the first is an error event instead."""
    head: dict[str, Any] = {"id": chat_id(answer.id), "object": "chat.completion.chunk", "created": answer.created}
    head |= {"model": req.model, "system_fingerprint": None} | ({"usage": None} if req.include_usage else {})
    outcome = "client gone"
    try:
        yield event(chunk(head, {"role": "assistant", "content": ""}, None))
        for piece in answer:
            yield event(chunk(head, {"content": piece}, None))
        answer.close()
        outcome = "ok"
        yield event(chunk(head, {}, answer.finish_reason))
        if req.include_usage:
            yield event({**head, "choices": [], "usage": answer.usage.as_dict()})
        yield event("[DONE]")
    except ChatError as error:
        answer.close()
        outcome = error.failure.name
        yield event(error_body(error.failure, error.message)[0])
    finally:
        answer.close()
        tokens, ms = answer.usage.total_tokens, (time.monotonic() - started) * 1000
        logger.info("v1 chat %s stream id=%s %s tokens=%d ms=%d", who, answer.id, outcome, tokens, ms)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "xiaoyi-bot"}


@bp.get("/v1/models")
def list_models() -> Response:
    """The one model this service answers with (whatever `model` a request names)."""
    _require_active_key()
    return jsonify({"object": "list", "data": [_model(services().settings.openai_model)]})


@bp.get("/v1/models/<path:model_id>")
def retrieve_model(model_id: str) -> Response:
    _require_active_key()
    if model_id != services().settings.openai_model:
        raise ChatError(Failure.NOT_FOUND, f"no model {shown(model_id)}; this service offers only /v1/models")
    return jsonify(_model(model_id))


def _require_active_key() -> None:
    if "Authorization" not in request.headers:
        raise ChatError(Failure.MISSING_KEY, "send your key as 'Authorization: Bearer sk-…'")
    api_key, keys = _bearer_key(), services().keys
    if not keys.active(api_key.fingerprint) and not keys.adopt(api_key.key):
        raise ChatError(Failure.INVALID_KEY)
