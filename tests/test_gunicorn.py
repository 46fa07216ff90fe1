"""The real server: gunicorn with 2 gevent workers, the test redis-server, the upstream double.

One gunicorn serves the whole module. Keys are issued in-process (same Redis, same BOT_SECRET).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.store import keyspace
from tests.procs import wait_for
from tests.servers import Gunicorn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_server, upstream_server):
    # No rate limit: finding both workers may take many requests on one key.
    directory = tmp_path_factory.mktemp("gunicorn")
    gunicorn = Gunicorn(directory, redis_server.url, upstream_server.url, WEB_CONCURRENCY="2", BOT_RATE_KEY_RPM="0")
    yield gunicorn.start()
    gunicorn.stop()


def post(url, body, headers=None, **kwargs):
    """One request on a fresh connection (no session), so the kernel may hand it to either worker."""
    return requests.post(url, json=body, headers={"Connection": "close", **(headers or {})}, timeout=10, **kwargs)


def spec(server, key, question="hi"):
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": question}]}
    return post(server.url + "/api/v1/chat/completions", body)


def settled_count(server) -> int:
    """Requests in the access log once it stops growing: gunicorn logs a request after answering it,
    so the last request's line may land after its response did (and must not count as the next's)."""
    count = len(server.served())
    for _ in range(20):
        time.sleep(0.05)
        if len(server.served()) == count:
            break
        count = len(server.served())
    return count


def statuses_until_both_workers(server, send, limit=300):
    """Send requests until both workers have answered one; the statuses seen, per worker."""
    seen: dict[int, set[int]] = {}
    start = settled_count(server)
    for _ in range(limit):
        send()
        seen = {}
        for pid, status, _ in server.served()[start:]:
            seen.setdefault(pid, set()).add(status)
        if len(seen) == 2:
            return seen
    raise AssertionError(f"only {len(seen)} worker(s) answered {limit} requests")


def answered_only(server, key, status):
    """Both workers answered `key`, and every answer had `status`; else AssertionError with them."""
    seen = statuses_until_both_workers(server, lambda: spec(server, key))
    assert all(statuses == {status} for statuses in seen.values()), seen
    return True


def test_revoke_and_rotate_take_effect_on_the_next_request_on_every_worker(server, app, upstream):
    with app.app_context():
        store = services().keys
        old = store.issue("oRevokeMe")[0]
        assert answered_only(server, old, 200)
        new = store.rotate("oRevokeMe")
    assert answered_only(server, old, 401)  # no worker kept the old key anywhere
    assert spec(server, old).json()["code"] == 40102
    assert answered_only(server, new, 200)
    with app.app_context():
        services().keys.revoke("oRevokeMe")
    assert answered_only(server, new, 401)


def test_fifty_parallel_requests_never_overdraw_and_charge_exactly_the_usage(server, app, redis, upstream):
    upstream.reset(latency=0.3)
    with app.app_context():
        key = services().keys.issue("oRush")[0]
        record = keyspace.api_key(services().keys.fingerprint(key))
    prompt = estimate_tokens("你好世界")
    redis.hset(record, "balance", 10 * (prompt + 16))  # reservations of prompt + max_tokens: ~10 fit
    lowest, done = [10**9], threading.Event()

    def watch():
        # A reservation holds its tokens for the whole model call (0.3 s): a read every 10 ms sees any overdraw.
        while not done.wait(0.01):
            lowest[0] = min(lowest[0], int(redis.hget(record, "balance")))

    body = {"model": "m", "messages": [{"role": "user", "content": "你好世界"}], "max_tokens": 16}
    headers = {"Authorization": f"Bearer {key}"}
    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda _: post(server.url + "/v1/chat/completions", body, headers), range(50)))
    done.set()
    watcher.join()
    ok = [r.json() for r in responses if r.status_code == 200]
    refused = [r.json()["error"] for r in responses if r.status_code != 200]
    assert 5 <= len(ok) < 50 and {r.status_code for r in responses} == {200, 429}
    assert {e["code"] for e in refused} == {"insufficient_quota"}
    assert upstream.calls == len(ok)  # every refusal came before the model was called
    final = redis.hgetall(record)
    assert lowest[0] >= 0 and int(final["reserved"]) == 0
    charged = 10 * (prompt + 16) - int(final["balance"])
    assert charged == sum(body["usage"]["total_tokens"] for body in ok) == int(final["used"])


def read_events(response, started=0.0):
    """(seconds since `started`, event data) of each SSE event, as the client receives them."""
    received = []
    for line in response.iter_lines(chunk_size=1):
        if line.startswith(b"data: "):
            received.append((time.monotonic() - started, line[6:].decode()))
            yield received[-1]


def test_stream_pieces_reach_the_client_as_the_model_writes_them(server, app, upstream):
    upstream.reset(chunk_delay=0.25)
    with app.app_context():
        key = services().keys.issue("oWatcher")[0]
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "一二三四五六七八九十"}], "stream": True}
    started = time.monotonic()
    with post(server.url + "/api/v1/chat/completions", body, stream=True) as response:
        assert response.headers["X-Accel-Buffering"] == "no"
        events = list(read_events(response, started))
    assert len(events) == 6  # 4 pieces, the tail the banned-word filter held back (bot/safety/stream.py), the last
    first, last = events[0][0], events[-1][0]
    assert first > 0.2 and last - first > 0.6  # 4 pieces 0.25 s apart arrived 0.25 s apart, not at once
    assert json.loads(events[-1][1])["usage"]["completion_tokens"] > 0
    assert time.monotonic() - started < 3


def test_a_client_that_hangs_up_stops_the_model_and_pays_only_what_was_produced(server, app, redis, upstream):
    question = "一二三四五六七八九十" * 3
    answer = "回答：" + question
    upstream.reset(chunk_delay=0.1, piece_chars=1)
    with app.app_context():
        key = services().keys.issue("oQuitter")[0]
        record = keyspace.api_key(services().keys.fingerprint(key))
    body = {"model": "m", "messages": [{"role": "user", "content": question}], "stream": True}
    response = post(server.url + "/v1/chat/completions", body, {"Authorization": f"Bearer {key}"}, stream=True)
    seen = ""
    for _, data in read_events(response):
        seen += json.loads(data)["choices"][0]["delta"].get("content", "")
        if len(seen) >= 5:
            break
    response.close()
    (streamed,) = upstream.wait_for_streams(timeout=10)
    assert streamed.hung_up and len(streamed.pieces) < len(answer)
    assert wait_for(lambda: redis.hget(record, "reserved") == "0", timeout=5)
    billed = 10_000 - int(redis.hget(record, "balance"))
    produced = {estimate_tokens(answer[:n]) for n in range(len(seen), len(streamed.pieces) + 1)}
    assert billed - estimate_tokens(question) in produced
    assert billed < estimate_tokens(question) + estimate_tokens(answer)


def test_no_issued_key_reaches_the_servers_logs(server, app):
    with app.app_context():
        key = services().keys.issue("oLogged")[0]
    spec(server, key)
    post(server.url + "/v1/chat/completions", {"model": "m", "messages": []}, {"Authorization": f"Bearer {key}"})
    logs = server.logs()
    assert "/api/v1/chat/completions" in logs and key not in logs and key[3:] not in logs
