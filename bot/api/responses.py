"""How the JSON doors write: a body as JSON, and a streamed answer as server-sent events.

Both doors stream through the one loop here; each brings its format (StreamFormat): what it sends
before the first piece, for each piece, after the last, and in place of the rest when one fails.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from flask import Response
from pydantic import BaseModel

from bot.chat.core import AnswerStream
from bot.errors import ChatError
from bot.safety.guard import AnswerScreen

logger = logging.getLogger(__name__)


def json_response(body: BaseModel, status: int = 200) -> Response:
    """`body` as compact JSON; Chinese stays readable (UTF-8, not \\u escapes)."""
    return Response(body.model_dump_json(), status, mimetype="application/json")


class StreamFormat(Protocol):
    """One door's events for a streamed answer."""

    def opening(self) -> Iterable[bytes]: ...

    def piece(self, text: str) -> bytes: ...

    def closing(self, answer: AnswerStream) -> Iterable[bytes]: ...

    def failure(self, error: ChatError, answer: AnswerStream) -> bytes: ...


def stream_response(
    answer: AnswerStream, form: StreamFormat, label: str, who: str, started: float, screen: AnswerScreen
) -> Response:
    """A text/event-stream whose events reach the client as they are made, each through `screen`."""
    response = Response(_events(answer, form, label, who, started, screen), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx and friends: do not hold events back
    return response


def _events(
    answer: AnswerStream, form: StreamFormat, label: str, who: str, started: float, screen: AnswerScreen
) -> Iterator[bytes]:
    """The answer's events; it is closed (and settled) before the last is sent, and whatever
    happens, even the client hanging up mid-answer, it is closed and the stream is logged once.
    One event per piece, as the model writes them: the screen holds back at most the tail that may
    still become a banned word, released with the next piece or at the end."""
    outcome = "client gone"
    try:
        yield from form.opening()
        for piece in answer:
            yield form.piece(screen.feed(piece))
            if screen.blocked:  # the rest is withheld: stop the model (billed for what it wrote)
                answer.content_filtered = True
                break
        yield from _held(screen, form)
        answer.close()
        outcome = "ok"
        yield from form.closing(answer)
    except ChatError as error:
        answer.close()
        yield from _held(screen, form)  # masked: nothing more will come to complete a word in it
        outcome = error.failure.name
        yield form.failure(error, answer)
    finally:
        answer.close()
        tokens, ms = answer.usage.total_tokens, (time.monotonic() - started) * 1000
        logger.info("%s chat %s stream id=%s %s tokens=%d ms=%d", label, who, answer.id, outcome, tokens, ms)


def _held(screen: AnswerScreen, form: StreamFormat) -> Iterator[bytes]:
    """The event for what the screen still holds at the end (or its notice), if anything."""
    rest = screen.finish()
    if rest:
        yield form.piece(rest)
