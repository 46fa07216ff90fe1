"""WeChat's 5-second window, for real: two gunicorn instances (2 gevent workers each) share one
Redis, WeChat's deliveries of a message alternate between them, and the model takes 1, 7, 12 or
40 seconds, scaled down 5 times (WeChat's deadline here is 1 s) so the suite stays fast."""

from __future__ import annotations

import threading

import pytest
import requests

from bot.store import keyspace
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import recorded
from tests.helpers import thinking
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for
from tests.wechat_servers import Outcome, WeChatServers

pytestmark = pytest.mark.slow

SCALE = 0.2  # WeChat's 5 s deadline becomes 1 s
LATENCIES = {"q1": 1 * SCALE, "q7": 7 * SCALE, "q12": 12 * SCALE, "q40": 40 * SCALE}


def latency_of(messages):
    return LATENCIES.get(messages[-1]["content"], 0.0)


@pytest.fixture(scope="module", params=["passive", "customer_service"])
def service(request, redis_server, upstream_server, wechat_api_server):
    """Two instances of the service, as two hosts behind a load balancer."""
    env = service_env(
        redis_server.url,
        upstream_server.url,
        OPENAI_TIMEOUT="30",
        WECHAT_SECRET="wechat-app-secret",
        WECHAT_API_BASE_URL=wechat_api_server.url,
        WECHAT_REPLY_MODE=request.param,
        BOT_WECHAT_TIMEOUT=str(5 * SCALE),
        BOT_WECHAT_WINDOW="0.75",
    )
    ports = [free_port(), free_port()]
    processes = [start_gunicorn(env, port) for port in ports]
    yield request.param, [f"http://127.0.0.1:{port}" for port in ports]
    for process in processes:
        stop(process)


@pytest.fixture
def wechat(service, redis, upstream, wechat_api):
    upstream.reset(latency_for=latency_of)
    return WeChatServers(service[1], ACCOUNT, timeout=5 * SCALE)


def run_together(calls):
    """Run callables at once (followers writing in the same second); their results in order."""
    results = [None] * len(calls)

    def run(i, call):
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def openid(name):
    return f"o{name:0>27}"


def pushes_to(wechat_api, who):
    return [
        c.body["text"]["content"]
        for c in wechat_api.calls_to("/cgi-bin/message/custom/send")
        if c.body["touser"] == who
    ]


def test_each_latency_in_each_mode(service, wechat, upstream, redis, wechat_api):
    mode = service[0]
    questions = list(LATENCIES)
    outcomes: list[Outcome] = run_together(
        [lambda q=q, i=i: wechat.say(openid(q), q, 9000 + i) for i, q in enumerate(questions)]
    )
    by_question = dict(zip(questions, outcomes, strict=True))

    # 1 s: answered by the first delivery, in both modes.
    assert by_question["q1"].attempts == ["answered"] and by_question["q1"].reply == "回答：q1"
    if mode == "passive":
        # 7 s and 12 s: the deliveries WeChat cannot wait for say nothing, a retry gets the answer.
        assert by_question["q7"].attempts == ["timeout", "answered"] and by_question["q7"].reply == "回答：q7"
        assert by_question["q12"].attempts == ["timeout", "timeout", "answered"]
        assert by_question["q12"].reply == "回答：q12"
        # 40 s: the last delivery says it is still thinking; 继续 collects the answer when it exists.
        assert by_question["q40"].attempts == ["timeout", "timeout", "answered"]
        assert thinking(by_question["q40"].reply)  # and for how long: the model has written nothing yet
        assert wechat.say(openid("q40"), "继续", 9100).reply == texts.WAITING
        assert wait_for(lambda: upstream.calls_about("q40") == 1 and redis.llen(keyspace.history(openid("q40"))) == 2)
        assert wechat.say(openid("q40"), "继续", 9101).reply == "回答：q40"
    else:
        # Customer-service mode: `success` when the window closes, then the answer is pushed.
        for q in ("q7", "q12", "q40"):
            assert by_question[q].attempts == ["answered"] and by_question[q].reply == ""
        for q in ("q7", "q12", "q40"):
            assert wait_for(lambda q=q: pushes_to(wechat_api, openid(q)) == [f"回答：{q}"])
    for outcome in outcomes:
        assert outcome.reply_took < 5 * SCALE  # every reply reached WeChat within its deadline
    for q in questions:
        assert upstream.calls_about(q) == 1  # one model call per message, whichever host got it
        assert recorded(redis, openid(q)) and redis.lrange(keyspace.history(openid(q)), 0, -1) == [q, f"回答：{q}"]


def test_a_second_question_waits_for_the_first(service, wechat, upstream, redis, wechat_api):
    who = openid("two")
    first, second = run_together(
        [
            lambda: wechat.say(who, "q7", 9200),
            lambda: wait_for(lambda: upstream.calls_about("q7") == 1) and wechat.say(who, "next", 9201),
        ]
    )
    if service[0] == "passive":
        assert (first.reply, second.reply) == ("回答：q7", "回答：next")
    else:  # both windows close before the answers exist: they are pushed, in order
        assert (first.reply, second.reply) == ("", "")
        assert wait_for(lambda: pushes_to(wechat_api, who) == ["回答：q7", "回答：next"])
    [asked_next] = [r for r in upstream.received if r.body["messages"][-1]["content"] == "next"]
    assert [m["content"] for m in asked_next.body["messages"] if m["role"] != "system"] == ["q7", "回答：q7", "next"]
    assert recorded(redis, who)
    assert redis.lrange(keyspace.history(who), 0, -1) == ["q7", "回答：q7", "next", "回答：next"]


