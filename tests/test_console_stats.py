"""The console's statistics that need more than /metrics' counters: WeChat answers by the delivery that
carried them, distinct active followers per hour and per day, and hits per banned word."""

from __future__ import annotations

import re
import threading
from datetime import datetime

import pytest
import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot import metrics
from bot.console.dashboard import total
from bot.console.traffic import Flusher, active_key, hour_key, hour_of, read_hours, words_key
from bot.ids import CHINA
from bot.services import services
from bot.tally import Tally
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.console import admin_client
from tests.follower import Follower, flask_post, recorded
from tests.procs import wait_for

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
    sent: list[threading.Thread] = []
    answered = 0
    for delivery in range(1, 4):
        sent.append(threading.Thread(target=lambda: replies.append(follower.say(text, msg_id=msg_id))))
        sent[-1].start()
        sent[-1].join(timeout=1.0)
        if replies and replies[-1] is not None:
            answered = delivery
            break
    for thread in sent:  # the silent deliveries end too: no request of this test outlives it
        thread.join()
    return answered


@pytest.mark.slow  # WeChat's timing, scaled to 1 s: about 3 s
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


def test_a_delivery_that_finds_success_already_sent_is_not_counted_as_an_answer(fast, make_app, upstream, wechat_api):
    upstream.reset(latency=0.8)  # past the window: `success` now, the answer pushed when it is written
    app = make_app({**fast, "WECHAT_REPLY_MODE": "customer_service"})
    client = app.test_client()
    follower = Follower(flask_post(client), ACCOUNT, WHO)
    assert follower.say("慢慢说", msg_id=950) is None  # `success`, which WeChat did not get: it delivers again
    assert follower.say("慢慢说", msg_id=950) is None  # the same `success`, no answer carried
    assert wait_for(lambda: wechat_api.calls_to("/cgi-bin/message/custom/send"), timeout=5)  # the answer, pushed
    app.extensions["stats_flush"].flush()
    assert '<dd id="today-answered">0 / 0 / 0</dd>' in admin_client(app, client).get("/admin").text


def test_a_fourth_delivery_counts_as_the_third_so_the_label_stays_one_of_three():
    def seen(label: str) -> float:
        return metrics.ANSWERED.labels(label)._value.get()

    before = seen("3")
    metrics.count_answered(4)
    metrics.count_answered(10**9)
    assert seen("3") == before + 2
    assert {s.labels["delivery"] for f in metrics.ANSWERED.collect() for s in f.samples} <= {"1", "2", "3"}


# --- active followers ---------------------------------------------------------------------------


def active(redis, bucket: str) -> int:
    return redis.pfcount(active_key(bucket))


def table_rows(page: str, table: str) -> list[list[str]]:
    """A table's body rows as cells of text (newest first, as the panels list them)."""
    body = page.split(f'id="{table}"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in body.split("</tr>") if "<td>" in row]


def test_distinct_followers_who_chatted_or_called_the_api_are_counted_per_hour_and_day(app, client, issue_key, redis):
    chatters = [Follower(flask_post(client), ACCOUNT, f"oStatsChat{i:018d}") for i in range(3)]
    for follower in chatters:
        assert follower.say("你好")
    assert chatters[0].say("再问一句")  # twice: still one follower
    assert chatters[1].say("继续")  # collecting an answer is chatting too
    visitor = Follower(flask_post(client), ACCOUNT, "oStatsVisitor000000000000001")
    visitor.click("GET_KEY")  # a menu click and a key request are not chatting
    visitor.say("key")
    key = issue_key("oStatsApi0000000000000000001")
    ok = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}
    assert client.post("/api/v1/chat/completions", json=ok).status_code == 200  # the key's owner was active
    forged = {**ok, "api_secret_key": "sk-" + "y" * 48}
    assert client.post("/api/v1/chat/completions", json=forged).status_code == 401  # nobody's: not counted
    now = datetime.now(CHINA)
    assert app.extensions["stats_flush"].flush(now=now) > 0
    hour = hour_of(now)
    assert (active(redis, hour), active(redis, hour[:8])) == (4, 4)
    assert 0 < redis.ttl(active_key(hour)) <= 91 * 86400
    browser = admin_client(app, client)  # the admin's /console: a command, not a chat
    assert '<dd id="today-followers">4</dd>' in browser.get("/admin").text
    assert table_rows(browser.get("/admin/panels?span=day").text, "table-active")[0] == [f"{hour[8:]}:00", "4"]
    assert table_rows(browser.get("/admin/panels?span=month").text, "table-active")[0][1] == "4"


def test_two_workers_that_saw_the_same_follower_count_them_once(config, make_app, redis):
    workers = [make_app(config), make_app(config)]
    same = "oStatsTwoWorkers000000000001"
    for i, worker in enumerate(workers):
        assert Follower(flask_post(worker.test_client()), ACCOUNT, same).say(f"第 {i} 个问题")
        assert recorded(redis, same)
    assert Follower(flask_post(workers[1].test_client()), ACCOUNT, "oStatsTwoWorkers000000000002").say("你好")
    now = datetime.now(CHINA)
    for worker in workers:
        assert worker.extensions["stats_flush"].flush(now=now) > 0
    assert (active(redis, hour_of(now)), active(redis, hour_of(now)[:8])) == (2, 2)


