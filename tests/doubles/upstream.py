"""An OpenAI-compatible chat-completions server on 127.0.0.1 whose behaviour a test sets.

It answers `POST /v1/chat/completions` like OpenAI does, records every request it receives, and can
be made slow, failing (any status), malformed, empty, or to drop the connection.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def echo_answer(messages: list[dict[str, str]]) -> str:
    return "回答：" + messages[-1]["content"]


@dataclass
class Behaviour:
    latency: float = 0.0
    latency_for: Callable[[list[dict[str, str]]], float] | None = None  # per question, overrides latency
    status: int = 200
    fail_times: int | None = None  # with a failing status: fail this many times, then succeed
    mode: str = "ok"  # ok | malformed | empty | drop
    answer: Callable[[list[dict[str, str]]], str] = echo_answer
    finish_reason: str = "stop"


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # the stdlib default of 5 refuses bursts

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a timeout under test) is not the double's failure


class UpstreamDouble:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
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

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.received)

    def calls_about(self, question: str) -> int:
        """How many requests asked `question` as their last message."""
        with self._lock:
            return sum(1 for r in self.received if r.body["messages"][-1]["content"] == question)

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

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
                    return self._send(behaviour.status, b'{"error": {"message": "failing on purpose"}}')
                if behaviour.mode == "malformed":
                    return self._send(200, b'{"choices": [ this is not json')
                content = "" if behaviour.mode == "empty" else behaviour.answer(body["messages"])
                return self._send(200, json.dumps(_completion(body, content, behaviour.finish_reason)).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

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
