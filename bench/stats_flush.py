"""What the console's statistics flush costs a worker when every message comes from a new follower.

    .venv/bin/python -m bench.stats_flush [--openids 6500] [--flushes 8]

Each round adds `--openids` new followers to a worker's tally (bot/tally.py) and as many answered
messages to its counters, then flushes them (bot/console/traffic.py) into a real redis-server, and
times the flush in this process's CPU. 6,500 is a worker's 10 s at 650 new followers a second, about
what one of two gevent workers answers at saturation on this machine. Prints each flush's CPU time
and its median share of a worker's 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import redis

from bot import metrics
from bot.console.traffic import FLUSH_SECONDS, Flusher
from bot.embedded import EmbeddedRedis
from bot.tally import Tally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--openids", type=int, default=6500, help="new followers per flush")
    parser.add_argument("--flushes", type=int, default=8)
    args = parser.parse_args()
    server = EmbeddedRedis(Path(tempfile.mkdtemp()) / "redis", persist=False).start()
    try:
        tally = Tally()
        flusher = Flusher(redis.Redis.from_url(server.url), tally)
        took = []
        for round_ in range(args.flushes):
            for i in range(args.openids):
                tally.saw(f"oFlush{round_:04d}{i:018d}")
                metrics.count_request("wechat", 200, "ok")
            started = time.process_time()
            if not flusher.flush():
                raise RuntimeError("the flush wrote nothing")
            took.append((time.process_time() - started) * 1000)
    finally:
        server.stop()
    median = statistics.median(took)
    print(f"flush CPU per {args.openids} new followers (ms): {', '.join(f'{t:.1f}' for t in took)}")
    print(f"median {median:.1f} ms: {median / (FLUSH_SECONDS * 1000):.2%} of a worker's {FLUSH_SECONDS} s")


if __name__ == "__main__":
    main()
