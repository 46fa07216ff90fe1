"""A reply decided at its delivery's deadline must still reach WeChat before its 5 s when the machine is
loaded: the time the reply itself takes to leave (rendering, encrypting, writing it) makes the next
deliveries decide earlier, as a worker that woke late does."""

from __future__ import annotations

import threading
import time

import pytest

from bot.wechat.protocol import WeChatProtocol
from tests.conftest import ACCOUNT
from tests.follower import Follower

pytestmark = pytest.mark.slow

WHO = "oClock0000000000000000000001"
# WeChat's deadline shortened to 1 s; a reply later than 0.96 s is what 4.8 s of 5 is in real life.
SETTINGS = {"BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.9", "OPENAI_TIMEOUT": "10"}
SETTINGS["BOT_RATE_OPENID_RPM"] = "0"
LATE = 0.96
SLOW_REPLY = 0.2  # seconds a loaded machine takes to render and encrypt one reply


def closing_post(client):
    """Posts as a WSGI server does: the response is closed once its body is written."""

    def post(params: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with client.post("/wechat", query_string=params, data=body, content_type="text/xml") as response:
            return response.status_code, response.data

    return post


def timed(follower: Follower, text: str, msg_id: int) -> tuple[str | None, float]:
    started = time.monotonic()
    reply = follower.say(text, msg_id)
    return reply, time.monotonic() - started


def test_replies_slow_to_leave_make_the_next_ones_decide_earlier(config, make_app, upstream, monkeypatch):
    follower = Follower(closing_post(make_app({**config, **SETTINGS}).test_client()), ACCOUNT, WHO)
    upstream.reset(latency=8.0)  # the model writes nothing while the follower asks for it
    render = WeChatProtocol.render
    monkeypatch.setattr(WeChatProtocol, "render", lambda *a: (time.sleep(SLOW_REPLY), render(*a))[1])
    # WeChat's first two deliveries (silent), then the last, which defers with 【正在思考…】.
    silent = [threading.Thread(target=follower.say, args=("慢问题", 9100)) for _ in range(2)]
    for delivery in silent:
        delivery.start()
    for delivery in silent:
        delivery.join()
    placeholder, took = timed(follower, "慢问题", 9100)
    assert placeholder and placeholder.startswith("【正在思考…】")
    # Each 继续 waits for the answer until its deadline: the first replies late (its reply took
    # SLOW_REPLY to leave after a decision planned for the last delivery's margin), the next in time.
    times = [took] + [timed(follower, "继续", 9200 + i)[1] for i in range(3)]
    assert times[-1] < LATE and times[-2] < LATE, times
