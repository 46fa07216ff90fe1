"""Redis memory one follower can occupy, whatever they send: a flood of every kind of message.

    .venv/bin/python -m bench.follower_memory [--messages 500] [--rpm 20]

One follower sends `--messages` deliveries as fast as the app takes them (the app in-process, a real
redis-server, an instant model double answering 2,000 characters): over-long texts (2,001 and
10,005 characters), key requests, images, subscribe events, 继续 and questions of 2,000 characters,
in turn. Prints the bytes of that follower's keys (MEMORY USAGE), the number of message claims and
their longest time to live, after the flood and after a second, equal flood.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from bot import create_app
from bot.embedded import EmbeddedRedis
from tests.conftest import ACCOUNT
from tests.doubles.upstream import UpstreamDouble
from tests.follower import Follower, flask_post

OPENID = "oMemory00000000000000000001"


def occupied(redis) -> tuple[int, int, int]:
    """(bytes, message claims, longest claim TTL in s) of the follower's keys."""
    keys = list(redis.scan_iter(match=f"bot:{{u:{OPENID}}}*", count=1000))
    claims = [k for k in keys if b":msg:" in k]
    return sum(redis.memory_usage(k) or 0 for k in keys), len(claims), max((redis.ttl(c) for c in claims), default=0)


def flood(follower: Follower, count: int) -> None:
    sends = itertools.cycle([
        lambda: follower.say("长" * 2001), lambda: follower.say("长" * 10_005), lambda: follower.say("key"),
        lambda: follower.deliver("image", PicUrl="http://example.invalid/p.png", MsgId=next(ids)),
        lambda: follower.event("subscribe"), lambda: follower.say("继续"), lambda: follower.say("问" * 2000),
    ])  # fmt: skip
    for send in itertools.islice(sends, count):
        send()


ids = itertools.count(10**15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rpm", type=int, default=20)
    options = parser.parse_args()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    upstream.reset(answer=lambda messages: "答" * 2000)
    app = create_app({
        "REDIS_URL": redis.url, "BOT_SECRET": "m" * 40, "OPENAI_BASE_URL": upstream.url,
        "WECHAT_TOKEN": ACCOUNT.token, "WECHAT_AES_KEY": ACCOUNT.aes_key, "WECHAT_APPID": ACCOUNT.appid,
        "BOT_RATE_OPENID_RPM": str(options.rpm), "BOT_WECHAT_WINDOW": "0.5", "BOT_WECHAT_TIMEOUT": "1",
    })  # fmt: skip
    client = app.extensions["bot"].redis.__class__.from_url(redis.url)
    follower = Follower(flask_post(app.test_client()), ACCOUNT, OPENID)
    try:
        for round_ in (1, 2):
            started = time.monotonic()
            flood(follower, options.messages)
            time.sleep(0.5)  # the last model calls record their turns
            size, claims, ttl = occupied(client)
            took = time.monotonic() - started
            print(
                f"after flood {round_} ({options.messages} messages in {took:.1f} s): {size / 1024:.1f} KiB, "
                f"{claims} message claims, longest claim TTL {ttl} s, model calls so far {upstream.calls}"
            )
    finally:
        client.close()
        app.extensions["bot"].close()
        upstream.stop()
        redis.stop()


if __name__ == "__main__":
    main()
