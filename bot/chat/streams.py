"""Answers as the model writes them: an upstream's `stream: true` response, or the offline stand-in."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError, ReadTimeoutError

from bot.chat.sse import iter_data
from bot.errors import ChatError, Failure

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
# Half of a character beyond the Basic Multilingual Plane (an emoji): a server may stream one split
# between two events, each half a JSON escape (\ud83d, then \ude00), which json reads as lone surrogates.
_SURROGATE = re.compile("[\ud800-\udfff]")


def whole_characters(piece: str) -> tuple[str, str]:
    """(`piece` with its halves of characters joined, a last first half held for the next piece): a
    half with no other reads U+FFFD (no UTF-8, so no reply, Redis or log, can carry it); a first half
    the stream ends on is dropped."""
    if _SURROGATE.search(piece) is None:
        return piece, ""
    held = ""
    if "\ud800" <= piece[-1] <= "\udbff":
        piece, held = piece[:-1], piece[-1]
    return piece.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"), held


# Called on every event an upstream streams, text or not, in the context that reads the stream: a
# reasoning model thinks for a long while before its first word (its `reasoning_content` is never
# passed on), and whoever waits on the stream still needs to know that it is alive.
_activity: ContextVar[Callable[[], None] | None] = ContextVar("stream_activity", default=None)


@contextmanager
def on_activity(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on every event of the streams read inside the block (it may raise to stop one)."""
    token = _activity.set(callback)
    try:
        yield
    finally:
        _activity.reset(token)


def hang_up(response: BaseHTTPResponse) -> None:
    """Close a response whose body may be unread (the upstream stops writing) and free its pool slot."""
    response.close()
    response.release_conn()


def _arrivals(response: BaseHTTPResponse, stream: UpstreamStream) -> Iterator[bytes]:
    """The body's bytes as they arrive: read1 returns whatever is there instead of waiting for more."""
    while True:
        stream.bound_wait()
        chunk = response.read1(READ_SIZE, decode_content=True)
        if not chunk:
            return
        stream.check_first_text()
        yield chunk


def _whole(response: BaseHTTPResponse) -> Iterator[str]:
    """A server that ignores `stream: true` and answers one JSON completion: read as a stream of one
    piece, so a caller streaming from it still gets the answer."""
    try:
        choice = json.loads(response.data)["choices"][0]
        content, finish = choice["message"]["content"], choice.get("finish_reason") or "stop"
    except (ValueError, KeyError, IndexError, TypeError):
        raise ChatError(Failure.UPSTREAM_FAILED, "malformed response") from None
    yield json.dumps({"choices": [{"delta": {"content": content}, "finish_reason": finish}]})
    yield "[DONE]"


def _events(response: BaseHTTPResponse, stream: UpstreamStream) -> Iterator[str]:
    whole = response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"
    label = stream.label
    try:
        yield from _whole(response) if whole else iter_data(_arrivals(response, stream))
    except (ReadTimeoutError, TimeoutError):
        raise ChatError(Failure.UPSTREAM_TIMEOUT, "no new text within OPENAI_TIMEOUT") from None
    except (HTTPError, OSError) as exc:
        logger.warning("%s stream broke: %s", label, type(exc).__name__)
        raise ChatError(Failure.UPSTREAM_FAILED, "connection lost mid-answer") from None


class UpstreamStream:
    """OpenAI's `chat.completion.chunk` events read as they arrive, yielding non-empty text pieces.

    The stream ends at `data: [DONE]` (or when the body ends after a finish_reason); a body that ends
    before either, breaks, or carries an error event raises ChatError. close() hangs up on the
    upstream, which is how an OpenAI-compatible server learns to stop generating.
    """

    def __init__(self, response: BaseHTTPResponse, label: str = "upstream", first_by: float = math.inf):
        self.response = response
        self.label = label  # "upstream <name>" in its warnings
        # The time.monotonic() by which its first text must come. The read timeout alone is per read:
        # keep-alive comments or empty events, each within it, would hold the call (and a failover,
        # and a WeChat claim's lease) for ever before a single token.
        self.first_by = first_by
        self._read_timeout: float | None = None  # the socket's own, while a shorter wait is in force
        self.finish_reason = "stop"
        self._finished = False
        self._produced = False
        self._half = ""  # the first half of a character whose second is in the next event
        self._thinking = False  # reasoning_content has come: the model is alive, if not yet answering
        self._events = _events(response, self)

    def bound_wait(self) -> None:
        """Until the first text, a read waits only until it is due (the socket's timeout cut to what is
        left); from then on each read waits the read timeout again."""
        connection = self.response.connection
        sock = getattr(connection, "sock", None)
        if sock is None or self.first_by == math.inf:
            return
        if not self._started:
            self._read_timeout = self._read_timeout or sock.gettimeout()
            sock.settimeout(max(0.001, self.first_by - time.monotonic()))
        elif self._read_timeout is not None:
            sock.settimeout(self._read_timeout)
            self._read_timeout = None

    def check_first_text(self) -> None:
        """ChatError (a timeout, so the next upstream is asked) once the first text is overdue."""
        if not self._started and time.monotonic() > self.first_by:
            raise ChatError(Failure.UPSTREAM_TIMEOUT, "no answer text within its timeout")

    @property
    def _started(self) -> bool:
        """Answer text, or reasoning, has come: a reasoning model may think for longer than the timeout
        before its first word, and each of its reads still has the read timeout."""
        return self._produced or self._thinking

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            for data in self._events:
                if (alive := _activity.get()) is not None:
                    alive()
                if data.strip() == "[DONE]":
                    return self._end()
                piece, self._half = whole_characters(self._half + self._read(data))
                if piece:
                    self._produced = True
                    return piece
            if self._finished:
                return self._end()
            raise ChatError(Failure.UPSTREAM_FAILED, "the answer was cut off")
        except BaseException:
            self.close()
            raise

    def _end(self) -> str:
        self.close()
        if not self._produced:
            raise ChatError(Failure.UPSTREAM_FAILED, "empty answer")
        raise StopIteration

    def _read(self, data: str) -> str:
        try:
            chunk: Any = json.loads(data)
            if "error" in chunk:
                raise ChatError(Failure.UPSTREAM_FAILED, "the upstream reported an error mid-answer")
            choices = chunk.get("choices") or [{}]  # a usage-only chunk has no choices
            delta = choices[0].get("delta") or {}
            content, finish = delta.get("content"), choices[0].get("finish_reason")
            self._thinking = self._thinking or bool(delta.get("reasoning_content"))
        except (ValueError, TypeError, AttributeError, IndexError):
            logger.warning("%s streamed a malformed event (%d characters)", self.label, len(data))
            raise ChatError(Failure.UPSTREAM_FAILED, "malformed stream event") from None
        if finish:
            self.finish_reason, self._finished = str(finish), True
        return content if isinstance(content, str) else ""

    def close(self) -> None:
        hang_up(self.response)


class OfflineStream:
    """The offline provider's reply in short pieces, so streaming can be tried without a model."""

    PIECE = 8

    def __init__(self, text: str):
        self.finish_reason = "stop"
        self._pieces = iter([text[i : i + self.PIECE] for i in range(0, len(text), self.PIECE)])

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces = iter(())
