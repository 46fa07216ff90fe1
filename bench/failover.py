"""What failing over between model upstreams costs a caller, and what a healthy single upstream costs
against the code before failover existed.

    .venv/bin/python -m bench.failover --before /tmp/failover-before [--rounds 6] [--calls 200]
    (the checkout before: git archive <commit> | tar -x -C /tmp/failover-before)

One redis-server, and upstream doubles on 127.0.0.1 (tests/doubles/upstream.py: instant answers).
Calls go in-process through Flask's test client to the OpenAI door (non-streaming and streaming).

1. Added latency, this checkout: call by call, one call with the backup alone (the baseline), one
   with a primary that refuses connections in front of it, every call failing over
   (BOT_UPSTREAM_FAILURES set high), and one with the default three failures, after which the
   primary is skipped for its cool-down. Reported: the median of the paired differences (each call
   against the baseline call just before it), `rounds` × `calls` pairs, and the baseline's median.
2. A primary that hangs past its 1 s timeout: a few calls, the median time to the backup's answer.
3. Throughput of a healthy single upstream, this checkout against --before: calls per second (one
   caller, sequential), each round a fresh process per checkout in the order A B B A, which cancels
   a shared machine's drift within the round. Reported: each checkout's median, and the median of the
   rounds' ratios (this checkout / before).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "请介绍一下你自己"}]


def app_with(redis_url: str, **settings: str):
    """An app and a key with a large balance, no rate limit, the given upstream settings."""
    from bot import create_app
    from bot.services import services

    config = {"BOT_ENV": "test", "REDIS_URL": redis_url, "BOT_SECRET": "b" * 40, "BOT_RATE_KEY_RPM": "0"}
    app = create_app({**config, "OPENAI_API_KEY": "sk-bench", **settings})
    with app.app_context():
        keys = services().keys
        key = keys.issue("oBench" + os.urandom(6).hex())[0]
        keys.grant(keys.fingerprint(key), 10**9)
    return app, key


def timed_calls(app, key: str, calls: int, stream: bool) -> list[float]:
    """Seconds per call, each checked for an answer."""
    client, took = app.test_client(), []
    body = {"model": "m", "messages": QUESTION, "stream": stream}
    for _ in range(calls):
        started = time.perf_counter()
        response = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        data = response.get_data()  # a stream is made while it is read
        took.append(time.perf_counter() - started)
        assert response.status_code == 200 and b"error" not in data, data[:300]
    return took


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def upstreams(*entries: tuple[str, str, float]) -> str:
    return json.dumps([{"name": n, "base_url": u, "timeout": t} for n, u, t in entries])


def added_latency(redis_url: str, backup: str, rounds: int, calls: int) -> dict[str, float]:
    """Median ms per call: the baseline, and what failing over from a refusing primary adds to it."""
    alone = {"OPENAI_BASE_URL": backup}
    refused = {"BOT_UPSTREAMS": upstreams(("primary", closed_port_url(), 5), ("backup", backup, 5))}
    configs = {"alone": alone, "every call": {**refused, "BOT_UPSTREAM_FAILURES": "1000"}, "default": refused}
    apps = {name: app_with(redis_url, **settings) for name, settings in configs.items()}
    found: dict[str, list[float]] = {}
    for stream in (False, True):
        kind = " stream" if stream else ""
        for _ in range(rounds * calls):
            took = {name: timed_calls(*apps[name], 1, stream)[0] for name in configs}
            found.setdefault(f"baseline (backup alone){kind}", []).append(took["alone"])
            for name in ("every call", "default"):
                found.setdefault(f"added, {name}{kind}", []).append(took[name] - took["alone"])
    return {name: statistics.median(values) * 1000 for name, values in found.items()}


def hanging(redis_url: str, backup: str, hang_url: str, calls: int = 5) -> float:
    """Median seconds to an answer with a primary that hangs past its 1 s timeout (every call tries it)."""
    entries = upstreams(("primary", hang_url, 1.0), ("backup", backup, 5))
    app, key = app_with(redis_url, BOT_UPSTREAMS=entries, BOT_UPSTREAM_FAILURES="1000")
    return statistics.median(timed_calls(app, key, calls, stream=False))


def throughput(redis_url: str, upstream_url: str, calls: int) -> tuple[float, float]:
    """Run inside a checkout: calls per second through one healthy upstream (OPENAI_BASE_URL), and
    the CPU time the service's process spent per call in µs (the upstream double runs elsewhere):
    the second barely moves when other work shares the machine, the first does."""
    app, key = app_with(redis_url, OPENAI_BASE_URL=upstream_url)
    timed_calls(app, key, calls // 10, stream=False)  # warm up
    cpu = time.process_time()
    wall = sum(timed_calls(app, key, calls, stream=False))
    return calls / wall, (time.process_time() - cpu) / calls * 1e6


def run_in(checkout: Path, redis_url: str, upstream_url: str, calls: int) -> tuple[float, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--throughput", redis_url, upstream_url, str(calls)]
    out = subprocess.run(command, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)}, capture_output=True)
    if out.returncode:
        raise RuntimeError(out.stderr.decode()[-2000:])
    rate, cpu = out.stdout.decode().strip().splitlines()[-1].split()
    return float(rate), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="a checkout from before failover (git archive … | tar -x)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--throughput", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.throughput:
        print(*throughput(args.throughput[0], args.throughput[1], int(args.throughput[2])))
        return
    import logging

    from bot.embedded import EmbeddedRedis
    from tests.doubles.upstream import UpstreamDouble

    logging.disable(logging.WARNING)  # a failover logs the refused primary: not what is timed
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    backup, hang = UpstreamDouble().start(), UpstreamDouble().start()
    hang.reset(latency=3.0)
    try:
        report(args, redis.url, backup.url, hang.url)
    finally:
        backup.stop()
        hang.stop()
        redis.stop()


def report(args: argparse.Namespace, redis_url: str, backup: str, hang_url: str) -> None:
    for name, ms in added_latency(redis_url, backup, args.rounds, args.calls).items():
        print(f"refusing primary: {name:32} median {ms:6.3f} ms per call")
    print(f"answer with a primary hanging past its 1 s timeout: median {hanging(redis_url, backup, hang_url):.3f} s")
    if args.before is None:
        return
    runs: dict[str, list[tuple[float, float]]] = {"this checkout": [], "before": []}
    ratios: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        this = [run_in(ROOT, redis_url, backup, args.calls)]
        before = [run_in(args.before, redis_url, backup, args.calls) for _ in range(2)]
        this.append(run_in(ROOT, redis_url, backup, args.calls))
        runs["this checkout"] += this
        runs["before"] += before
        ratios.append(tuple(sum(t[i] for t in this) / sum(b[i] for b in before) for i in (0, 1)))
    for name, values in runs.items():
        rate, cpu = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(f"healthy single upstream, {name:13}: median {rate:7.1f} calls/s, {cpu:6.0f} µs CPU per call")
    rate, cpu = (statistics.median(r[i] for r in ratios) for i in (0, 1))
    print(f"healthy single upstream, this / before, median of {len(ratios)} rounds: calls/s {rate:.3f}, CPU {cpu:.3f}")


if __name__ == "__main__":
    main()
