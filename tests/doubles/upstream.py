"""An OpenAI-compatible chat-completions server on 127.0.0.1 whose behaviour a test sets.

It answers `POST /v1/chat/completions` like OpenAI does, records every request it receives, and can
be made slow, failing (any status), malformed, empty, or to drop the connection. An answer goes
gzip-compressed to a client that accepts it, as OpenAI's does. A request with
`stream: true` is answered with chat.completion.chunk events over chunked transfer encoding, one
piece every `chunk_delay` seconds; the double records how many pieces each stream delivered and
whether the client hung up before the end.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.doubles import JsonHandler, QuietServer


def echo_answer(messages: list[dict[str, str]]) -> str:
    return "回答：" + messages[-1]["content"]


def refusing_url() -> str:
    """The base URL of an upstream that refuses every connection: a port just closed, nobody listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


@dataclass
class Behaviour:
    latency: float = 0.0
    latency_for: Callable[[list[dict[str, str]]], float] | None = None  # per question, overrides latency
    status: int = 200
    fail_times: int | None = None  # with a failing status: fail this many times, then succeed
    mode: str = "ok"  # ok | malformed | empty | drop | redirect (307 to itself)
    body_delay: float = 0.0  # seconds between a non-stream answer's headers and its body
    answer: Callable[[list[dict[str, str]]], str] = echo_answer
    finish_reason: str = "stop"
    # Streaming: the answer in pieces of `piece_chars`, `chunk_delay` seconds apart. stream_mode "cut"
    # ends the body after `break_after` pieces without [DONE]; "error" sends an error event there.
    piece_chars: int = 4
    chunk_delay: float = 0.0
    stream_mode: str = "ok"  # ok | cut | error
    break_after: int = 0
    ignore_stream: bool = False  # answer `stream: true` with one JSON completion, as some servers do
    # A reasoning model: `reasoning` streamed as `reasoning_content` deltas, one every `reasoning_delay`
    # seconds, before the answer's first content.
    reasoning: list[str] = field(default_factory=list)
    reasoning_delay: float = 0.0
    keepalive: int = 0  # comments (`: keep-alive`) a stream sends, `chunk_delay` apart, before its first event


@dataclass
class Streamed:
    pieces: list[str] = field(default_factory=list)  # written to the socket without error
    hung_up: bool = False  # the client closed the connection before the stream's end
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class UpstreamDouble:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.streams: list[Streamed] = []
        self._lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> UpstreamDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, **behaviour: Any) -> None:
        with self._lock:
            self.behaviour = Behaviour(**behaviour)
            self.received = []
            self.streams = []

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.received)

    def calls_about(self, question: str) -> int:
        """How many requests asked `question` as their last message."""
        with self._lock:
            return sum(1 for r in self.received if r.body["messages"][-1]["content"] == question)

    def wait_for_streams(self, count: int = 1, timeout: float = 10.0) -> list[Streamed]:
        """The first `count` streams, once each has ended (finished, broken, or hung up on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                streams = list(self.streams[:count])
            if len(streams) == count and all(s.ended.wait(max(0.0, deadline - time.monotonic())) for s in streams):
                return streams
            time.sleep(0.01)
        raise AssertionError(f"{count} upstream stream(s) did not end within {timeout}s")

    def _new_stream(self) -> Streamed:
        with self._lock:
            self.streams.append(Streamed())
            return self.streams[-1]

    def _record(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[Behaviour, bool]:
        """Record a request; answer the behaviour to use and whether to fail it."""
        with self._lock:
            self.received.append(Received(headers, body))
            behaviour = self.behaviour
            if behaviour.status == 200:
                return behaviour, False
            if behaviour.fail_times is None:
                return behaviour, True
            behaviour.fail_times -= 1
            return behaviour, behaviour.fail_times >= 0

    def _handler(self) -> type[JsonHandler]:
        double = self

        class Handler(JsonHandler):
            # Headers and body go out in two writes: without TCP_NODELAY the second waits for the
            # client's delayed ACK (40 ms on Linux), which would dwarf what a benchmark measures.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                behaviour, fail = double._record(dict(self.headers), body)
                latency = behaviour.latency_for(body["messages"]) if behaviour.latency_for else behaviour.latency
                time.sleep(latency)
                if behaviour.mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fail:
                    return self.send_json(behaviour.status, b'{"error": {"message": "failing on purpose"}}')
                if behaviour.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if behaviour.mode == "malformed":
                    return self.send_json(200, b'{"choices": [ this is not json')
                content = "" if behaviour.mode == "empty" else behaviour.answer(body["messages"])
                if body.get("stream") and not behaviour.ignore_stream:
                    return self._stream(body, content, behaviour)
                answer = json.dumps(_completion(body, content, behaviour.finish_reason)).encode()
                gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
                return self.send_json(
                    200, gzip.compress(answer) if gzipped else answer, "gzip" if gzipped else "", behaviour.body_delay
                )

            def _stream(self, body: dict[str, Any], content: str, behaviour: Behaviour) -> None:
                streamed = double._new_stream()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(behaviour.keepalive):  # as proxies do while a model has not started
                        time.sleep(behaviour.chunk_delay)
                        self._chunk(b": keep-alive\n\n")
                    for event, piece in _events(body, content, behaviour):
                        time.sleep(behaviour.chunk_delay if piece else 0)
                        self._chunk(event)
                        if piece:
                            streamed.pieces.append(piece)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    streamed.hung_up = True
                finally:
                    self.close_connection = True
                    streamed.ended.set()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


def _completion(request: dict[str, Any], content: str, finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-double",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk_event(request: dict[str, Any], delta: dict[str, str], finish_reason: str | None) -> bytes:
    chunk = {
        "id": "chatcmpl-double",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    # A lone surrogate (half an emoji, as a server that splits one between two events sends it) goes out
    # as its JSON escape, \ud83d: the one way JSON can carry it.
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode("utf-8", "backslashreplace")


def _events(request: dict[str, Any], content: str, behaviour: Behaviour):
    """(event bytes, the piece of text it carries or "") in the order a stream sends them."""
    step = behaviour.piece_chars
    pieces = [content[i : i + step] for i in range(0, len(content), step)]
    yield _chunk_event(request, {"role": "assistant", "content": ""}, None), ""
    for thought in behaviour.reasoning:
        time.sleep(behaviour.reasoning_delay)
        yield _chunk_event(request, {"reasoning_content": thought}, None), ""
    for i, piece in enumerate(pieces):
        if behaviour.stream_mode != "ok" and i == behaviour.break_after:
            if behaviour.stream_mode == "error":
                yield b'data: {"error": {"message": "overloaded mid-answer"}}\n\n', ""
            return
        yield _chunk_event(request, {"content": piece}, None), piece
    yield _chunk_event(request, {}, behaviour.finish_reason), ""
    yield b"data: [DONE]\n\n", ""
