"""Real HTTP servers on 127.0.0.1 that play the services the bot talks to."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A threaded server that takes bursts and does not report clients that hung up."""

    daemon_threads = True
    request_queue_size = 4096  # the stdlib default of 5 refuses bursts

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a timeout under test) is not the double's failure


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, payload: bytes, encoding: str = "", body_delay: float = 0.0) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body_delay:
            self.wfile.flush()
            time.sleep(body_delay)
        self.wfile.write(payload)
