"""`POST /api/v1/chat/completions`, as shared/spec/chat-api.md describes it, plus `stream: true`.

A streamed answer is text/event-stream: one `data: {json}` event per piece of text as the model
writes it, each with the spec's code/msg/id/created and `choices[0].delta.content`; the last event
carries `finish_reason` and `usage`, like the non-streaming answer. A failure before the first piece
is the usual JSON error; one after it is a last event with its code, msg and the usage billed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify

from bot.api import bp
from bot.api.request import api_key_of, event_stream, key_payer, read_json_object, read_stream_flag, read_user
from bot.chat.core import AnswerStream, Completion
from bot.chat.dialogue import parse_dialogue
from bot.chat.sse import event
from bot.errors import ChatError
from bot.extensions import services
from bot.observe import note_answer, note_content
from bot.store.vault import log_id

logger = logging.getLogger(__name__)


def completion_body(completion: Completion) -> dict[str, Any]:
    return {
        "code": 0,
        "msg": "",
        "id": completion.id,
        "created": completion.created,
        "choices": [
            {
                "message": {"role": "assistant", "content": completion.content},
                "finish_reason": completion.finish_reason,
                "index": 0,
            }
        ],
        "usage": completion.usage.as_dict(),
    }


@bp.post("/api/v1/chat/completions")
def chat_completions() -> Response:
    return serve(read_json_object())


def serve(body: dict[str, Any]) -> Response:
    """The spec's door for a parsed body (/v1/chat/completions serves spec-style requests here too)."""
    started = time.monotonic()
    stream, user = read_stream_flag(body), read_user(body)
    api_key = api_key_of(body.get("api_secret_key"))
    turns = parse_dialogue(body.get("messages"))
    note_content(turns[-1].content)
    chat, payer = services().chat, key_payer(api_key, user)
    answer = chat.stream(turns, payer) if stream else chat.complete(turns, payer)
    if isinstance(answer, AnswerStream):
        return event_stream(_events(answer, log_id(api_key.fingerprint), started))
    note_answer(answer.id, answer.usage.total_tokens)  # on the request's one log line
    return jsonify(completion_body(answer))


def _events(answer: AnswerStream, who: str, started: float) -> Iterator[bytes]:
    head = {"code": 0, "msg": "", "id": answer.id, "created": answer.created}
    outcome = "client gone"
    try:
        delta = {"role": "assistant"}
        for piece in answer:
            choice = {"delta": {**delta, "content": piece}, "index": 0, "finish_reason": None}
            yield event({**head, "choices": [choice]})
            delta = {}
        answer.close()
        outcome = "ok"
        last = {"delta": {}, "index": 0, "finish_reason": answer.finish_reason}
        yield event({**head, "choices": [last], "usage": answer.usage.as_dict()})
    except ChatError as error:
        answer.close()
        outcome = error.failure.name
        yield event({**head, "code": error.failure.code, "msg": error.message, "usage": answer.usage.as_dict()})
    finally:
        answer.close()
        tokens, ms = answer.usage.total_tokens, (time.monotonic() - started) * 1000
        logger.info("api chat %s stream id=%s %s tokens=%d ms=%d", who, answer.id, outcome, tokens, ms)
