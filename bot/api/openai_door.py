"""The OpenAI-compatible door: `POST /v1/chat/completions`, `GET /v1/models`, `Authorization: Bearer`.

Same dialogue rules, trimming, quota and limits as the spec's door, so a follower's key works with
the official OpenAI SDKs. A request with no Authorization header whose body carries
`api_secret_key` is the spec's own curl example (it posts here): it is served exactly as
/api/v1/chat/completions would, in the spec's format, errors included.
"""

from __future__ import annotations

import time
from dataclasses import replace

from flask import Blueprint, Response, request

from bot.api import spec_door
from bot.api.auth import BEARER_HINT, ApiKey, bearer_key, key_payer, key_required
from bot.api.bodies import Model, ModelList
from bot.api.openai_format import ChatRequest, OpenAIStream, openai_completion, openai_error, parse_request
from bot.api.request import read_json_object
from bot.api.responses import json_response, stream_response
from bot.errors import ChatError, Failure, shown
from bot.errors_http import answer_failures
from bot.ids import log_id
from bot.observe import note_answer, note_content
from bot.services import services

# The blueprint's name is the door's on /metrics and in the request log.
bp = Blueprint("openai", __name__, url_prefix="/v1")
answer_failures(bp, openai_error)


@bp.post("/chat/completions")
def chat_completions() -> Response:
    if "Authorization" not in request.headers:
        answer = spec_door.serve_posted_elsewhere()
        if answer is None:
            raise ChatError(Failure.MISSING_KEY, BEARER_HINT)
        return answer
    api_key, body = bearer_key(), read_json_object()
    return _serve(api_key, parse_request(body, services().settings.openai_model), named=bool(body.get("model")))


def _serve(api_key: ApiKey, req: ChatRequest, named: bool = True) -> Response:
    """`named`: the caller named a model; one that names none takes the default route, as the spec's
    door does, even when upstreams list public names and OPENAI_MODEL is not among them."""
    started, svc = time.monotonic(), services()
    note_content(req.turns[-1].content)
    who, system = log_id(api_key.fingerprint), req.options.system
    svc.guard.check_question([*([system] if system else []), *(t.content for t in req.turns)], "v1", who)
    if named and not svc.models.serves(req.model):
        _refuse_model(api_key, req.model)
    options = replace(req.options, route=svc.models.route(req.model) if named else None)
    payer = key_payer(api_key, req.user)
    if req.stream:
        answer = svc.chat.stream(req.turns, payer, options)
        screen = svc.guard.stream_screen("v1", who, "")  # OpenAI's way: no text, finish_reason content_filter
        return stream_response(answer, OpenAIStream(answer, req), "v1", who, started, screen)
    completion = svc.guard.screen_completion(svc.chat.complete(req.turns, payer, options), "v1", who, "")
    note_answer(completion.id, completion.usage.total_tokens)  # on the request's one log line
    return json_response(openai_completion(completion, req.model))


def _refuse_model(api_key: ApiKey, model: str) -> None:
    """404 model_not_found, as OpenAI answers, before anything is reserved or counted: no rate-limit
    hit, no refund. Who asks is still settled first (a bad key is 401), with the one Redis read
    `key_required` makes, paid only by a request naming no served model."""
    keys = services().keys
    if not keys.active(api_key.fingerprint) and not keys.adopt(api_key.key):
        raise ChatError(Failure.INVALID_KEY)
    raise ChatError(Failure.MODEL_NOT_FOUND, f"the model {shown(model)} does not exist; see GET /v1/models")


def _model(model_id: str) -> Model:
    return Model(id=model_id, object="model", created=0, owned_by="xiaoyi-bot")


@bp.get("/models")
@key_required
def list_models() -> Response:
    """The public models the upstreams list (their `models`), or the one configured (any `model` is
    then answered by it)."""
    return json_response(ModelList(object="list", data=[_model(m) for m in services().models.listed()]))


@bp.get("/models/<path:model_id>")
@key_required
def retrieve_model(model_id: str) -> Response:
    if model_id not in services().models.listed():
        raise ChatError(Failure.MODEL_NOT_FOUND, f"no model {shown(model_id)}; GET /v1/models lists those served")
    return json_response(_model(model_id))