def test_a_flood_of_openids_cannot_grow_a_worker_without_bound():
    tally = Tally(cap=3)
    for i in range(100):
        tally.saw(f"oFlood{i:022d}")
        tally.saw("oFlood0000000000000000000000")  # one already held is never "dropped"
    assert len(tally.active) == 6 and tally.crowded() and tally.dropped == 94
    held, _ = tally.taken()
    tally.written(held, {})
    assert not tally.active and not tally.crowded()
    tally.saw("oFloodAfter00000000000000001")
    assert tally.active == {"oFloodAfter00000000000000001"}


def test_a_crowded_set_is_flushed_within_a_second_not_after_its_ten(redis):
    tally = Tally(cap=2)
    flusher = Flusher(redis, tally)
    flusher.start()
    try:
        tally.saw("oCrowded00000000000000000001")
        tally.saw("oCrowded00000000000000000002")
        assert wait_for(lambda: active(redis, hour_of(datetime.now(CHINA))) == 2, timeout=3)
        assert not tally.active
    finally:
        flusher.close()


# --- hits per banned word -----------------------------------------------------------------------

FILE_WORD, RUNTIME_WORD = "敏感词", "违禁乙"


@pytest.fixture
def guarded(config, tmp_path, make_app):
    """An app with a word file (敏感词) and a run-time word added as /ban adds one (违禁乙)."""
    words = tmp_path / "words.txt"
    words.write_text(f"{FILE_WORD}\n", encoding="utf-8")
    app = make_app({**config, "BOT_SENSITIVE_WORDS_FILES": str(words)})
    with app.app_context():
        guard = services().guard
        guard.store.add([RUNTIME_WORD])
        guard.refresher.poll()  # what every worker does within a second
        assert guard.words.hits(RUNTIME_WORD)
    return app


def ask_api(client, key: str, text: str, stream: bool = False):
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": text}], "stream": stream}
    return client.post("/api/v1/chat/completions", json=body)


def test_a_question_and_an_answer_holding_a_banned_word_count_one_each_for_that_word(
    guarded, issue_key, upstream, redis, caplog
):

    client = guarded.test_client()
    follower = Follower(flask_post(client), ACCOUNT, "oStatsWords00000000000000001")
    assert follower.say(f"请说说{RUNTIME_WORD}{RUNTIME_WORD}") == texts.QUESTION_REFUSED  # a question: once
    key = issue_key("oStatsWords00000000000000002")
    upstream.reset(answer=lambda messages: f"答案里有{RUNTIME_WORD}")
    assert RUNTIME_WORD not in ask_api(client, key, "你好").text  # an answer, masked
    upstream.reset(answer=lambda messages: f"流式答案里有{FILE_WORD}", piece_chars=2)
    assert FILE_WORD not in ask_api(client, key, "再来", stream=True).text  # streamed, the file's word
    upstream.reset()
    assert ask_api(client, key, "干净的问题").status_code == 200  # clean both ways: no hit
    now = datetime.now(CHINA)
    assert guarded.extensions["stats_flush"].flush(now=now) > 0
    assert redis.hgetall(words_key(now.strftime("%Y%m%d"))) == {RUNTIME_WORD: "2", FILE_WORD: "1"}
    page = admin_client(guarded, client).get("/admin/content/words").text
    assert table_rows(page, "words") == [[RUNTIME_WORD, "2"]]  # the run-time list, with its hits
    assert table_rows(page, "top-words") == [[RUNTIME_WORD, "2"], [FILE_WORD, "1"]]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert RUNTIME_WORD not in said and FILE_WORD not in said  # words stay out of the log


def test_a_flush_redis_refuses_keeps_active_followers_and_word_hits_for_the_next(guarded, redis, redis_server):
    client = guarded.test_client()
    flusher = guarded.extensions["stats_flush"]
    follower = Follower(flask_post(client), ACCOUNT, "oStatsRefused000000000000001")
    assert follower.say(f"{RUNTIME_WORD}？") == texts.QUESTION_REFUSED
    now = datetime.now(CHINA)
    hour, day = hour_of(now), hour_of(now)[:8]
    gone = redis_py.Redis(unix_socket_path=redis_server.url + ".gone", retry=Retry(NoBackoff(), 0))
    unreachable = Flusher(gone, flusher.tally)
    assert unreachable.flush(now=now) == 0  # no Redis at all: everything kept
    redis.set(active_key(day), "not a HyperLogLog")  # the day's PFADD and the words' HINCRBY are refused
    redis.set(words_key(day), "not a hash")
    flusher.flush(now=now)
    assert active(redis, hour) == 1 and total(read_hours(redis, [hour])[0], "requests_total", door="wechat") == 1
    redis.delete(active_key(day), words_key(day))
    assert flusher.flush(now=now) > 0  # what was refused, sent again
    assert (active(redis, hour), active(redis, day)) == (1, 1)
    assert redis.hgetall(words_key(day)) == {RUNTIME_WORD: "1"}
    assert total(read_hours(redis, [hour])[0], "requests_total", door="wechat") == 1  # the counters: not twice
    assert flusher.flush(now=now) == 0 and redis.exists(hour_key(hour))
