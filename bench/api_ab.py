"""Two checkouts side by side, API calls in-process: did a change to the JSON doors cost time?

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.api_ab /tmp/before [--rounds 10] [--calls 300]

One redis-server for both. Each round runs, for each checkout in a random order, a fresh process
that makes `calls` calls of each kind through Flask's test client with the offline model (no
upstream: the door, the chat core and Redis are what is timed) and reports its median per kind.
Prints each checkout's median of those medians and the median of the paired differences, round by
round, which cancels most of a shared machine's drift.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "请介绍一下你自己"}]
KINDS = {
    "spec": ("/api/v1/chat/completions", False, {}),
    "spec stream": ("/api/v1/chat/completions", False, {"stream": True}),
    "openai": ("/v1/chat/completions", True, {"model": "gpt-4o", "temperature": 0.5}),
    "openai stream": ("/v1/chat/completions", True, {"stream": True}),
}


def measure(redis_url: str, calls: int) -> dict[str, float]:
    """Run inside a checkout (PYTHONPATH): its app, one key, `calls` calls per kind; median µs each."""
    from bot import create_app

    try:
        from bot.services import services
    except ImportError:  # a checkout from before the container was named bot/services.py
        from bot.extensions import services

    app = create_app({"BOT_ENV": "test", "REDIS_URL": redis_url, "BOT_SECRET": "b" * 40, "BOT_RATE_KEY_RPM": "0"})
    with app.app_context():
        keys = services().keys
        key = keys.issue("oBench" + os.urandom(6).hex())[0]
        keys.grant(keys.fingerprint(key), 10**9)
    client, medians = app.test_client(), {}
    for kind, (path, bearer, extra) in KINDS.items():
        body = {"messages": QUESTION, **extra} | ({} if bearer else {"api_secret_key": key})
        headers = {"Authorization": f"Bearer {key}"} if bearer else {}
        took = []
        for _ in range(calls):
            started = time.perf_counter()
            response = client.post(path, json=body, headers=headers)
            response.get_data()  # a stream is made while it is read
            took.append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data()[:300]
        medians[kind] = statistics.median(took[calls // 10 :]) * 1e6  # the first tenth warms up
    return medians


def run(checkout: Path, redis_url: str, calls: int) -> dict[str, float]:
    """measure() in a process that imports `bot` from `checkout` (this file is run by its path)."""
    command = [sys.executable, __file__, "--measure", redis_url, str(calls)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other", type=Path, help="another checkout of the service (git worktree add)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300, help="calls per kind per round")
    args = parser.parse_args()
    from bot.embedded import EmbeddedRedis

    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    checkouts = {"this": ROOT, "other": args.other.resolve()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    try:
        for _ in range(args.rounds):
            for name in random.sample(list(checkouts), 2):
                results[name].append(run(checkouts[name], redis.url, args.calls))
    finally:
        redis.stop()
    for kind in KINDS:
        this, other = ([r[kind] for r in results[name]] for name in checkouts)
        paired = statistics.median(a - b for a, b in zip(this, other, strict=True))
        print(
            f"{kind:14} this {statistics.median(this):7.0f} µs  other {statistics.median(other):7.0f} µs  "
            f"paired this - other {paired:+6.0f} µs"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
