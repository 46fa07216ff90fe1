"""Two checkouts of the service side by side, one WeChat message at a time: did a change pay?

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.webhook_ab /tmp/before [--messages 3000]

Runs this checkout's service, the other checkout's service and the baseline (bench/baseline_app.py)
under the same gunicorn settings, on one redis-server and one instant upstream (nginx, as in
bench/webhook_overhead.py). Each round sends one new message to each of the three, in a random
order, over one kept-alive connection each, and times it; it prints each target's median and the
median of the paired differences. Pairing message by message cancels most of a shared machine's
drift, so a difference of a few tens of microseconds shows where wrk's rounds would hide it. A
message's work done after its response is sent still counts: the next message waits for it.
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import time
from pathlib import Path

from bench.webhook_overhead import serving
from bot.wechat import simulate
from tests.conftest import ACCOUNT
from tests.procs import ROOT


def send(connection: http.client.HTTPConnection, number: int) -> float:
    xml = simulate.message_xml(ACCOUNT, f"oAB{number:023d}", "text", Content="你好", MsgId=number)
    params, body = simulate.sign(ACCOUNT, xml, "safe")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    started = time.perf_counter()
    connection.request("POST", f"/wechat?{query}", body=body, headers={"Content-Type": "text/xml"})
    response = connection.getresponse()
    data = response.read()
    took = time.perf_counter() - started
    if response.status != 200 or b"<Encrypt>" not in data:
        raise RuntimeError(f"message {number}: HTTP {response.status} {data[:200]!r}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other", type=Path, help="another checkout of the service (git worktree add)")
    parser.add_argument("--messages", type=int, default=3000, help="messages per target")
    args = parser.parse_args()
    if not (args.other / "wsgi.py").exists():
        parser.error(f"{args.other} is not a checkout of the service (no wsgi.py)")
    apps = {"this": (ROOT, "wsgi:app"), "other": (args.other.resolve(), "wsgi:app")}
    apps["baseline"] = (ROOT, "bench.baseline_app:app")
    with serving(apps) as (ports, _):
        connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=10) for name, port in ports.items()}
        took: dict[str, list[float]] = {name: [] for name in apps}
        number = 0
        for _ in range(args.messages):
            for name in random.sample(list(apps), len(apps)):
                number += 1
                took[name].append(send(connections[name], number) * 1000)
    for name, times in took.items():
        print(f"{name:9} median {statistics.median(times):.3f} ms over {len(times)} messages")
    for a, b in (("this", "other"), ("this", "baseline"), ("other", "baseline")):
        paired = [x - y for x, y in zip(took[a], took[b], strict=True)]
        low, _, high = statistics.quantiles(paired, n=4)
        print(f"{a} - {b}: median {statistics.median(paired):+.3f} ms (quartiles {low:+.3f} to {high:+.3f})")


if __name__ == "__main__":
    main()
