"""A follower whose first question is held at the model while more of theirs queue behind it."""

from __future__ import annotations

import threading

from flask import Flask

from bot.store import keyspace
from bot.store.wakeups import waiting
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.monitor import Monitor
from tests.procs import wait_for

WHO = "oTurns0000000000000000000001"
# WeChat's deadline shortened to 0.5 s (a silent delivery returns after 1.5 s); the model may take
# 10 s, so a slot's lease is 40 s: a question answered within seconds of the slot freeing was woken.
QUICK = {"BOT_WECHAT_TIMEOUT": "0.5", "BOT_WECHAT_WINDOW": "0.2", "OPENAI_TIMEOUT": "10"}


def hold_first(upstream) -> threading.Event:
    """The model answers `q0` only once the event is set, everything else at once."""
    gate = threading.Event()

    def latency(messages):
        if messages[-1]["content"] == "q0":
            gate.wait(20)
        return 0.0

    upstream.reset(latency_for=latency)
    return gate


WARM = "oWarm00000000000000000000001"


def warm_up(sender: Follower, redis) -> None:
    """Another follower chats first, so Redis has loaded the finishing script (its first run on a
    Redis costs a NOSCRIPT and a second EVALSHA, which a count of scripts must not see). Its answer
    may miss the shortened window on a busy machine (a worker's first message): the turn is recorded
    all the same, and that is what is waited for."""
    assert Follower(sender.post, ACCOUNT, WARM).say("hi")
    assert wait_for(lambda: redis.llen(keyspace.history(WARM)) == 2, timeout=15)  # the question and its answer


def ask_in_turn(senders: list[Follower], monitor: Monitor, upstream, count: int) -> list[threading.Thread]:
    """q0 … q<count> in this order (alternating senders), each sent once the one before is waiting:
    Redis has its claim and its first try for the slot (two scripts). The deliveries run on."""
    threads = []
    for i in range(count + 1):
        before = monitor.commands.count("EVALSHA")
        threads.append(threading.Thread(target=senders[i % len(senders)].say, args=(f"q{i}", 7000 + i)))
        threads[-1].start()
        if i == 0:
            assert wait_for(lambda: upstream.calls_about("q0") == 1, timeout=5)
        else:
            assert wait_for(lambda before=before: monitor.commands.count("EVALSHA") >= before + 2, timeout=5)
    return threads


def evalshas_between_marks(monitor: Monitor, marks: int) -> list[int]:
    """EVALSHAs Redis received between the test's ECHO marks (the app sends every script that way)."""
    assert wait_for(lambda: monitor.commands.count("ECHO") >= marks, timeout=5)
    counts, current = [], 0
    for command in list(monitor.commands):
        if command == "ECHO":
            counts.append(current)
            current = 0
        elif command == "EVALSHA":
            current += 1
    return counts[1:marks]


def all_answered(redis, count: int, timeout: float = 10) -> bool:
    return wait_for(lambda: redis.llen(keyspace.history(WHO)) == 2 * (count + 1), timeout=timeout)


def assert_answered_in_order(redis, upstream, count: int) -> None:
    """The model got q0 … q<count> in the order they arrived, each with the turns before it."""
    questions = [f"q{i}" for i in range(count + 1)]
    asked = [r.body["messages"][-1]["content"] for r in upstream.received]
    assert [q for q in asked if q.startswith("q")] == questions
    assert redis.lrange(keyspace.history(WHO), 0, -1) == [x for q in questions for x in (q, f"回答：{q}")]
    last = [m["content"] for m in upstream.received[-1].body["messages"] if m["role"] != "system"]
    assert last[-3:] == [questions[-2], f"回答：{questions[-2]}", questions[-1]]


def assert_woken_in_order(app: Flask, upstream, count: int) -> None:
    """q1 … q<count> wait while q0 is held at the model; once it is answered they follow in order,
    within seconds: woken (each slot's lease is 40 s in these apps, a re-check would come only then)."""
    client = app.extensions["bot"].redis
    gate = hold_first(upstream)
    follower = Follower(flask_post(app.test_client()), ACCOUNT, WHO)
    asking = [threading.Thread(target=follower.say, args=(f"q{i}", 7000 + i)) for i in range(count + 1)]
    asking[0].start()
    assert wait_for(lambda: upstream.calls_about("q0") == 1, timeout=5)
    for i in range(1, count + 1):
        asking[i].start()
        assert wait_for(lambda i=i: client.zcard(waiting(WHO)) == i, timeout=5)
    gate.set()
    assert all_answered(client, count, timeout=5)
    assert_answered_in_order(client, upstream, count)
    for thread in asking:
        thread.join()
