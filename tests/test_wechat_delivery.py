"""Exactly-once delivery, in-process: repeated deliveries, dead workers, parts and push limits."""

from __future__ import annotations

import time

import pytest

from bot.store import keyspace
from bot.wechat import texts
from bot.wechat.waits import LocalWaits
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded
from tests.procs import wait_for

WHO = "oFollower0000000000000000009"


@pytest.fixture
def fast(config):
    """WeChat's deadline shortened to 1 s (window 0.5 s)."""
    return {**config, "BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.5"}


@pytest.fixture
def follower(fast, make_app):
    return Follower(flask_post(make_app(fast).test_client()), ACCOUNT, WHO)


def test_every_delivery_of_a_message_gets_the_same_reply_and_one_model_call(follower, upstream, redis):
    replies = [follower.say("同一条", msg_id=555) for _ in range(3)]
    assert replies == ["回答：同一条"] * 3
    assert upstream.calls == 1
    assert recorded(redis, WHO) and redis.lrange(keyspace.history(WHO), 0, -1) == ["同一条", "回答：同一条"]
    assert int(redis.hget(keyspace.message(WHO, "555"), "deliveries")) == 3
    assert 600 < redis.ttl(keyspace.message(WHO, "555")) <= 660  # answered: kept for retries and replays


def test_a_repeated_key_request_shows_the_same_reply(follower, redis):
    first = follower.say("key", msg_id=556)
    assert "已生成" in first
    assert follower.say("key", msg_id=556) == first


def test_a_message_whose_worker_died_is_answered_by_the_next_delivery(follower, upstream, redis):
    # What a worker killed mid-call leaves behind: a running claim whose lease has passed.
    redis.hset(
        keyspace.message(WHO, "557"), mapping={"status": "running", "deliveries": 1, "lease": 0, "question": "还在吗"}
    )
    redis.set(keyspace.busy(WHO), "557", px=100)
    assert wait_for(lambda: not redis.exists(keyspace.busy(WHO)))  # the dead worker's model slot expired too
    assert follower.say("还在吗", msg_id=557) == "回答：还在吗"
    assert upstream.calls == 1


def test_a_live_claim_is_not_taken_over(follower, upstream, redis):
    lease = int(time.time() * 1000) + 60_000
    redis.hset(
        keyspace.message(WHO, "558"), mapping={"status": "running", "deliveries": 1, "lease": lease, "question": "q"}
    )
    started = time.monotonic()
    assert follower.say("q", msg_id=558) is None  # silent: the live worker will answer a later delivery
    assert time.monotonic() - started >= 1.0  # held past WeChat's deadline
    assert upstream.calls == 0


def test_an_owed_answer_whose_worker_died_is_written_again(follower, upstream, redis):
    redis.hset(
        keyspace.message(WHO, "559"), mapping={"status": "running", "lease": 0, "question": "旧问题", "deferred": 1}
    )
    redis.rpush(keyspace.outbox(WHO), "m:559")
    # The 继续 finds the dead worker's claim, answers it again, and waits within its window for it.
    assert follower.say("继续") == "回答：旧问题"
    assert redis.hget(keyspace.message(WHO, "559"), "status") == "done"
    assert follower.say("继续") == texts.NOTHING_OWED
    assert upstream.calls_about("旧问题") == 1


def test_a_failed_answer_is_said_politely_and_changes_no_history(follower, upstream, redis):
    upstream.reset(status=500)
    assert follower.say("会失败") == texts.UPSTREAM_FAILED
    assert recorded(redis, WHO)  # the slot is freed
    assert redis.exists(keyspace.history(WHO)) == 0


def test_pushes_stop_at_five_per_message_and_the_rest_is_owed(fast, make_app, upstream, wechat_api, redis):
    app = make_app({**fast, "WECHAT_REPLY_MODE": "customer_service"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, WHO)
    answer = "".join(f"第{i}部分" + "长" * 500 + "\n" for i in range(8))  # 8 parts
    upstream.reset(latency=0.8, answer=lambda m: answer)
    assert follower.say("写长一点") is None  # `success`: the answer will be pushed
    assert wait_for(lambda: len(wechat_api.calls_to("/cgi-bin/message/custom/send")) == 5)
    assert wait_for(lambda: redis.llen(keyspace.outbox(WHO)) == 3)  # the fifth pushed is no longer owed
    pushed = [c.body["text"]["content"] for c in wechat_api.calls_to("/cgi-bin/message/custom/send")]
    assert len(pushed) == 5 and pushed[4].endswith(texts.MORE)
    assert all(len(p.encode()) <= 2047 for p in pushed)
    rest = [follower.say("继续") for _ in range(4)]
    assert rest[-1] == texts.NOTHING_OWED
    assert rest[0].endswith(texts.MORE) and rest[1].endswith(texts.MORE) and not rest[2].endswith(texts.MORE)
    text = "".join(p.removesuffix(texts.MORE) for p in pushed + rest[:3])
    assert text == answer.rstrip("\n")  # exact parts (the reader strips the very last newline)


def test_a_waiting_delivery_gets_the_reply_as_soon_as_it_is_being_recorded():
    waits = LocalWaits()
    waits.start("o:1")
    call = waits.get("o:1")
    waits.offer("o:1", "回答")
    assert call.done.is_set() and call.replies == ["回答"]
    waits.finish("o:1", "回答")  # recorded: nothing changes for those already answered
    assert call.replies == ["回答"] and waits.get("o:1") is None


def test_after_a_deferral_waiting_deliveries_get_what_redis_recorded_not_the_answer():
    waits = LocalWaits()
    waits.start("o:2")
    call = waits.get("o:2")
    waits.keep_for_redis("o:2")  # a delivery replied 【正在思考…】 or `success`: the answer is owed
    waits.offer("o:2", "回答")
    assert not call.done.is_set()
    waits.finish("o:2", texts.THINKING)
    assert call.replies == [texts.THINKING]


def test_a_message_redone_after_its_lease_is_not_offered_early():
    waits = LocalWaits()
    waits.start("o:3", early=False)  # the first run may still record its own answer
    call = waits.get("o:3")
    waits.offer("o:3", "第二次的回答")
    assert not call.done.is_set()
    waits.finish("o:3", "第一次的回答")  # what Redis recorded
    assert call.replies == ["第一次的回答"]
