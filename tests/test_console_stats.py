"""The console's statistics that need more than /metrics' counters: WeChat answers by the delivery that
carried them, distinct active followers per hour and per day, and hits per banned word."""

from __future__ import annotations

import re
import threading

import pytest

from tests.conftest import ACCOUNT
from tests.console import admin_client
from tests.follower import Follower, flask_post, recorded

WHO = "oStatsFollower00000000000001"
# WeChat's deadline is 1 s here (window 0.5 s): deliveries arrive at 0, 1 and 2 s and decide by ~0.5,
# ~1.5 and ~2.4 s. An answer ready at 0.75 s is picked up by the 2nd on arrival, one at 1.75 s by the 3rd.
LATENCIES = {"快": 0.0, "慢": 0.75, "更慢": 1.75}


def summary(page: str, panel: str) -> str:
    """A panel's 合计 line, as a screen reader hears it under the chart."""
    found = re.search(rf'<p id="{panel}-summary">(.*?)</p>', page, re.S)
    assert found, f"no {panel} panel"
    return found.group(1)


@pytest.fixture
def fast(config):
    """WeChat's deadline shortened to 1 s (window 0.5 s), as tests/test_wechat_delivery.py plays it."""
    return {**config, "BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.5"}


def as_wechat_delivers(follower: Follower, text: str, msg_id: int) -> int:
    """Deliver a message as WeChat does: again each time 1 s passes without a reply, three times at
    most (a silent delivery is held open past that). The delivery whose reply came, or 0."""
    replies: list[str | None] = []
    for delivery in range(1, 4):
        sent = threading.Thread(target=lambda: replies.append(follower.say(text, msg_id=msg_id)))
        sent.start()
        sent.join(timeout=1.0)
        if replies and replies[-1] is not None:
            return delivery
    return 0


def test_answers_are_counted_by_the_delivery_that_carried_them(fast, make_app, upstream, redis):
    upstream.reset(latency_for=lambda messages: LATENCIES.get(messages[-1]["content"], 0.0))
    app = make_app(fast)
    client = app.test_client()
    followers = [Follower(flask_post(client), ACCOUNT, f"{WHO[:-1]}{i}") for i in range(len(LATENCIES))]
    played: list[int] = [0] * len(LATENCIES)

    def play(i: int, text: str) -> None:
        played[i] = as_wechat_delivers(followers[i], text, 900 + i)

    runs = [threading.Thread(target=play, args=(i, text)) for i, text in enumerate(LATENCIES)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert all(recorded(redis, f.openid) for f in followers)
    assert played == [1, 2, 3]  # the model's latency put each answer in its delivery
    app.extensions["stats_flush"].flush()
    browser = admin_client(app, client)
    panel = summary(browser.get("/admin/panels?span=day").text, "window")
    assert panel.startswith("合计：第 1 次推送内答复 1，第 2 次推送内答复 1，第 3 次推送内答复 1，先答一部分 0，")
    assert "【正在思考…】 0" in panel
    assert '<dd id="today-answered">1 / 1 / 1</dd>' in browser.get("/admin").text
    assert "第 3 次推送内答复 1" in summary(browser.get("/admin/panels?span=month").text, "window")
    metrics = client.get("/metrics").text  # the new counter on /metrics, the old outcome kept as it was
    assert 'xiaoyi_wechat_answered_total{delivery="2"}' in metrics
    assert 'xiaoyi_wechat_deliveries_total{outcome="in_window"}' in metrics


def test_a_fourth_delivery_counts_as_the_third_so_the_label_stays_one_of_three():
    from bot import metrics

    def seen(label: str) -> float:
        return metrics.ANSWERED.labels(label)._value.get()

    before = seen("3")
    metrics.count_answered(4)
    metrics.count_answered(10**9)
    assert seen("3") == before + 2
    assert {s.labels["delivery"] for f in metrics.ANSWERED.collect() for s in f.samples} <= {"1", "2", "3"}
