"""A reservation lives as long as its request. A stream may outlast the hold's lease (a slow model, or
a caller who stops reading), and other requests of the key then reserve, which is what returns
stranded holds: the stream's hold must stay, so the key never delivers more than it was granted and
every token it delivered is charged."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from bot.chat.sse import iter_data
from bot.services import services
from bot.store import keyspace
from tests.monitor import Monitor
from tests.servers import Gunicorn

URL = "/api/v1/chat/completions"
LONG, SHORT = "长", "短"  # one token each: a long streamed answer, a short plain one
STREAMED, SPENT = 201, 51  # the tokens of each: a stream uses all it reserves
GRANT = 3 * STREAMED + 8 * SPENT  # three streams, then eight short answers to exactly nothing left


def answer(messages) -> str:
    return "字" * (STREAMED - 1) if messages[-1]["content"] == LONG else "好" * (SPENT - 1)


@pytest.fixture
def leased(config, make_app, upstream, issue_key):
    """An app whose holds lease for 1 s (standing in for OPENAI_TIMEOUT + 30 s), and a key of GRANT."""
    settings = {"BOT_LEASE_SECONDS": "1", "BOT_KEY_GRANT_TOKENS": str(GRANT), "BOT_ANSWER_TOKENS": str(STREAMED - 1)}
    app = make_app({**config, **settings, "BOT_RATE_KEY_RPM": "0"})
    with app.app_context():
        key = services().keys.issue("oLongStreams")[0]
        fingerprint = services().keys.fingerprint(key)
    return app, key, fingerprint


def body(key: str, question: str, stream: bool) -> dict:
    return {"api_secret_key": key, "messages": [{"role": "user", "content": question}], "stream": stream}


def streamed_usage(data: bytes) -> int:
    """The tokens a caller was delivered and told of: the usage in the stream's last event."""
    events = [json.loads(item) for item in iter_data([data])]
    assert events[-1]["code"] == 0, events[-1]
    return events[-1]["usage"]["total_tokens"]


def spend_until_refused(post, key) -> int:
    """Short requests until 402, as the probe did; answers the tokens they were delivered.
    `post(json)` answers (status, body)."""
    delivered = 0
    for _ in range(200):
        status, answer = post(body(key, SHORT, False))
        if status == 402:
            return delivered
        assert status == 200, answer
        delivered += answer["usage"]["total_tokens"]
    raise AssertionError("the key was never refused")


def in_process(app):
    client = app.test_client()

    def post(json: dict) -> tuple[int, dict]:
        response = client.post(URL, json=json)
        return response.status_code, response.get_json()

    return post


def over_http(url: str):
    def post(json: dict) -> tuple[int, dict]:
        response = requests.post(url + URL, json=json, timeout=10)
        return response.status_code, response.json()

    return post


def wait_past_leases(redis, fingerprint: str, holds: int) -> None:
    """Wait until `holds` reservations are held and Redis's clock has passed the lease they were given."""
    deadline = time.monotonic() + 10
    while redis.zcard(keyspace.api_key_holds(fingerprint)) < holds:
        assert time.monotonic() < deadline, "the streams never reserved"
        time.sleep(0.01)
    given = max(score for _, score in redis.zrange(keyspace.api_key_holds(fingerprint), 0, -1, withscores=True))
    while True:
        seconds, micros = redis.time()
        if seconds * 1000 + micros // 1000 > given:
            return
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.02)


def ledger_of(app, fingerprint):
    with app.app_context():
        return services().keys.info(fingerprint)


def run_long_streams(post_stream, post, key: str, fingerprint: str, upstream, redis) -> tuple[list[int], int]:
    """Three streams of 3.5 s with a 1 s lease; once their leases have run out, spend until 402.
    Answers what each stream and the spending were delivered."""
    upstream.reset(answer=answer, piece_chars=20, chunk_delay=0.35)
    usages: list[int] = []
    streams = [threading.Thread(target=lambda: usages.append(streamed_usage(post_stream()))) for _ in range(3)]
    for thread in streams:
        thread.start()
    wait_past_leases(redis, fingerprint, 3)
    spent = spend_until_refused(post, key)
    assert not any(s.ended.is_set() for s in upstream.streams)  # the streams were in flight all along
    for thread in streams:
        thread.join(10)
    return usages, spent


@pytest.mark.slow
def test_streams_slower_than_the_lease_keep_their_holds_while_other_requests_reserve(leased, upstream, redis):
    app, key, fingerprint = leased

    def post_stream() -> bytes:
        return app.test_client().post(URL, json=body(key, LONG, True)).get_data()

    usages, spent = run_long_streams(post_stream, in_process(app), key, fingerprint, upstream, redis)
    assert usages == [STREAMED] * 3
    info = ledger_of(app, fingerprint)
    assert info.balance + info.reserved + info.used == GRANT and info.reserved == 0
    assert info.used == sum(usages) + spent <= GRANT  # every delivered token charged, never past the grant


@pytest.mark.slow
def test_gevent_workers_keep_the_holds_of_long_streams(leased, upstream, redis, redis_server, tmp_path):
    app, key, fingerprint = leased
    settings = {"BOT_LEASE_SECONDS": "1", "BOT_ANSWER_TOKENS": str(STREAMED - 1), "BOT_RATE_KEY_RPM": "0"}
    server = Gunicorn(tmp_path, redis_server.url, upstream.url, WEB_CONCURRENCY="2", **settings).start()
    try:

        def post_stream() -> bytes:
            return requests.post(server.url + URL, json=body(key, LONG, True), timeout=10).content

        usages, spent = run_long_streams(post_stream, over_http(server.url), key, fingerprint, upstream, redis)
    finally:
        server.stop()
    assert usages == [STREAMED] * 3
    info = ledger_of(app, fingerprint)
    assert info.balance + info.reserved + info.used == GRANT and info.reserved == 0
    assert info.used == sum(usages) + spent <= GRANT


@pytest.mark.slow
def test_callers_who_stop_reading_cannot_free_their_streams_holds(leased, upstream, redis):
    app, key, fingerprint = leased
    upstream.reset(answer=answer, piece_chars=20)  # the model writes at once; the callers read slowly
    events, firsts = [], []
    for _ in range(3):
        response = app.test_client().post(URL, json=body(key, LONG, True), buffered=False)
        events.append(iter(response.response))
        firsts.append(next(events[-1]))
    wait_past_leases(redis, fingerprint, 3)  # the callers read nothing meanwhile
    spent = spend_until_refused(in_process(app), key)
    delivered = [streamed_usage(first + b"".join(rest)) for first, rest in zip(firsts, events, strict=True)]
    assert delivered == [STREAMED] * 3
    info = ledger_of(app, fingerprint)
    assert info.balance + info.reserved + info.used == GRANT and info.reserved == 0
    assert info.used == sum(delivered) + spent <= GRANT


def test_a_stream_shorter_than_a_third_of_the_lease_costs_its_two_round_trips(app, issue_key, redis_server):
    key = issue_key()
    client = app.test_client()
    client.post(URL, json=body(key, SHORT, True)).get_data()  # warm up: scripts loaded
    with Monitor(redis_server.url) as monitor:
        assert client.post(URL, json=body(key, SHORT, True)).status_code == 200
    assert monitor.commands == ["EVALSHA", "EVALSHA"]  # reserve, settle: no renewal
