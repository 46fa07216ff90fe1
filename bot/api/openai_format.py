"""OpenAI's chat-completions format: the request we accept, the bodies and chunks we answer, errors.

Only what the service can honour is accepted: `n` other than 1 is refused, `temperature` and
`top_p` are checked and passed through, `max_tokens` (or `max_completion_tokens`) caps the answer.
Fields the service has no use for (tools, logprobs, …) are ignored, as the spec's door does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import Response

from bot.api.bodies import (
    Delta,
    ErrorDetail,
    OpenAIAnswerMessage,
    OpenAIChatRequest,
    OpenAIChoice,
    OpenAIChunk,
    OpenAICompletion,
    OpenAIDeltaChoice,
    OpenAIError,
    TextPart,
    usage_of,
)
from bot.api.refusals import validated
from bot.api.responses import json_response
from bot.chat.core import AnswerStream, Completion, Options
from bot.chat.dialogue import Turn, check_with_system
from bot.chat.sse import event
from bot.errors import ChatError, Failure

# Failure → (HTTP status, OpenAI error type, OpenAI error code), as OpenAI's API answers them.
# Out of balance is OpenAI's 429 insufficient_quota, which its SDKs raise as RateLimitError.
_ERRORS: dict[Failure, tuple[int, str, str | None]] = {
    Failure.QUESTION_TOO_LONG: (400, "invalid_request_error", "context_length_exceeded"),
    Failure.CONTENT_REFUSED: (400, "invalid_request_error", "content_filter"),
    Failure.MISSING_KEY: (401, "invalid_request_error", None),
    Failure.INVALID_KEY: (401, "invalid_request_error", "invalid_api_key"),
    Failure.QUOTA_EXHAUSTED: (429, "insufficient_quota", "insufficient_quota"),
    Failure.BLOCKED: (403, "permission_error", "blocked"),
    Failure.MODEL_NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    Failure.RATE_LIMITED: (429, "requests", "rate_limit_exceeded"),
    Failure.UPSTREAM_FAILED: (502, "server_error", "upstream_error"),
    Failure.UPSTREAM_TIMEOUT: (504, "server_error", "timeout"),
}


def error_body(failure: Failure, message: str) -> tuple[OpenAIError, int]:
    """OpenAI's `{"error": {message, type, param, code}}` and its HTTP status for a Failure."""
    status, kind, code = _ERRORS.get(failure) or (failure.http_status, _kind(failure.http_status), None)
    return OpenAIError(error=ErrorDetail(message=message, type=kind, param=None, code=code)), status


def _kind(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(failure: Failure, message: str, retry_after: int | None = None) -> Response:
    response = json_response(*error_body(failure, message))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if failure is Failure.QUOTA_EXHAUSTED:
        response.headers["x-should-retry"] = "false"  # a 429 the SDKs must not retry: it will not pass
    return response


@dataclass(frozen=True)
class ChatRequest:
    model: str
    turns: list[Turn]  # the system message, if any, travels in options
    options: Options
    stream: bool
    include_usage: bool
    user: str | None


def parse_request(body: dict[str, Any], default_model: str) -> ChatRequest:
    """An OpenAI chat-completions body, validated, or ChatError naming the field and what it got."""
    req = validated(OpenAIChatRequest, body)
    if req.stream_options is not None and not req.stream:
        raise ChatError(Failure.BAD_REQUEST, "stream_options is only allowed with stream: true")
    system, turns = check_with_system([Turn(m.role, _text(m.content)) for m in req.messages])
    options = Options(
        max_tokens=req.max_tokens if req.max_tokens is not None else req.max_completion_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        system=system,
    )
    include_usage = req.stream_options is not None and req.stream_options.include_usage
    return ChatRequest(req.model or default_model, turns, options, bool(req.stream), include_usage, req.user or None)


def _text(content: str | list[TextPart]) -> str:
    """OpenAI lets content be a list of text parts: they are joined."""
    return content if isinstance(content, str) else "".join(part.text for part in content)


def chat_id(answer_id: str) -> str:
    return "chatcmpl-" + answer_id.removeprefix("as-")


def openai_completion(completion: Completion, model: str) -> OpenAICompletion:
    """OpenAI's chat.completion body, echoing the model the caller named."""
    message = OpenAIAnswerMessage(role="assistant", content=completion.content, refusal=None)
    choice = OpenAIChoice(index=0, message=message, logprobs=None, finish_reason=completion.finish_reason)
    return OpenAICompletion(
        id=chat_id(completion.id),
        object="chat.completion",
        created=completion.created,
        model=model,
        choices=[choice],
        usage=usage_of(completion.usage),
        system_fingerprint=None,
    )


class OpenAIStream:
    """chat.completion.chunk events, [DONE] last; an error after the first is an error event instead."""

    def __init__(self, answer: AnswerStream, req: ChatRequest):
        self.head = {"id": chat_id(answer.id), "object": "chat.completion.chunk", "created": answer.created}
        self.head |= {"model": req.model, "system_fingerprint": None}
        self.exclude = None if req.include_usage else {"usage"}  # usage: null until the last, if asked for
        # One chunk whose text each piece replaces: serializing it costs less than building one.
        self.delta = Delta(content="")
        self.chunk = self._chunk(self.delta)

    def _chunk(self, delta: Delta, finish_reason: str | None = None) -> OpenAIChunk:
        choice = OpenAIDeltaChoice(index=0, delta=delta, logprobs=None, finish_reason=finish_reason)
        return OpenAIChunk(**self.head, choices=[choice])

    def opening(self) -> Iterable[bytes]:
        yield event(self._chunk(Delta(role="assistant", content="")).model_dump_json(exclude=self.exclude))

    def piece(self, text: str) -> bytes:
        self.delta.content = text
        return event(self.chunk.model_dump_json(exclude=self.exclude))

    def closing(self, answer: AnswerStream) -> Iterable[bytes]:
        yield event(self._chunk(Delta(), answer.finish_reason).model_dump_json(exclude=self.exclude))
        if self.exclude is None:
            yield event(OpenAIChunk(**self.head, choices=[], usage=usage_of(answer.usage)).model_dump_json())
        yield event("[DONE]")

    def failure(self, error: ChatError, answer: AnswerStream) -> bytes:
        return event(error_body(error.failure, error.message)[0].model_dump_json())