@pytest.mark.parametrize("service", ["passive"], indirect=True)
def test_a_new_question_while_an_answer_is_owed_is_not_dropped(service, wechat, upstream, redis):
    who = openid("owed")
    assert thinking(wechat.say(who, "q40", 9300).reply)
    queued = wechat.say(who, "quick question", 9301)
    assert queued.attempts == ["answered"]
    assert queued.reply == texts.WAITING + texts.QUEUED_NOTE
    assert wait_for(lambda: redis.llen(keyspace.history(who)) == 4, timeout=15)
    assert wechat.say(who, "继续", 9302).reply == "回答：q40" + texts.MORE
    assert wechat.say(who, "继续", 9303).reply == "回答：quick question"
    assert wechat.say(who, "继续", 9304).reply == texts.NOTHING_OWED
    assert upstream.calls_about("q40") == upstream.calls_about("quick question") == 1


@pytest.mark.parametrize("service", ["customer_service"], indirect=True)
def test_answers_are_pushed_in_the_order_asked_when_the_first_push_is_slow(service, wechat, upstream, wechat_api):
    who = openid("order")
    wechat_api.delay("/cgi-bin/message/custom/send", 1.0, times=1)  # q7's push; the client waits 3 s
    first, second = run_together(
        [
            lambda: wechat.say(who, "q7", 9350),
            lambda: wait_for(lambda: upstream.calls_about("q7") == 1) and wechat.say(who, "next", 9351),
        ]
    )
    assert (first.reply, second.reply) == ("", "")
    assert wait_for(lambda: len(pushes_to(wechat_api, who)) == 2)
    assert pushes_to(wechat_api, who) == ["回答：q7", "回答：next"]


@pytest.mark.parametrize("service", ["customer_service"], indirect=True)
def test_failed_pushes_are_kept_for_the_next_message(service, wechat, wechat_api, redis):
    who = openid("pushfail")
    wechat_api.fail("/cgi-bin/message/custom/send", 45015)  # the follower is outside the 48 h window
    assert wechat.say(who, "q7", 9400).reply == ""
    # The answer is recorded and owed first, then pushed: wait for the push to have been tried.
    assert wait_for(lambda: pushes_to(wechat_api, who) == ["回答：q7"])  # tried once, refused
    assert wait_for(lambda: redis.llen(keyspace.outbox(who)) == 1 and redis.llen(keyspace.history(who)) == 2)
    assert wechat.say(who, "继续", 9401).reply == "回答：q7"


@pytest.mark.parametrize("service", ["customer_service"], indirect=True)
def test_a_push_that_times_out_is_kept_for_the_next_message(service, wechat, wechat_api, redis):
    who = openid("pushslow")
    wechat_api.delay("/cgi-bin/message/custom/send", 5.0)  # longer than the client's 3 s read timeout
    assert wechat.say(who, "q7", 9450).reply == ""
    assert wait_for(lambda: len(pushes_to(wechat_api, who)) == 1 and redis.llen(keyspace.outbox(who)) == 1)
    assert redis.lrange(keyspace.history(who), 0, -1) == ["q7", "回答：q7"]
    wechat_api.delay("/cgi-bin/message/custom/send", 0.0)
    assert wechat.say(who, "继续", 9451).reply == "回答：q7"


@pytest.mark.parametrize("service", ["customer_service"], indirect=True)
def test_an_invalidated_token_is_refreshed_and_the_push_goes_out_once(service, wechat, wechat_api):
    assert wechat.say(openid("token1"), "q7", 9500).reply == ""
    assert wait_for(lambda: pushes_to(wechat_api, openid("token1")) == ["回答：q7"])
    held = wechat_api.current_token
    # Someone fetched a new token elsewhere: the one the service holds is now refused (40001).
    requests.get(f"{wechat_api.url}/cgi-bin/token", params={"appid": ACCOUNT.appid, "secret": "wechat-app-secret"})
    assert wechat.say(openid("token2"), "q7", 9501).reply == ""
    assert wait_for(lambda: len(pushes_to(wechat_api, openid("token2"))) == 2)
    tries = [c for c in wechat_api.calls_to("/cgi-bin/message/custom/send") if c.body["touser"] == openid("token2")]
    assert [c.query["access_token"] for c in tries] == [held, wechat_api.current_token]  # refused, then sent


@pytest.fixture(scope="module")
def real_timing(redis_server, upstream_server, wechat_api_server):
    env = service_env(redis_server.url, upstream_server.url)
    port = free_port()
    process = start_gunicorn(env, port)
    yield f"http://127.0.0.1:{port}"
    stop(process)


def test_at_wechats_real_timing_a_7_second_answer_reaches_the_second_delivery(real_timing, redis, upstream):
    upstream.reset(latency=7.0)
    outcome = WeChatServers([real_timing], ACCOUNT, timeout=5.0).say(openid("real"), "慢问题", 9600)
    assert outcome.attempts == ["timeout", "answered"]
    assert outcome.reply == "回答：慢问题"
    assert 6.5 < outcome.answered_after < 8.5
    assert outcome.reply_took < 4.5
    assert upstream.calls == 1
