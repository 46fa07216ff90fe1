"""Many followers writing in the same second to a slow model, through WeChat's 5-second window.

    .venv/bin/python -m bench.wechat_burst [--followers 200] [--latency 8] [--workers 2]
    .venv/bin/python -m bench.wechat_burst --queued 19 [--followers 20] [--latency 30] [--against DIR]
    .venv/bin/python -m bench.wechat_burst --stream [--mode customer_service] [--saturate 2]  (bench/wechat_stream.py)

Starts a real redis-server, an upstream double that answers after --latency seconds, and the
service under gunicorn (the Procfile's settings). A WeChat stand-in delivers each follower's message
with a 5 s deadline, up to three times; a follower told 【正在思考…】 sends 继续 until the answer
comes. Prints how many were answered and how, duplicate model calls, and delivery response times.

--queued N: each follower sends N more questions in quick succession while the model is on their first
(only that one is slow); they wait for the follower's model slot. Prints what the waiting costs
once every delivery has ended and before the slow answers come: scripts (EVALSHA) and all commands
Redis ran per second (INFO commandstats), and the CPU of the service's processes and of Redis; then
whether every answer came, collected with 继续, in the order asked. --against DIR runs the same
after this checkout on another one (git worktree add DIR <commit>), on the same Redis and model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bot.embedded import EmbeddedRedis
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.doubles.upstream import UpstreamDouble
from tests.procs import free_port, service_env, start_gunicorn, stop
from tests.wechat_servers import WeChatServers


def together(threads: list[threading.Thread]) -> float:
    """Start every thread at once and wait for all: the seconds the whole burst took."""
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def follower(wechat: WeChatServers, i: int, results: list) -> None:
    openid = f"oBench{i:022d}"
    outcome = wechat.say(openid, f"问题{i}", 10**12 + i)
    how, took = "in window", [outcome.reply_took] if outcome.reply else []
    reply = outcome.reply
    tries = 0
    while reply in (texts.THINKING, texts.WAITING) and tries < 60:
        how = "by 继续"
        time.sleep(1.0)
        more = wechat.say(openid, "继续", 2 * 10**12 + i * 100 + tries)
        took.append(more.reply_took)
        reply, tries = more.reply, tries + 1
    results[i] = (how if reply == f"回答：问题{i}" else "lost", outcome.attempts, took)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=None, help="200; 20 with --queued")
    parser.add_argument("--latency", type=float, default=None, help="8 s; 30 s (the first questions) with --queued")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queued", type=int, default=0, help="questions per follower waiting behind the first")
    parser.add_argument("--against", type=Path, help="with --queued: another checkout, run after this one")
    parser.add_argument("--stream", action="store_true", help="a model streaming 600-character answers slowly")
    parser.add_argument("--mode", default="passive", choices=["passive", "customer_service"], help="with --stream")
    parser.add_argument("--partial", default="last", choices=["last", "first", "off"], help="with --stream")
    parser.add_argument("--saturate", type=int, default=0, help="busy processes kept on the CPU meanwhile")
    args = parser.parse_args()
    if args.stream:
        from bench.wechat_stream import run_stream

        return run_stream(args)
    if args.queued:
        from bench.wechat_queue import run_queued

        return run_queued(parser, args)
    args.followers, args.latency = args.followers or 200, args.latency or 8.0

    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    upstream.reset(latency=args.latency)
    env = service_env(redis.url, upstream.url, BOT_ENV="production", OPENAI_TIMEOUT="60")
    port = free_port()
    server = start_gunicorn(env, port, workers=args.workers)
    try:
        wechat = WeChatServers([f"http://127.0.0.1:{port}"], ACCOUNT, timeout=5.0)
        results: list = [None] * args.followers
        wall = together([threading.Thread(target=follower, args=(wechat, i, results)) for i in range(args.followers)])
    finally:
        stop(server)
        upstream.stop()
        redis.stop()

    hows = [r[0] for r in results]
    took = [t for r in results for t in r[2]]
    questions = [r.body["messages"][-1]["content"] for r in upstream.received]
    duplicates = len(questions) - len(set(questions))
    print(f"followers={args.followers} latency={args.latency}s workers={args.workers} wall={wall:.1f}s")
    print(
        f"answered: {hows.count('in window') + hows.count('by 继续')}/{args.followers} "
        f"(in window {hows.count('in window')}, by 继续 {hows.count('by 继续')}, lost {hows.count('lost')})"
    )
    print(f"model calls: {len(questions)} for {args.followers} messages, duplicates: {duplicates}")
    attempts = [len(r[1]) for r in results]
    print(f"deliveries per message: median {statistics.median(attempts)}, max {max(attempts)}")
    print(
        f"reply time of answering deliveries (s): median {statistics.median(took):.3f}, "
        f"p99 {percentile(took, 0.99):.3f}, max {max(took):.3f}"
    )


if __name__ == "__main__":
    main()
