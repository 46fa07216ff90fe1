"""Many followers in the same second asking a model that streams long answers slowly, through
WeChat's 5-second window: how much of each answer they see, and when.

    .venv/bin/python -m bench.wechat_burst --stream [--followers 200] [--mode passive|customer_service]
        [--partial last|first|off] [--saturate 2]

The model double writes its first text after 1 s, then about 20 characters a second, answers of 600
characters (30 s in all). Two instances of the service (2 gevent workers each) share one redis-server;
WeChat's stand-in delivers each message up to three times with a 5 s deadline, alternating between
them. A follower reads each reply for a second, then sends 继续 until the answer says it is complete
(the follower rate, BOT_RATE_OPENID_RPM, is off: that many 继续 a minute would pass it).
--saturate N keeps N busy processes on the CPU for the whole run.

Prints: the share of followers whose last delivery carried answer text and how many characters, the
继续 replies needed, duplicate model calls, characters lost or repeated, and reply times (the share
later than 4.8 s); in customer_service mode, pushes per answer and the time to the first pushed text.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.wechat_burst import percentile, together
from bot.embedded import EmbeddedRedis
from bot.wechat import texts
from tests.conftest import ACCOUNT, WECHAT_SECRET
from tests.doubles.upstream import UpstreamDouble
from tests.doubles.wechat_api import WeChatApiDouble
from tests.procs import free_port, service_env, start_gunicorn, stop
from tests.wechat_servers import WeChatServers, body

SENTENCE = "这一句话正好有二十个字，用来测流式输出。"  # 20 characters
ANSWER = SENTENCE * 30  # 600 characters
LATE = 4.8  # seconds: a reply later than this is too close to WeChat's 5


class Run:
    def __init__(self, urls: list[str], wechat_api: WeChatApiDouble, push_mode: bool):
        self.urls, self.api, self.push_mode = urls, wechat_api, push_mode
        self.results: list[dict] = []
        self.lock = threading.Lock()

    def follower(self, i: int) -> None:
        openid = f"oStream{i:021d}"
        asked = time.monotonic()
        outcome = WeChatServers(self.urls, ACCOUNT).say(openid, f"问题{i}", 10**12 + i)
        result = {"took": [outcome.reply_took], "attempts": len(outcome.attempts), "continues": 0}
        replies = [outcome.reply or ""]
        result["shown_at_last"] = len(body(replies[0])[0]) if texts.STILL_WRITING in replies[0] else 0
        result["text_at_last"] = bool(result["shown_at_last"]) or body(replies[0])[0] == ANSWER
        if self.push_mode:
            replies = self.pushed(openid, asked, result)
        self.read_rest(openid, i, replies, result)
        result["text"] = "".join(body(r)[0] for r in replies if r not in (texts.WAITING, "") and "正在思考" not in r)
        with self.lock:
            self.results.append(result)

    def pushed(self, openid: str, asked: float, result: dict) -> list[str]:
        """The pushes this follower got, once the last says the answer is complete (or 60 s pass)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            calls = [c for c in self.api.calls_to("/cgi-bin/message/custom/send") if c.body["touser"] == openid]
            if calls and (calls[-1].body["text"]["content"].endswith(texts.COMPLETE) or len(calls) >= 5):
                result["pushes"], result["first_push"] = len(calls), calls[0].at - asked
                return [c.body["text"]["content"].removesuffix(texts.MORE) for c in calls]
            time.sleep(0.5)
        result["pushes"] = 0
        return []

    def read_rest(self, openid: str, i: int, replies: list[str], result: dict) -> None:
        """继续 after a second of reading, until the answer says it is complete (or 60 tries)."""
        while body(replies[-1])[1] not in (texts.COMPLETE, texts.CUT_OFF) and body(replies[-1])[0] != ANSWER:
            if result["continues"] >= 60:
                return
            time.sleep(1.0)
            urls = self.urls if result["continues"] % 2 else self.urls[::-1]
            more = WeChatServers(urls, ACCOUNT).say(openid, "继续", 2 * 10**12 + i * 100 + result["continues"])
            result["took"].append(more.reply_took)
            result["continues"] += 1
            replies.append((more.reply or "").removesuffix(texts.MORE))


def saturate(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_stream(args) -> None:
    followers = args.followers or 200
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    upstream.reset(latency=1.0, piece_chars=4, chunk_delay=0.2, answer=lambda m: ANSWER)
    api = WeChatApiDouble(ACCOUNT.appid, WECHAT_SECRET)
    env = service_env(
        redis.url, upstream.url, BOT_ENV="production", OPENAI_TIMEOUT="60", WECHAT_REPLY_MODE=args.mode,
        WECHAT_SECRET=WECHAT_SECRET, WECHAT_API_BASE_URL=api.url, BOT_WECHAT_PARTIAL=args.partial,
        BOT_RATE_OPENID_RPM="0",  # a follower here sends 继续 every second: far over 20 messages a minute
    )  # fmt: skip
    ports = [free_port(), free_port()]
    servers = [start_gunicorn(env, port, workers=args.workers) for port in ports]
    busy = saturate(args.saturate)
    run = Run([f"http://127.0.0.1:{port}" for port in ports], api, args.mode == "customer_service")
    try:
        wall = together([threading.Thread(target=run.follower, args=(i,)) for i in range(followers)])
    finally:
        for process in busy:
            process.kill()
        for server in servers:
            stop(server)
        upstream.stop()
        api.stop()
        redis.stop()
    report(run.results, upstream, args, wall)


def report(results: list[dict], upstream: UpstreamDouble, args, wall: float) -> None:
    n = len(results)
    questions = [r.body["messages"][-1]["content"] for r in upstream.received]
    took = [t for r in results for t in r["took"]]
    exact = sum(r["text"] == ANSWER for r in results)
    print(f"followers={n} mode={args.mode} partial={args.partial} saturate={args.saturate} wall={wall:.1f}s")
    print(f"model calls: {len(questions)}, duplicates: {len(questions) - len(set(questions))}")
    print(f"answers read exactly (nothing lost or repeated): {exact}/{n}")
    if args.mode == "passive":
        shown = [r["shown_at_last"] for r in results]
        print(f"last delivery carried answer text: {sum(r['text_at_last'] for r in results)}/{n}")
        print(f"characters shown by then: median {statistics.median(shown)}, min {min(shown)}, max {max(shown)}")
    else:
        pushes = [r.get("pushes", 0) for r in results]
        first = [r["first_push"] for r in results if "first_push" in r]
        print(f"pushes per answer: median {statistics.median(pushes)}, max {max(pushes)}")
        if first:
            print(f"question to first pushed text (s): median {statistics.median(first):.1f}, max {max(first):.1f}")
    continues = [r["continues"] for r in results]
    print(f"继续 replies to read everything: median {statistics.median(continues)}, max {max(continues)}")
    late = sum(t > LATE for t in took)
    print(
        f"reply times ({len(took)} replies, s): median {statistics.median(took):.3f}, "
        f"p99 {percentile(took, 0.99):.3f}, max {max(took):.3f}; later than {LATE} s: {late}"
    )
