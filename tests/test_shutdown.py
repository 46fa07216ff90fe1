"""Stopping the service, for real: a graceful SIGTERM finishes what is in flight, and a killed
gunicorn's unfinished WeChat answer is redone by the next instance once its lease has passed."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from bot.store import keyspace
from tests.conftest import ACCOUNT, TEST_SECRET, WECHAT_SECRET
from tests.procs import clean_env, free_port, start_gunicorn, stop, wait_for
from tests.wechat_servers import WeChatServers

pytestmark = pytest.mark.slow

WHO = "oShutdown000000000000000001"


def env_for(redis_server, upstream, wechat_api, **settings: str) -> dict[str, str]:
    return clean_env(
        BOT_ENV="test",
        REDIS_URL=redis_server.url,
        BOT_SECRET=TEST_SECRET,
        OPENAI_BASE_URL=upstream.url,
        OPENAI_TIMEOUT="10",
        WECHAT_TOKEN=ACCOUNT.token,
        WECHAT_AES_KEY=ACCOUNT.aes_key,
        WECHAT_APPID=ACCOUNT.appid,
        WECHAT_SECRET=WECHAT_SECRET,
        WECHAT_API_BASE_URL=wechat_api.url,
        **settings,
    )


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_sigterm_finishes_a_slow_request_and_a_background_answer(redis_server, upstream, wechat_api, issue_key, redis):
    # The WeChat answer takes longer than the API request: without waiting for it, its worker would exit first.
    upstream.reset(latency_for=lambda messages: 4.0 if messages[-1]["content"] == "慢慢想" else 2.0)
    env = env_for(
        redis_server, upstream, wechat_api, WECHAT_REPLY_MODE="customer_service", BOT_WECHAT_TIMEOUT="1",
        BOT_WECHAT_WINDOW="0.5",
    )  # fmt: skip
    port = free_port()
    process = start_gunicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert WeChatServers([base], ACCOUNT, deliveries=1).say(WHO, "慢慢想", 4242).reply == ""  # `success`
        key, answered = issue_key(), []
        body = {"api_secret_key": key, "messages": [{"role": "user", "content": "hi"}]}
        api = threading.Thread(
            target=lambda: answered.append(requests.post(base + "/api/v1/chat/completions", json=body, timeout=10))
        )
        api.start()
        assert wait_for(lambda: upstream.calls_about("hi") == 1)  # the request is with the model
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        api.join()
        assert answered[0].status_code == 200 and answered[0].json()["choices"][0]["message"]["content"] == "回答：hi"
        assert process.wait(timeout=30) == 0
        took = time.monotonic() - stopping
    finally:
        stop(process)
    pushed = [c.body["text"]["content"] for c in wechat_api.calls_to("/cgi-bin/message/custom/send")]
    assert pushed == ["回答：慢慢想"]  # the answer in flight at SIGTERM was still recorded and pushed
    assert redis.lrange(keyspace.history(WHO), 0, -1) == ["慢慢想", "回答：慢慢想"]
    print(f"\ngraceful stop took {took:.1f}s")


def test_an_answer_lost_with_a_killed_gunicorn_is_given_by_the_next_one(redis_server, upstream, wechat_api, redis):
    upstream.reset(latency=2.0)
    env = env_for(redis_server, upstream, wechat_api, BOT_LEASE_SECONDS="3")
    port = free_port()
    first = start_gunicorn(env, port)
    killer = kill_when(lambda: upstream.calls == 1, first)  # while the model is writing the answer
    with pytest.raises(requests.ConnectionError):  # the delivery dies with the worker running its call
        WeChatServers([f"http://127.0.0.1:{port}"], ACCOUNT, deliveries=1).say(WHO, "还记得吗", 4343)
    killer.join()
    stop(first)

    port = free_port()
    second = start_gunicorn(env, port)
    try:
        assert wait_for(lambda: lease_passed(redis, WHO, "4343"), timeout=10)  # WeChat's retry comes after it
        retry = WeChatServers([f"http://127.0.0.1:{port}"], ACCOUNT, deliveries=1).say(WHO, "还记得吗", 4343)
    finally:
        stop(second)
    assert retry.reply == "回答：还记得吗" and retry.reply_took < 4.5
    assert upstream.calls == 2  # asked again once, by the new instance
    assert redis.lrange(keyspace.history(WHO), 0, -1) == ["还记得吗", "回答：还记得吗"]


def lease_passed(redis, openid: str, msg_id: str) -> bool:
    """Whether the dead worker's claim on the message and its hold on the model slot have both run out."""
    lease = int(redis.hget(keyspace.message(openid, msg_id), "lease"))
    return time.time() * 1000 > lease and not redis.exists(keyspace.busy(openid))


def kill_when(condition, process) -> threading.Thread:
    """Kill the gunicorn (see kill_all) from another thread once `condition()` holds."""
    killer = threading.Thread(target=lambda: wait_for(condition) and kill_all(process))
    killer.start()
    return killer


def kill_all(process) -> None:
    """SIGKILL the master and its workers: no graceful anything."""
    for pid in [*worker_pids(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
