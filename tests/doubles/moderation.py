"""An OpenAI-compatible `POST /moderations` on 127.0.0.1 whose verdict a test sets.

Modes: clean, flagged, slow (answers clean after `delay` seconds), trickle (answers clean at once,
but its body a byte at a time over `delay` seconds: no single read waits long), garbage (200 with a
body of another shape), error (HTTP 500). Every request is recorded with its headers.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.doubles import JsonHandler, QuietServer


class ModerationDouble:
    def __init__(self) -> None:
        self.mode, self.delay = "clean", 2.0
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/moderations"

    def reset(self, mode: str = "clean", delay: float = 2.0) -> None:
        self.mode, self.delay, self.received = mode, delay, []

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[JsonHandler]:
        double = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                double.received.append((dict(self.headers), body))
                if double.mode == "slow":
                    time.sleep(double.delay)
                if double.mode == "error":
                    return self.send_json(500, b'{"error": {"message": "down"}}')
                if double.mode == "garbage":
                    return self.send_json(200, b'{"results": "yes"}')
                flagged = double.mode == "flagged"
                results = [{"flagged": flagged, "categories": {"harassment": flagged}} for _ in body.get("input", [])]
                answer = json.dumps({"id": "modr-1", "model": "m", "results": results}).encode()
                if double.mode == "trickle":
                    return self.trickle(answer, double.delay / len(answer))
                self.send_json(200, answer)

            def trickle(self, answer: bytes, pause: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                for i in range(len(answer)):
                    self.wfile.write(answer[i : i + 1])
                    self.wfile.flush()
                    time.sleep(pause)

        return Handler
