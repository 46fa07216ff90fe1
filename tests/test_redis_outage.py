"""Redis stops mid-traffic, for real: gunicorn (2 gevent workers) on its own redis-server (AOF on),
traffic on the webhook and both API doors, then redis-server is terminated, killed or frozen and
brought back on the same port and directory.

While it is gone every caller gets the short busy answer in time; once it is back the service answers
again by itself within 5 s; nothing was lost or charged twice."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis as redis_py

from bot.embedded import EmbeddedRedis
from bot.store import keyspace
from bot.store.apikeys import KeyStore
from bot.store.vault import Vault
from tests import traffic
from tests.conftest import TEST_SECRET
from tests.follower import recorded
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for

pytestmark = pytest.mark.slow

GRANT = 10_000
LEASE = 1  # BOT_LEASE_SECONDS: how soon a stranded claim or reservation may be taken back


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("outage"), port=free_port(), persist=True).start()
    yield server
    if server.process and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture(scope="module")
def service(own_redis, upstream_server):
    env = service_env(
        own_redis.url,
        upstream_server.url,
        OPENAI_API_KEY="sk-upstream-test",
        OPENAI_TIMEOUT="3",
        BOT_LEASE_SECONDS=str(LEASE),
        BOT_KEY_GRANT_TOKENS=str(GRANT),
        BOT_RATE_KEY_RPM="0",
        BOT_RATE_OPENID_RPM="0",
    )
    port = free_port()
    process = start_gunicorn(env, port)
    yield f"http://127.0.0.1:{port}"
    stop(process)


@pytest.fixture
def db(own_redis):
    client = redis_py.Redis.from_url(own_redis.url, decode_responses=True)
    yield client
    client.close()


def take_down(server: EmbeddedRedis, how: str) -> None:
    if how == "freeze":  # hung, not gone: connections open, nothing answered
        os.kill(server.process.pid, signal.SIGSTOP)
        return
    server.process.send_signal(signal.SIGTERM if how == "terminate" else signal.SIGKILL)
    server.process.wait()
    server.process = None


def bring_back(server: EmbeddedRedis, how: str) -> None:
    if how == "freeze":
        os.kill(server.process.pid, signal.SIGCONT)
    else:
        server.start()  # same port, same directory: it loads its append-only file


@pytest.mark.parametrize("how", ["terminate", "kill", "freeze"])
def test_redis_stops_mid_traffic(how, own_redis, service, db, upstream):
    upstream.reset(latency=0.2)  # requests are with the model when Redis goes
    keystore = KeyStore(db, Vault(TEST_SECRET, ""), GRANT)
    followers = [f"o{how}{i}".ljust(28, "0") for i in range(3)]
    keys = [keystore.issue(f"oKey{how}{i}".ljust(28, "0"))[0] for i in range(4)]
    callers = [lambda q, f=f: traffic.wechat(service, f, q) for f in followers]
    callers += [lambda q, k=k: traffic.spec(service, k, q) for k in keys[:2]]
    callers += [lambda q, k=k: traffic.openai(service, k, q) for k in keys[2:]]
    doors, started = {"wechat", "spec", "openai"}, time.monotonic()
    load = traffic.Traffic(callers).start()
    try:
        assert wait_for(lambda: load.answered_since(started) == doors, timeout=10)  # every door answers
        down = time.monotonic()
        take_down(own_redis, how)
        time.sleep(5.0 if how == "freeze" else 2.0)  # frozen, each request waits out a 2 s timeout
        bring_back(own_redis, how)
        back = time.monotonic()
        wait_for(lambda: load.answered_since(back) == doors, timeout=10)
        recovered = time.monotonic() - back
    finally:
        results = load.stop()

    assert recovered <= 5.0, f"answers resumed {recovered:.1f}s after Redis came back"
    strange = [r for r in results if r.outcome.startswith("other")]
    assert not strange, strange[:3]
    during = [r for r in results if down + 0.3 < r.ended < back]  # answered while Redis was away
    assert {r.door for r in during if r.outcome == "busy"} == {"wechat", "spec", "openai"}
    assert all(r.outcome == "busy" for r in during)
    slowest = {door: max(r.took for r in results if r.door == door) for door in ("wechat", "spec", "openai")}
    # A frozen Redis costs a 2 s timeout per command: a delivery whose call was finishing when it froze
    # answers in ~4.2 s (model, finish, one poll), inside WeChat's 5 s; the APIs in ~2.2 s.
    assert slowest["wechat"] < 5.0 and max(slowest.values()) < 6.0, slowest
    print(f"\n{how}: resumed {recovered:.2f}s after Redis returned; slowest {slowest}")

    time.sleep(LEASE + 0.3)  # a claim or reservation stranded by the outage may now be taken back
    for who in followers:  # every follower's history is whole question/answer pairs
        assert traffic.wechat(service, who, "after").outcome == "answer" and recorded(db, who)
        history = db.lrange(keyspace.history(who), 0, -1)
        assert len(history) % 2 == 0 and history[-2:] == ["after", "回答：after"]
        assert all(a == traffic.ANSWER + q for q, a in zip(history[::2], history[1::2], strict=True))
    for key in keys:
        assert traffic.spec(service, key, "after").outcome == "answer"
        record = db.hgetall(keyspace.api_key(keystore.fingerprint(key)))
        balance, used, reserved = (int(record.get(f, 0)) for f in ("balance", "used", "reserved"))
        assert balance + used == GRANT and reserved == 0, record  # nothing lost, nothing held
