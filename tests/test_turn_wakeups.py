"""How waiting questions are woken (bot/store/wakeups.py), attacked: a question first in line whose
worker died, a subscription Redis dropped, junk and forged messages on the wake-up channel."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.chat.dialogue import MAX_CHARS
from bot.store import keyspace, wakeups
from bot.store.conversation import Conversation
from bot.store.wakeups import CHANNEL, waiting
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.monitor import Monitor
from tests.procs import wait_for
from tests.queued import QUICK, WHO, all_answered, assert_answered_in_order, hold_first


@pytest.fixture
def app(config, make_app):
    return make_app({**config, **QUICK})


def say_in_background(app, question: str, msg_id: int) -> threading.Thread:
    """Send a question; its delivery runs on in a thread (it stays silent past WeChat's deadline)."""
    follower = Follower(flask_post(app.test_client()), ACCOUNT, WHO)
    thread = threading.Thread(target=follower.say, args=(question, msg_id))
    thread.start()
    return thread


def queue_behind_held(app, redis, upstream, count: int) -> tuple[threading.Event, list[threading.Thread]]:
    """q0 held at the model, q1 … q<count> waiting for the slot, in this order."""
    gate = hold_first(upstream)
    threads = [say_in_background(app, "q0", 7000)]
    assert wait_for(lambda: upstream.calls_about("q0") == 1, timeout=5)
    for i in range(1, count + 1):
        threads.append(say_in_background(app, f"q{i}", 7000 + i))
        assert wait_for(lambda i=i: redis.zcard(waiting(WHO)) == i, timeout=5)
    return gate, threads


def test_the_slot_goes_in_the_order_questions_arrived_not_the_order_their_workers_queued_them(redis):
    now = [1_000_000.0]
    conversation = Conversation(
        redis, 40, 86400, 86400, rpm=0, clock=lambda: now[0], word=texts.owed_reply, history_chars=MAX_CHARS
    )
    assert conversation.claim(WHO, "1", "q1", ask=True).slot is not None  # with the model
    for msg_id in ("9", "10"):  # arrive in this order ("10" sorts first as text), a second apart
        now[0] += 1
        assert conversation.claim(WHO, msg_id, f"q{msg_id}", ask=True).slot is None
    now[0] += 1
    assert conversation.begin_turn(WHO, "10")[0] is None  # its worker was the quicker to queue it
    assert conversation.begin_turn(WHO, "9")[0] is None
    conversation.finish_turn(WHO, "1", "q1", "a1", 1, ["a1"])
    assert redis.get(keyspace.busy(WHO)) == "9"  # handed to the one that came first
    slot, hold_ms = conversation.begin_turn(WHO, "10")
    assert slot is None and 4000 < hold_ms <= 5000  # still waits: reserved for 9 a few seconds
    slot, _ = conversation.begin_turn(WHO, "9")
    assert slot is not None and slot.history == ["q1", "a1"]
    assert redis.zrange(waiting(WHO), 0, -1) == ["10"]


def test_a_question_first_in_line_whose_worker_died_holds_the_next_up_only_briefly(app, upstream, redis):
    app.extensions["bot"].conversation.handoff_ms = 300  # the reservation a woken question has to take the slot
    gate = hold_first(upstream)
    threads = [say_in_background(app, "q0", 7000)]
    assert wait_for(lambda: upstream.calls_about("q0") == 1, timeout=5)
    redis.zadd(waiting(WHO), {"4241": 1})  # its worker died while it waited, first in line
    threads.append(say_in_background(app, "q1", 7001))
    assert wait_for(lambda: redis.zcard(waiting(WHO)) == 2, timeout=5)
    gate.set()
    assert wait_for(lambda: redis.llen(keyspace.history(WHO)) == 2, timeout=5)
    freed = time.monotonic()
    assert all_answered(redis, 1, timeout=5)  # not after q1's 40 s timer: when 4241's reservation lapsed
    assert upstream.received[-1].at >= freed + 0.2
    assert_answered_in_order(redis, upstream, 1)
    assert not redis.exists(waiting(WHO), keyspace.busy(WHO))
    for thread in threads:
        thread.join()


def test_a_dropped_subscription_is_renewed_and_the_waiting_are_still_woken(app, upstream, redis):
    gate, threads = queue_behind_held(app, redis, upstream, 2)
    assert redis.client_kill_filter(_type="pubsub") == 1  # Redis drops the worker's one subscription
    assert wait_for(lambda: redis.pubsub_numsub(CHANNEL) == [(CHANNEL, 1)], timeout=5)
    gate.set()
    assert all_answered(redis, 2, timeout=5)  # woken: the lease would have held them 40 s
    assert_answered_in_order(redis, upstream, 2)
    for thread in threads:
        thread.join()


def test_junk_and_forged_wake_ups_neither_stop_the_listener_nor_jump_the_line(app, upstream, redis, redis_server):
    gate, threads = queue_behind_held(app, redis, upstream, 2)
    for junk in ("not json", "[1]", '{"a": 1}', '[["x"], "7001", "", 5000]', f'["{WHO}", "7001", "", "soon"]'):
        assert redis.publish(CHANNEL, junk) == 1
    with Monitor(redis_server.url) as monitor:
        # Forged: "the slot is q1's" while q0 still holds it. q1 checks, and goes on waiting.
        redis.publish(CHANNEL, json.dumps([WHO, "7001", "7002", 5000]))
        assert wait_for(lambda: monitor.commands.count("EVALSHA") == 1, timeout=5)
    assert upstream.calls_about("q1") == 0 and redis.get(keyspace.busy(WHO)) == "7000"
    gate.set()
    assert all_answered(redis, 2, timeout=5)  # the listener lived through the junk
    assert_answered_in_order(redis, upstream, 2)
    for thread in threads:
        thread.join()


def test_a_quiet_subscription_is_pinged_and_kept(app, upstream, redis, monkeypatch, caplog):
    monkeypatch.setattr(wakeups, "QUIET_SECONDS", 0.2)  # in service, 30 s without a message
    monkeypatch.setattr(wakeups, "TICK_SECONDS", 0.05)

    def subscriptions():
        return [(c["id"], c["cmd"]) for c in redis.client_list() if c["sub"] != "0"]

    gate, threads = queue_behind_held(app, redis, upstream, 1)
    assert wait_for(lambda: [cmd for _, cmd in subscriptions()] == ["ping"], timeout=5)
    [(pinged, _)] = subscriptions()
    time.sleep(1.0)  # five quiet spans: what happens over a lapse of time is what is tested
    assert [i for i, _ in subscriptions()] == [pinged]  # answered, so not given up and renewed
    assert not [r for r in caplog.records if r.name == "bot.store.wakeups"]
    gate.set()
    assert all_answered(redis, 1, timeout=5)
    for thread in threads:
        thread.join()


def test_a_subscription_that_stops_answering_is_renewed(app, upstream, redis, monkeypatch, caplog):
    monkeypatch.setattr(wakeups, "QUIET_SECONDS", 0.2)
    monkeypatch.setattr(wakeups, "TICK_SECONDS", 0.05)
    gate, threads = queue_behind_held(app, redis, upstream, 1)
    [before] = [c["id"] for c in redis.client_list() if c["sub"] != "0"]
    redis.execute_command("CLIENT", "PAUSE", 800, "ALL")  # a hung Redis: PINGs go unanswered
    assert wait_for(lambda: [c["id"] for c in redis.client_list() if c["sub"] != "0"] not in ([], [before]))
    assert [r.message for r in caplog.records if r.name == "bot.store.wakeups"][:1] == [
        "turn wake-ups: subscription lost (ConnectionError), subscribing again"
    ]
    gate.set()
    assert all_answered(redis, 1, timeout=5)  # woken through the new subscription
    for thread in threads:
        thread.join()
