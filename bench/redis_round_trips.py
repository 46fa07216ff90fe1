"""Redis round trips per request, per path: how many times the service talks to Redis.

    .venv/bin/python -m bench.redis_round_trips

Counts what the app's own client sends (a pipeline or a Lua script is one round trip), with a real
redis-server and an instant upstream double, the app in-process. Each path is run once to warm up
(scripts loaded) and then measured.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from redis.connection import AbstractConnection

from bot import create_app
from bot.background import NAMES
from bot.embedded import EmbeddedRedis
from bot.services import services
from tests.conftest import ACCOUNT
from tests.doubles.upstream import UpstreamDouble, refusing_url
from tests.follower import Follower, flask_post

_count = threading.local()
_lock = threading.Lock()
TRIPS = [0]
_send = AbstractConnection.send_packed_command


def _counting_send(self, command, check_health=True):
    # The background loops (bot/background.py: the banned-word poll, the system prompt poll, the
    # statistics flush) are no message's: they run in their own named threads here and are left out.
    if threading.current_thread().name not in NAMES:
        with _lock:
            TRIPS[0] += 1
    return _send(self, command, check_health)


def measure(action) -> int:
    """Round trips of one action, including the background work it starts (waited for)."""
    action()  # warm up: scripts loaded, pools connected
    time.sleep(0.3)
    TRIPS[0] = 0
    action()
    time.sleep(0.3)  # the background model call of a WeChat turn finishes and records itself
    return TRIPS[0]


def main() -> None:
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    config = {
        "REDIS_URL": redis.url, "BOT_SECRET": "r" * 40, "OPENAI_BASE_URL": upstream.url,
        "WECHAT_TOKEN": ACCOUNT.token, "WECHAT_AES_KEY": ACCOUNT.aes_key, "WECHAT_APPID": ACCOUNT.appid,
    }  # fmt: skip
    app = create_app(config)
    client = app.test_client()
    # The same account in plaintext mode (明文模式), whose signed queries the door ties to their message.
    plain_app = create_app({**config, "WECHAT_MESSAGE_MODE": "plain"})
    plain = iter(Follower(flask_post(plain_app.test_client()), ACCOUNT, f"oPT{i:025d}", "plain") for i in range(100))
    # Two upstreams, the first refusing: every call fails over (its health is this worker's memory).
    entries = [{"name": "down", "base_url": refusing_url()}, {"name": "up", "base_url": upstream.url}]
    failover_app = create_app({**config, "BOT_UPSTREAMS": json.dumps(entries), "BOT_UPSTREAM_FAILURES": "1000"})
    failover = failover_app.test_client()
    failing_over = iter(Follower(flask_post(failover), ACCOUNT, f"oFO{i:025d}") for i in range(100))
    with app.app_context():
        key = services().keys.issue("oRoundTrips")[0]
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "hi"}]}
    followers = iter(Follower(flask_post(client), ACCOUNT, f"oRT{i:025d}") for i in range(100))
    retry = Follower(flask_post(client), ACCOUNT, "oRetry")
    retry.say("once", msg_id=1)
    owed = Follower(flask_post(client), ACCOUNT, "oOwed")
    upstream.reset(answer=lambda m: "长" * 2000)  # every answer comes in two parts: one owed
    owed.say("long one")
    owed.say("long two")
    upstream.reset()
    AbstractConnection.send_packed_command = _counting_send
    try:
        paths = {
            "WeChat chat turn (answered in the first delivery)": lambda: next(followers).say("你好"),
            "WeChat chat turn in plaintext mode (WECHAT_MESSAGE_MODE=plain)": lambda: next(plain).say("你好"),
            "WeChat retry of an answered message": lambda: retry.say("once", msg_id=1),
            "WeChat 继续 (an owed part)": lambda: owed.say("继续"),
            "WeChat key request (issued)": lambda: next(followers).say("key"),
            "WeChat key request (shown again)": lambda: retry.say("key"),
            "spec API call (/api/v1/chat/completions)": lambda: client.post("/api/v1/chat/completions", json=body),
            "OpenAI door call (/v1/chat/completions)": lambda: client.post(
                "/v1/chat/completions", json={"messages": body["messages"]}, headers={"Authorization": f"Bearer {key}"}
            ),
            "WeChat chat turn failing over from a refusing upstream": lambda: next(failing_over).say("你好"),
            "spec API call failing over from a refusing upstream": lambda: failover.post(
                "/api/v1/chat/completions", json=body
            ),
        }
        for name, action in paths.items():
            print(f"{measure(action):>3}  {name}")
    finally:
        AbstractConnection.send_packed_command = _send
        app.extensions["bot"].close()
        plain_app.extensions["bot"].close()
        failover_app.extensions["bot"].close()
        upstream.stop()
        redis.stop()


if __name__ == "__main__":
    main()
