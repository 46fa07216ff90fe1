"""The spec's door: `POST /api/v1/chat/completions`, as shared/spec/chat-api.md describes it, plus `stream: true`.

A streamed answer is text/event-stream: one `data: {json}` event per piece of text as the model
writes it, each with the spec's code/msg/id/created and `choices[0].delta.content`; the last event
carries `finish_reason` and `usage`, like the non-streaming answer. A failure before the first piece
is the usual JSON error; one after it is a last event with its code, msg and the usage billed.
Every error is `{code, msg}` with the HTTP status of bot/errors.py's table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, jsonify

from bot.api.auth import api_key_of, key_payer
from bot.api.bodies import (
    AssistantMessage,
    Delta,
    SpecChatRequest,
    SpecChoice,
    SpecChunk,
    SpecCompletion,
    SpecDeltaChoice,
    SpecError,
    usage_of,
)
from bot.api.openapi import openapi_document
from bot.api.refusals import validated
from bot.api.request import read_json_object
from bot.api.responses import json_response, stream_response
from bot.chat.core import AnswerStream, Completion
from bot.chat.dialogue import Turn, check_dialogue
from bot.chat.sse import event
from bot.errors import ChatError, Failure
from bot.errors_http import answer_failures
from bot.ids import log_id
from bot.observe import note_answer, note_content
from bot.services import services
from bot.wechat.texts import ANSWER_BLOCKED

# The blueprint's name is the door's on /metrics and in the request log.
bp = Blueprint("api", __name__, url_prefix="/api/v1")


def spec_error(failure: Failure, message: str, retry_after: int | None = None) -> Response:
    """The spec's error: a stable code, a human msg, and the matching HTTP status."""
    response = json_response(SpecError(code=failure.code, msg=message), failure.http_status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


answer_failure = answer_failures(bp, spec_error)


@bp.post("/chat/completions")
def chat_completions() -> Response:
    return serve(read_json_object())


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of both JSON doors."""
    return jsonify(openapi_document())


def serve_posted_elsewhere() -> Response | None:
    """The spec's curl example posts to /v1/chat/completions with the key in the body: it is this
    door's request there too, answered as here, errors included. None: the body (a JSON object)
    has no api_secret_key, so it is not the spec's request."""
    try:
        body = read_json_object()
        return serve(body) if "api_secret_key" in body else None
    except Exception as error:  # noqa: BLE001 - every failure, in this door's shape
        return answer_failure(error)  # type: ignore[return-value]


def serve(body: dict[str, Any]) -> Response:
    """The spec's door for a parsed body."""
    started = time.monotonic()
    req = validated(SpecChatRequest, body)
    turns = check_dialogue([Turn(m.role, m.content) for m in req.messages])
    api_key = api_key_of(req.api_secret_key)
    note_content(turns[-1].content)
    who, guard = log_id(api_key.fingerprint), services().guard
    guard.check_question([t.content for t in turns], "api", who)  # every turn reaches the model
    chat, payer = services().chat, key_payer(api_key, req.user or None)
    if req.stream:
        answer = chat.stream(turns, payer)
        screen = guard.stream_screen("api", who, ANSWER_BLOCKED)
        return stream_response(answer, SpecStream(answer), "api", who, started, screen)
    completion = guard.screen_completion(chat.complete(turns, payer), "api", who, ANSWER_BLOCKED)
    note_answer(completion.id, completion.usage.total_tokens)  # on the request's one log line
    return json_response(spec_completion(completion))


def spec_completion(completion: Completion) -> SpecCompletion:
    """The spec's answer body."""
    message = AssistantMessage(role="assistant", content=completion.content)
    return SpecCompletion(
        code=0,
        msg="",
        id=completion.id,
        created=completion.created,
        choices=[SpecChoice(message=message, finish_reason=completion.finish_reason, index=0)],
        usage=usage_of(completion.usage),
    )


class SpecStream:
    """The spec's events: the first piece says the role, the last carries finish_reason and usage."""

    def __init__(self, answer: AnswerStream):
        self.head = {"code": 0, "msg": "", "id": answer.id, "created": answer.created}
        # One chunk whose text each piece replaces: serializing it costs less than building one.
        self.delta = Delta(role="assistant", content="")
        self.chunk = SpecChunk(**self.head, choices=[SpecDeltaChoice(delta=self.delta, index=0, finish_reason=None)])

    def opening(self) -> Iterable[bytes]:
        return ()

    def piece(self, text: str) -> bytes:
        self.delta.content = text
        data = event(self.chunk.model_dump_json())
        self.delta.role = None  # said once, in the first piece
        return data

    def closing(self, answer: AnswerStream) -> Iterable[bytes]:
        last = SpecDeltaChoice(delta=Delta(), index=0, finish_reason=answer.finish_reason)
        yield event(SpecChunk(**self.head, choices=[last], usage=usage_of(answer.usage)).model_dump_json())

    def failure(self, error: ChatError, answer: AnswerStream) -> bytes:
        failed = self.head | {"code": error.failure.code, "msg": error.message}
        return event(SpecChunk(**failed, usage=usage_of(answer.usage)).model_dump_json())
