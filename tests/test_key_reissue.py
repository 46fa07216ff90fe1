"""A follower's balance and use are theirs, not one key's: a key issued after a revoke continues them,
exactly as a rotated key does, and the grant comes with a follower's first key only. Requests in
flight when the key is revoked are charged to the follower once, and refund them what they did not
use, whichever way the new key comes."""

from __future__ import annotations

import json
import re
import threading

import pytest

from bot.chat.sse import iter_data
from bot.services import services
from bot.store import funds as funds_module
from bot.store import keyspace
from bot.store.connection import connect
from bot.store.funds import Funds
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.helpers import ask
from tests.monitor import Monitor
from tests.procs import wait_for

URL = "/api/v1/chat/completions"
GRANT = 10_000


def ledger(app, key: str) -> tuple[int, int, int]:
    """(balance, used, reserved) of a key, as `keys show` reports them."""
    with app.app_context():
        store = services().keys
        info = store.info(store.fingerprint(key))
    assert info is not None, "the key has no record"
    return info.balance, info.used, info.reserved


def cli(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def records_of(redis, openid: str) -> int:
    """How many key records name the follower as their owner (a double grant would leave two)."""
    records = [name for name in redis.scan_iter(match="bot:{k:*}") if redis.type(name) == "hash"]
    return sum(1 for name in records if redis.hget(name, "owner") == openid)


def test_revoke_then_key_continues_the_balance_and_use_instead_of_a_new_grant(app, client, redis):
    follower = Follower(flask_post(client), ACCOUNT, "oProbe0000000000000000000007")
    first = re.search(r"sk-\w{48}", follower.say("key"))[0]
    spent = sum(ask(client, first, "第几个问题" * i).get_json()["usage"]["total_tokens"] for i in (1, 2))
    assert "revoked" in cli(app, "keys", "revoke", follower.openid)
    assert ask(client, first).get_json()["code"] == 40102
    reply = follower.say("key")  # what the probe did: the WeChat keyword after a revoke
    second = re.search(r"sk-\w{48}", reply)[0]
    assert second != first and f"剩余额度：{GRANT - spent} tokens" in reply
    assert ledger(app, second) == (GRANT - spent, spent, 0)
    more = ask(client, second).get_json()["usage"]["total_tokens"]
    assert ledger(app, second) == (GRANT - spent - more, spent + more, 0)
    assert f"累计已用：{spent + more} tokens" in follower.click("MY_USAGE")
    with app.app_context():
        assert services().stats.today().key_owners == 1  # one follower with a key, however many keys
    assert records_of(redis, follower.openid) == 1


def test_the_grant_is_for_a_followers_first_key_only(app, client):
    with app.app_context():
        store = services().keys
        key, created = store.issue("oFirstKey")
        assert created and store.issue("oFirstKey") == (key, False)
    assert ledger(app, key) == (GRANT, 0, 0)
    spent = ask(client, key).get_json()["usage"]["total_tokens"]
    for cycle in range(4):  # revoke and ask again, rotate, over and over: never a second grant
        with app.app_context():
            store = services().keys
            if cycle % 2:
                key = store.rotate("oFirstKey")
            else:
                assert store.revoke("oFirstKey") and store.fingerprint_of("oFirstKey") is None
                key, created = store.issue("oFirstKey")
                assert created
        assert ledger(app, key) == (GRANT - spent, spent, 0)
    with app.app_context():
        services().keys.revoke("oFirstKey")
        key = services().keys.rotate("oFirstKey")  # rotating a follower who has no key now: issues one
    assert ledger(app, key) == (GRANT - spent, spent, 0)
    with app.app_context():
        other, created = services().keys.issue("oAnotherFollower")
    assert created and ledger(app, other) == (GRANT, 0, 0)  # another follower's first key: their grant


def test_revoking_twice_is_a_clear_error_and_loses_nothing(app, client):
    with app.app_context():
        key = services().keys.issue("oTwice")[0]
    spent = ask(client, key).get_json()["usage"]["total_tokens"]
    cli(app, "keys", "revoke", "oTwice")
    result = app.test_cli_runner().invoke(args=["keys", "revoke", "oTwice"])
    assert result.exit_code == 1 and "no key for oTwice" in result.output
    assert app.test_cli_runner().invoke(args=["keys", "revoke", "not an openid!"]).exit_code == 2
    with app.app_context():
        again = services().keys.issue("oTwice")[0]
    assert ledger(app, again) == (GRANT - spent, spent, 0)


def test_rotate_and_revoke_then_issue_leave_the_same_balance_and_use(app, client):
    keys = {}
    with app.app_context():
        for openid in ("oRotated", "oReissued"):
            keys[openid] = services().keys.issue(openid)[0]
    spent = {openid: ask(client, key, "同一个问题").get_json()["usage"]["total_tokens"] for openid, key in keys.items()}
    assert spent["oRotated"] == spent["oReissued"]
    rotated = re.search(r"sk-\w{48}", cli(app, "keys", "rotate", "oRotated"))[0]
    assert cli(app, "keys", "revoke", "oReissued") == "revoked the key of oReissued\n"
    reissued_out = cli(app, "keys", "issue", "oReissued")
    reissued = re.search(r"sk-\w{48}", reissued_out)[0]
    assert "issued a new key" in reissued_out and reissued != keys["oReissued"]
    assert ledger(app, rotated) == ledger(app, reissued) == (GRANT - spent["oRotated"], spent["oRotated"], 0)


def test_workers_issuing_at_once_after_a_revoke_hand_out_one_key_and_no_second_grant(app, config, make_app, redis):
    with app.app_context():
        key = services().keys.issue("oRace")[0]
    spent = ask(app.test_client(), key).get_json()["usage"]["total_tokens"]
    with app.app_context():
        services().keys.revoke("oRace")
    workers = [make_app(config) for _ in range(2)]  # two workers: each its own Redis client
    start, issued = threading.Barrier(8), []

    def issue(worker) -> None:
        with worker.app_context():
            start.wait(5)
            issued.append(services().keys.issue("oRace"))

    threads = [threading.Thread(target=issue, args=(workers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(issued) == 8 and len({key for key, _ in issued}) == 1
    assert sum(created for _, created in issued) == 1
    assert ledger(app, issued[0][0]) == (GRANT - spent, spent, 0)
    assert records_of(redis, "oRace") == 1


def read_usage(data: bytes) -> int:
    events = [json.loads(item) for item in iter_data([data])]
    return events[-1]["usage"]["total_tokens"]


@pytest.mark.parametrize(
    ("how", "model"),
    [
        ("rotate", {}),
        ("revoke then issue", {}),
        ("revoke, the stream ends, then issue", {}),
        ("rotate", {"stream_mode": "error", "break_after": 2}),  # the model fails mid-answer
    ],
)
def test_a_stream_in_flight_across_a_revoke_is_charged_once_and_refunds_the_rest(app, upstream, how, model):
    upstream.reset(piece_chars=1, **model)  # the question echoed back one character a piece
    with app.app_context():
        key = services().keys.issue("oInFlight")[0]
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}], "stream": True}
    response = app.test_client().post(URL, json=body, buffered=False)
    events = iter(response.response)
    first = next(events)  # the answer has begun: its reservation is held
    assert ledger(app, key)[2] > 0
    with app.app_context():
        store = services().keys
        new = store.rotate("oInFlight") if how == "rotate" else None
        if new is None:
            store.revoke("oInFlight")
        if how == "revoke then issue":
            new = store.issue("oInFlight")[0]
    used = read_usage(first + b"".join(events))  # the stream settles after its key was revoked
    if new is None:
        with app.app_context():
            new = services().keys.issue("oInFlight")[0]
    assert ledger(app, new) == (GRANT - used, used, 0)  # charged once, the rest of its reservation back


@pytest.fixture
def funds(redis_server, redis):
    client = connect(redis_server.url)
    yield Funds(client)
    client.close()


def test_a_refund_that_meets_a_revoke_half_done_lands_once_the_revoke_parks(funds, redis, redis_server):
    account, gone = keyspace.account("oHalfDone"), "f" * 64
    redis.hset(account, mapping={"key_fp": gone, "key_sealed": "sealed", "granted": 1})  # its record is retired
    refunded: list[bool] = []
    with Monitor(redis_server.url) as monitor:
        refund = threading.Thread(target=lambda: refunded.append(funds.deposit("oHalfDone", 70, 30)))
        refund.start()  # a settle's refund
        # Its first try ran both scripts (park, then credit the gone key) and found nowhere to go.
        assert wait_for(lambda: scripts_run(monitor) >= 2, timeout=5)
        funds.deposit("oHalfDone", 500, 200, retired=gone)  # the revoke's second step parks what the key held
        refund.join()
    assert refunded == [True]  # the refund waited for the park, then landed
    assert redis.hmget(account, "key_fp", "balance", "used") == [None, "570", "230"]


def scripts_run(monitor: Monitor) -> int:
    """Scripts Redis ran (a script not yet cached is refused once, loaded, then sent again)."""
    commands = list(monitor.commands)
    return commands.count("EVALSHA") - commands.count("SCRIPT")


def test_a_refund_that_cannot_be_placed_is_logged_with_its_amounts(funds, redis, monkeypatch, caplog):
    monkeypatch.setattr(funds_module, "_PAUSE", 0)
    redis.hset(keyspace.account("oStuck"), mapping={"key_fp": "f" * 64, "key_sealed": "sealed"})
    assert not funds.deposit("oStuck", 70, 30)  # a revoke that never finished: nobody parks
    assert "could not give oStuck back 70 tokens (used 30)" in caplog.text
    assert redis.hget(keyspace.account("oStuck"), "balance") is None
