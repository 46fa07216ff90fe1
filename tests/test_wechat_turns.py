"""Questions waiting for a follower's model slot: woken when it frees (no polling), in order of arrival,
on one worker, across two (two apps on one Redis, and gunicorn's gevent workers), and not stuck
behind a worker that died holding the slot."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from bot.store import keyspace
from bot.store.drafts_lua import Checkpoint
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.monitor import Monitor
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for
from tests.queued import (
    QUICK,
    WHO,
    all_answered,
    ask_in_turn,
    assert_answered_in_order,
    evalshas_between_marks,
    hold_first,
    warm_up,
)

QUEUED = 5  # questions sent while the first is with the model


@pytest.fixture
def fast(config):
    """The app's settings for these tests: WeChat's deadline shortened, a 40 s lease (tests/queued.py)."""
    return {**config, **QUICK}


def measure_queue(senders: list[Follower], redis, redis_url: str, upstream) -> tuple[int, int]:
    """Scripts Redis ran while QUEUED questions waited a second, and while they were then answered."""
    gate = hold_first(upstream)
    warm_up(senders[0], redis)
    redis.script_load(Checkpoint.LUA)  # the held answer checkpoints once: not its first run on this Redis
    with Monitor(redis_url) as monitor:
        deliveries = ask_in_turn(senders, monitor, upstream, QUEUED)
        monitor.marker.echo("waiting")
        time.sleep(1.0)  # what QUEUED waiting questions cost in a second: a rate, so a fixed span
        monitor.marker.echo("releasing")
        gate.set()
        assert all_answered(redis, QUEUED)
        monitor.marker.echo("answered")
        while_waiting, while_answering = evalshas_between_marks(monitor, 3)
    for delivery in deliveries:
        delivery.join()
    return while_waiting, while_answering


@pytest.mark.parametrize("workers", [1, 2])
def test_waiting_questions_send_redis_nothing_and_are_answered_in_order(
    fast, make_app, upstream, redis, redis_server, workers
):
    senders = [Follower(flask_post(make_app(fast).test_client()), ACCOUNT, WHO) for _ in range(workers)]
    while_waiting, while_answering = measure_queue(senders, redis, redis_server.url, upstream)
    assert while_waiting == 0  # polling sent 5 per question per second
    # Per finished turn: its finishing script and one check by the question it woke; and the first answer,
    # written after its window closed, one checkpoint (bot/wechat/writer.py).
    assert while_answering <= 2 * QUEUED + 2
    assert_answered_in_order(redis, upstream, QUEUED)
    assert not redis.exists(keyspace.busy(WHO))


def test_a_slot_held_by_a_dead_worker_is_taken_when_its_lease_ends(fast, make_app, upstream, redis, redis_server):
    follower = Follower(flask_post(make_app(fast).test_client()), ACCOUNT, WHO)
    warm_up(follower, redis)
    with Monitor(redis_server.url) as monitor:
        redis.set(keyspace.busy(WHO), "4242", px=1200)  # held by a message no live worker runs
        lease_ends = time.monotonic() + 1.2
        asking = threading.Thread(target=follower.say, args=("还在吗", 7100))
        asking.start()
        assert wait_for(lambda: redis.llen(keyspace.history(WHO)) == 2, timeout=5)
        monitor.marker.echo("answered")
        assert wait_for(lambda: "ECHO" in monitor.commands, timeout=5)
        seen = monitor.commands[: monitor.commands.index("ECHO")]
        # A script this Redis has not cached yet (the test run alone) is sent again after SCRIPT LOAD: one run.
        scripts = seen.count("EVALSHA") - seen.count("SCRIPT")
    asking.join()
    assert upstream.calls_about("还在吗") == 1 and upstream.received[-1].at >= lease_ends  # not before
    assert upstream.received[-1].at < lease_ends + 1.0  # re-checked when the lease ran out
    # The claim, a first try, one try when the lease ran out, the finish: not 5 tries a second.
    assert scripts <= 4


def http_post(url: str):
    def post(params: dict[str, str], body: bytes) -> tuple[int, bytes]:
        # A fresh connection each time, so that the kernel may hand each message to either worker.
        response = requests.post(url + "/wechat", params=params, data=body, headers={"Connection": "close"}, timeout=10)
        return response.status_code, response.content

    return post


@pytest.mark.slow
def test_on_gunicorns_gevent_workers_waiting_questions_send_redis_nothing(redis_server, upstream, redis):
    env = service_env(redis_server.url, upstream.url, **QUICK)
    port = free_port()
    process = start_gunicorn(env, port, workers=2)
    try:
        follower = Follower(http_post(f"http://127.0.0.1:{port}"), ACCOUNT, WHO)
        while_waiting, while_answering = measure_queue([follower], redis, redis_server.url, upstream)
    finally:
        stop(process)
    assert while_waiting == 0
    assert while_answering <= 2 * QUEUED + 2  # as above: the held answer's one checkpoint besides
    assert_answered_in_order(redis, upstream, QUEUED)
