"""Time from process start to the first served request.

    .venv/bin/python -m bench.cold_start [--runs 5]

Starts gunicorn with the Procfile's settings (2 gevent workers) against a real redis-server, and
polls GET /healthz every 10 ms from the moment the process is spawned; prints each run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from bot.embedded import EmbeddedRedis
from tests.procs import ROOT, clean_env, free_port, python, stop


def first_request(env: dict[str, str]) -> float:
    port = free_port()
    command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app")
    started = time.monotonic()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:
                time.sleep(0.01)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    env = clean_env(REDIS_URL=redis.url, BOT_SECRET="c" * 40, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    try:
        times = [first_request(env) for _ in range(args.runs)]
    finally:
        redis.stop()
    print("runs (s):", " ".join(f"{t:.2f}" for t in times))
    print(f"median time to the first served request: {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
