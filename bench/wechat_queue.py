"""`bench.wechat_burst --queued N`: questions queued behind each follower's slow first one.

What waiting for a follower's model slot costs (Redis scripts and commands per second, CPU of the
service and of Redis), measured once every delivery has ended and before the slow answers come, so
nothing else runs; then whether each follower's answers all came, in the order asked.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis as redis_py

from bot.embedded import EmbeddedRedis
from bot.store import keyspace
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.doubles.upstream import UpstreamDouble
from tests.procs import ROOT, free_port, python, service_env, stop, wait_for_http
from tests.wechat_servers import WeChatServers

FAST = 0.2  # seconds the model takes for every question but the first


@dataclass
class Figures:
    waited: float = 0.0  # seconds measured
    evalsha: float = 0.0  # per second
    commands: float = 0.0  # per second
    service_cpu: float = 0.0  # % of one core
    redis_cpu: float = 0.0
    answered: int = 0  # followers who got every answer
    collected_in_order: int = 0  # … and collected them (继续) in the order asked
    in_order: int = 0  # followers whose questions reached the model in the order asked


def start_service(checkout: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app")
    here = {**env, "WEB_CONCURRENCY": str(workers), "PYTHONPATH": str(checkout)}
    process = subprocess.Popen(command, cwd=checkout, env=here, stderr=subprocess.DEVNULL)
    wait_for_http(f"http://127.0.0.1:{port}/wechat", process)
    return process, port


def cpu_seconds(master: psutil.Process) -> float:
    total = 0.0
    for process in [master, *master.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def redis_sample(client: redis_py.Redis) -> tuple[int, int, float]:
    """(EVALSHA calls, all commands, CPU seconds) of Redis so far."""
    stats, cpu = client.info("commandstats"), client.info("cpu")
    calls = sum(v["calls"] for v in stats.values())
    return stats.get("cmdstat_evalsha", {}).get("calls", 0), calls, cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def follower(wechat: WeChatServers, client, i: int, queued: int, sent: threading.Barrier, outcome: list) -> None:
    """Ask q0 … q<queued>, each once the one before has reached the service (its claim is in Redis),
    so they arrive in that order; then, once the answers may be in, collect them with 继续."""
    openid, questions = f"oQueue{i:022d}", [f"问题{i}-{k}" for k in range(queued + 1)]
    asking = []
    for k, question in enumerate(questions):
        msg_id = 10**12 + i * 1000 + k
        asking.append(threading.Thread(target=wechat.say, args=(openid, question, msg_id)))
        asking[-1].start()
        deadline = time.monotonic() + 5
        while not client.exists(keyspace.message(openid, str(msg_id))) and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in asking:
        thread.join()
    sent.wait()
    sent.wait()  # the measuring is over
    answers, tries = [], 0
    while tries < 4 * (queued + 1) + 60:
        reply = wechat.say(openid, "继续", 2 * 10**12 + i * 1000 + tries).reply or ""
        tries += 1
        if reply.startswith(texts.NOTHING_OWED):
            break
        if reply.startswith(texts.WAITING):
            time.sleep(1.0)
            continue
        answers.append(reply.removesuffix(texts.MORE))
    expected = [f"回答：{q}" for q in questions]
    outcome[i] = "in order" if answers == expected else "all" if sorted(answers) == sorted(expected) else "lost"
    if outcome[i] == "lost":
        missing, unexpected = set(expected) - set(answers), set(answers) - set(expected)
        print(f"{openid}: missing {sorted(missing)}, unexpected {sorted(unexpected)}")


def run_one(checkout: Path, args, redis: EmbeddedRedis, upstream: UpstreamDouble) -> Figures:
    client = redis_py.Redis.from_url(redis.url, decode_responses=True)
    client.flushall()
    client.config_resetstat()
    upstream.reset(latency_for=lambda m: args.latency if m[-1]["content"].endswith("-0") else FAST)
    # Each follower sends 20 questions and then 继续 until all are collected: every message counts
    # toward the follower's rate, so the default 20 a minute would refuse the collecting ones.
    env = service_env(redis.url, upstream.url, BOT_ENV="production", OPENAI_TIMEOUT="60", BOT_RATE_OPENID_RPM="0")
    process, port = start_service(checkout, env, args.workers)
    figures = Figures()
    try:
        wechat = WeChatServers([f"http://127.0.0.1:{port}"], ACCOUNT, timeout=5.0)
        sent, outcome = threading.Barrier(args.followers + 1), ["lost"] * args.followers
        threads = [
            threading.Thread(target=follower, args=(wechat, client, i, args.queued, sent, outcome))
            for i in range(args.followers)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        sent.wait()  # every delivery has ended: the questions only wait now
        figures = measure(client, psutil.Process(process.pid), started + args.latency - 1.0)
        sent.wait()
        for thread in threads:
            thread.join()
    finally:
        stop(process)
        client.close()
    figures.answered = sum(1 for o in outcome if o != "lost")
    figures.collected_in_order = outcome.count("in order")
    figures.in_order = in_order(upstream, args.followers, args.queued)
    return figures


def measure(client: redis_py.Redis, master: psutil.Process, until: float) -> Figures:
    time.sleep(0.5)
    begun, service = time.monotonic(), cpu_seconds(master)
    evalsha, commands, cpu = redis_sample(client)
    time.sleep(max(0.0, until - begun))
    span = time.monotonic() - begun
    evalsha2, commands2, cpu2 = redis_sample(client)
    return Figures(
        span, (evalsha2 - evalsha) / span, (commands2 - commands) / span,
        100 * (cpu_seconds(master) - service) / span, 100 * (cpu2 - cpu) / span,
    )  # fmt: skip


def in_order(upstream: UpstreamDouble, followers: int, queued: int) -> int:
    asked: dict[str, list[int]] = {}
    for request in upstream.received:
        question = request.body["messages"][-1]["content"]
        who, _, k = question.removeprefix("问题").partition("-")
        asked.setdefault(who, []).append(int(k))
    return sum(1 for i in range(followers) if asked.get(str(i)) == list(range(queued + 1)))


def run_queued(parser: argparse.ArgumentParser, args) -> None:
    args.followers, args.latency = args.followers or 20, args.latency or 30.0
    if args.latency < 20:
        parser.error("--latency must be at least 20 s with --queued: the deliveries take 15 s, then it measures")
    checkouts = {"this": ROOT}
    if args.against:
        if not (args.against / "wsgi.py").exists():
            parser.error(f"{args.against} is not a checkout of the service (no wsgi.py)")
        checkouts["other"] = args.against.resolve()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    try:
        results = {name: run_one(checkout, args, redis, upstream) for name, checkout in checkouts.items()}
    finally:
        upstream.stop()
        redis.stop()
    print(
        f"followers={args.followers} queued={args.queued} each, first answer after {args.latency}s, "
        f"the others {FAST}s; workers={args.workers}"
    )
    print(f"{'':42}" + "".join(f"{name:>12}" for name in results))
    rows = [
        ("seconds measured, while the questions wait", "waited", "{:.1f}"),
        ("EVALSHA per second", "evalsha", "{:,.0f}"),
        ("Redis commands per second", "commands", "{:,.0f}"),
        ("service CPU, % of a core", "service_cpu", "{:.1f}"),
        ("redis-server CPU, % of a core", "redis_cpu", "{:.1f}"),
        ("followers asked of the model in order", "in_order", "{}"),
        (f"followers with all {args.queued + 1} answers (继续)", "answered", "{}"),
        ("  … collected in the order asked", "collected_in_order", "{}"),
    ]
    for label, field, form in rows:
        print(f"{label:42}" + "".join(f"{form.format(getattr(r, field)):>12}" for r in results.values()))
