"""An admin's `/ban add` on one worker is enforced by every worker within 5 s: one real gunicorn
with two gevent workers, each polling the list's version in its own background greenlet."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from bot.wechat import texts
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for

pytestmark = pytest.mark.slow


def posting(base: str):
    def post(params, body):
        response = requests.post(base + "/wechat", params=params, data=body, timeout=5)
        return response.status_code, response.content

    return post


def test_a_ban_reaches_both_workers_within_5_seconds(redis_server, upstream_server, redis, upstream):
    port = free_port()
    env = service_env(redis_server.url, upstream_server.url, BOT_ADMIN_OPENIDS=ADMIN, WECHAT_SECRET="x")
    service = start_gunicorn(env, port, workers=2)
    base, log = f"http://127.0.0.1:{port}", Path(service.log.name)
    try:
        follower = Follower(posting(base), ACCOUNT, "oFollower0000000000000000051")
        assert follower.say("你好新禁词") == "回答：你好新禁词"
        # Both workers have their list (a worker still booting would read the new word at its start,
        # and never need to rebuild): each says so once its app is built.
        workers = lambda since=0: set(re.findall(r"banned words: \d+ in use in worker (\d+)", log.read_text()[since:]))  # noqa: E731
        assert wait_for(lambda: len(workers()) == 2, timeout=30), log.read_text()[-2000:]
        before = len(log.read_text())
        banned_at = time.monotonic()
        assert Follower(posting(base), ACCOUNT, ADMIN).say("/ban add 新 禁 词") == "已添加，5 秒内在所有实例生效。"
        # every worker rebuilt its list: two processes said so since the ban
        assert wait_for(lambda: len(workers(before)) == 2, timeout=5), log.read_text()[-2000:]
        assert time.monotonic() - banned_at < 5
        # and each new connection, whichever worker takes it, refuses the word
        for _ in range(10):
            assert (
                Follower(posting(base), ACCOUNT, "oFollower0000000000000000052").say("新禁词?")
                == texts.QUESTION_REFUSED
            )
        assert upstream.calls_about("新禁词?") == 0
    finally:
        stop(service)
