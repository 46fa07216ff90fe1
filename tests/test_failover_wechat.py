"""WeChat's window with a hanging primary and a healthy backup, for real: gunicorn (one gevent worker,
so one worker's view of the upstreams), WeChat's 5 s deadline scaled down 5 times to 1 s as in
tests/test_wechat_window.py. The primary's timeout (1.5 s here, 7.5 s at WeChat's real timing) is
longer than a delivery's window and shorter than WeChat's three deliveries."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import requests

from bot.store import keyspace
from tests.conftest import ACCOUNT
from tests.follower import recorded
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for
from tests.wechat_servers import WeChatServers

pytestmark = pytest.mark.slow

SCALE = 0.2  # WeChat's 5 s deadline becomes 1 s
PRIMARY_TIMEOUT = 1.5
COOLDOWN = 3.0


@pytest.fixture(scope="module", params=["passive", "customer_service"])
def service(request, redis_server, upstream_server, backup_server, wechat_api_server):
    entries = [
        {"name": "primary", "base_url": upstream_server.url, "timeout": PRIMARY_TIMEOUT},
        {"name": "backup", "base_url": backup_server.url, "timeout": 5},
    ]
    env = service_env(
        redis_server.url,
        upstream_server.url,
        BOT_UPSTREAMS=json.dumps(entries),
        BOT_UPSTREAM_FAILURES="1",
        BOT_UPSTREAM_COOLDOWN=str(COOLDOWN),
        WECHAT_SECRET="wechat-app-secret",
        WECHAT_API_BASE_URL=wechat_api_server.url,
        WECHAT_REPLY_MODE=request.param,
        BOT_WECHAT_TIMEOUT=str(5 * SCALE),
        BOT_WECHAT_WINDOW="0.75",
    )
    port = free_port()
    process = start_gunicorn(env, port, workers=1)
    yield request.param, f"http://127.0.0.1:{port}"
    stop(process)


def openid(name: str) -> str:
    return f"o{name:0>27}"


def pushes_to(wechat_api, who: str) -> list[str]:
    calls = wechat_api.calls_to("/cgi-bin/message/custom/send")
    return [c.body["text"]["content"] for c in calls if c.body["touser"] == who]


def test_a_hanging_primary_never_delays_a_reply_and_the_backup_answers(service, redis, upstream, backup, wechat_api):
    mode, url = service
    upstream.reset(latency=10.0)  # hangs far past its timeout
    wechat = WeChatServers([url], ACCOUNT, timeout=5 * SCALE)

    first = wechat.say(openid("hang1"), "q1", 9700)
    assert first.reply_took < 5 * SCALE  # the delivery that replied did so before WeChat's deadline
    if mode == "passive":
        # The first delivery's window closes while the primary hangs: silence, and WeChat delivers
        # again; the backup's answer, asked once the primary timed out, reaches the second delivery.
        assert first.attempts == ["timeout", "answered"] and first.reply == "备用：q1"
        assert PRIMARY_TIMEOUT < first.answered_after < 2 * 5 * SCALE
    else:  # the first window's end says `success`; the backup's answer is pushed once it exists
        assert first.attempts == ["answered"] and first.reply == ""
        assert wait_for(lambda: pushes_to(wechat_api, openid("hang1")) == ["备用：q1"])

    # This worker now skips the primary for its cool-down: the next message is answered at once.
    second = wechat.say(openid("hang2"), "q2", 9701)
    assert second.attempts == ["answered"] and second.reply == "备用：q2" and second.reply_took < 5 * SCALE
    assert (upstream.calls_about("q1"), upstream.calls_about("q2")) == (1, 0)
    assert backup.calls_about("q1") == backup.calls_about("q2") == 1  # one model answer per message
    for name, question in (("hang1", "q1"), ("hang2", "q2")):
        assert recorded(redis, openid(name))
        assert redis.lrange(keyspace.history(openid(name)), 0, -1) == [question, "备用：" + question]
    log = (Path(tempfile.gettempdir()) / f"xiaoyi-gunicorn-{url.rsplit(':', 1)[1]}.log").read_text()
    assert f"wechat {openid('hang1')} msg 9700 answered in" in log  # the turn's line names both upstreams
    assert "upstream=backup failed=primary:timeout" in log

    # Its cool-down over, the next message tries it again, and this time it hangs the way a stream
    # does: headers and keep-alive comments in time, but no text. It is failed over at its timeout all
    # the same, and the reply still comes by WeChat's deadline.
    upstream.reset(keepalive=100, chunk_delay=0.1)
    assert wait_for(lambda: primary_state(url) == "trial", timeout=COOLDOWN + 5)
    third = wechat.say(openid("hang3"), "q3", 9702)
    assert third.reply_took < 5 * SCALE and upstream.calls_about("q3") == 1
    if mode == "passive":
        assert third.attempts == ["timeout", "answered"] and third.reply == "备用：q3"
    else:
        assert wait_for(lambda: pushes_to(wechat_api, openid("hang3")) == ["备用：q3"])


def primary_state(url: str) -> str:
    upstreams = requests.get(url + "/healthz?upstreams=1", timeout=2).json()["upstreams"]
    return {u["name"]: u["state"] for u in upstreams}["primary"]
