"""The service served for real over HTTP: gunicorn as a subprocess, or werkzeug in a thread."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import TEST_SECRET
from tests.procs import ROOT, clean_env, free_port, python, stop, wait_for_http

_ACCESS = re.compile(r"^<(\d+)> (\d{3}) (\S+)$")


class Gunicorn:
    """gunicorn with config/gunicorn.conf.py (gevent workers), its access log naming each worker."""

    def __init__(self, directory: Path, redis_url: str, upstream_url: str, **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        self.env = clean_env(
            BOT_ENV="test",
            REDIS_URL=redis_url,
            BOT_SECRET=TEST_SECRET,
            OPENAI_API_KEY="sk-upstream-test",
            OPENAI_BASE_URL=upstream_url,
            OPENAI_MODEL="test-model",
            OPENAI_TIMEOUT="5",
            PORT=str(self.port),
            GUNICORN_ACCESS_LOG=str(self.access_log),
            GUNICORN_CMD_ARGS="--access-logformat '%(p)s %(s)s %(U)s'",
            **settings,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "wsgi:app")
        with self.error_log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_for_http(self.url + "/v1/models", self.process)
        return self

    def stop(self) -> None:
        if self.process:
            stop(self.process, timeout=10)

    def served(self) -> list[tuple[int, int, str]]:
        """(worker pid, status, path) of every request served so far."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [(int(m[1]), int(m[2]), m[3]) for m in map(_ACCESS.match, lines) if m]

    def logs(self) -> str:
        return self.error_log.read_text() + (self.access_log.read_text() if self.access_log.exists() else "")


@contextmanager
def werkzeug_server(app: Flask) -> Iterator[str]:
    """`app` served over real HTTP on 127.0.0.1 from a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
