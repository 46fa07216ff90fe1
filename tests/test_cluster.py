"""The same flows on a 3-master Redis Cluster (started from the same redis-server binary): keys,
quota, WeChat chat with history, exactly-once delivery and owed answers. REDIS_URL names one node;
cluster mode is detected."""

from __future__ import annotations

import random
import socket
import time

import pytest
from redis.cluster import RedisCluster

from bot.embedded import EmbeddedCluster
from bot.services import services
from bot.store import keyspace
from bot.store.connection import disconnect
from bot.store.quota import KeyLedger
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded
from tests.helpers import ask, thinking
from tests.queued import assert_woken_in_order

pytestmark = pytest.mark.slow


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def cluster_ports(count: int = 3) -> list[int]:
    """Ports whose cluster-bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 29999)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    for attempt in range(3):  # a port found free may be taken before redis-server binds it: new ports
        cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), cluster_ports())
        try:
            cluster.start()  # stops what it started if it fails
            break
        except RuntimeError:
            if attempt == 2:
                raise
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_app(redis_cluster, config, make_app):
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    disconnect(client)
    overrides = {
        "REDIS_URL": redis_cluster.url,
        "BOT_WECHAT_TIMEOUT": "1",
        "BOT_WECHAT_WINDOW": "0.5",
        "OPENAI_TIMEOUT": "10",
    }
    app = make_app({**config, **overrides})
    assert isinstance(app.extensions["bot"].redis, RedisCluster)
    return app


def test_keys_and_quota_on_a_cluster(cluster_app, upstream):
    client = cluster_app.test_client()
    with cluster_app.app_context():
        store = services().keys
        key, created = store.issue("oCluster000000000000000000001")
        assert created and store.issue("oCluster000000000000000000001") == (key, False)
    answer = ask(client, key, "hello").get_json()
    assert answer["code"] == 0
    with cluster_app.app_context():
        info = store.info(store.fingerprint(key))
        assert info.balance == 10_000 - answer["usage"]["total_tokens"] and info.reserved == 0
        store.redis.hset(keyspace.api_key(info.fingerprint), "balance", 5)
    assert ask(client, key, "hello").get_json()["code"] == 40201
    with cluster_app.app_context():
        rotated = store.rotate("oCluster000000000000000000001")
    assert ask(client, key, "hi").get_json()["code"] == 40102
    assert ask(client, rotated, "hi").get_json()["code"] == 40201  # the balance moved with the key


def test_a_key_issued_after_a_revoke_and_a_renewed_hold_on_a_cluster(cluster_app, upstream):
    openid = "oCluster000000000000000000004"
    with cluster_app.app_context():
        store = services().keys
        key = store.issue(openid)[0]
    spent = ask(cluster_app.test_client(), key, "hello").get_json()["usage"]["total_tokens"]
    with cluster_app.app_context():
        assert store.revoke(openid)
        again, created = store.issue(openid)
        info = store.info(store.fingerprint(again))
        assert created and (info.balance, info.used) == (10_000 - spent, spent)  # continued, not a new grant
        now = [time.time()]
        ledger = KeyLedger(store.redis, clock=lambda: now[0], lease_seconds=60)
        payer = ledger.payer(info.fingerprint)
        reserved = payer.reserve(100, 20)
        now[0] += 30
        assert ledger.keeper.renew_due() == 1  # renewed through the cluster's pipeline
        store.rotate(openid)  # the request is still in flight
        assert payer.settle(reserved, 40) == 40
        info = store.info(store.fingerprint_of(openid))
    assert (info.balance, info.used, info.reserved) == (10_000 - spent - 40, spent + 40, 0)


def test_wechat_chat_history_and_exactly_once_on_a_cluster(cluster_app, upstream):
    follower = Follower(flask_post(cluster_app.test_client()), ACCOUNT, "oCluster000000000000000000002")
    assert follower.say("第一问", msg_id=1) == "回答：第一问"
    assert follower.say("第一问", msg_id=1) == "回答：第一问"  # WeChat's retry: same reply
    assert follower.say("第二问", msg_id=2) == "回答：第二问"
    assert upstream.calls == 2
    sent = [m["content"] for m in upstream.received[-1].body["messages"] if m["role"] != "system"]
    assert sent == ["第一问", "回答：第一问", "第二问"]
    assert "sk-" in follower.say("key")
    with cluster_app.app_context():
        day = services().stats.today()  # summed over every node
    assert (day.messages, day.key_owners) == (2, 1)


def test_owed_answers_on_a_cluster(cluster_app, upstream):
    upstream.reset(latency=6)  # each silent in-process delivery is held 2 s, past the 1 s deadline
    follower = Follower(flask_post(cluster_app.test_client()), ACCOUNT, "oCluster000000000000000000003")
    for _ in range(2):  # the first two deliveries stay silent
        assert follower.say("慢", msg_id=7) is None
    assert thinking(follower.say("慢", msg_id=7))
    assert follower.say("继续") == texts.WAITING
    assert recorded(cluster_app.extensions["bot"].redis, "oCluster000000000000000000003")  # the answer is in
    assert follower.say("继续") == "回答：慢"
    assert upstream.calls == 1


def test_queued_questions_are_woken_in_order_on_a_cluster(cluster_app, upstream):
    """The script PUBLISHes the wake-up on the follower's node; the worker hears it on whichever node
    it subscribed to."""
    assert_woken_in_order(cluster_app, upstream, 2)


def test_the_console_statistics_flush_in_one_pipeline_across_slots_on_a_cluster(cluster_app, upstream):
    """The hour's hash, the active HyperLogLogs and the words' day hash sit in different slots: redis-py's
    ClusterPipeline sends each node its part, and the dashboard reads every bucket back."""
    from datetime import datetime

    from bot.console.traffic import active_key, hour_of, read_active, words_key
    from bot.ids import CHINA
    from tests.console import admin_client

    client = cluster_app.test_client()
    assert Follower(flask_post(client), ACCOUNT, "oCluster000000000000000000005").say("你好")
    cluster_app.extensions["bot"].tally.hit(["违禁词"])
    now = datetime.now(CHINA)
    assert cluster_app.extensions["stats_flush"].flush(now=now) > 0
    redis, hour = cluster_app.extensions["bot"].redis, hour_of(now)
    assert len({redis.keyslot(k) for k in (active_key(hour), active_key(hour[:8]), words_key(hour[:8]))}) > 1
    assert read_active(redis, [hour, hour[:8]]) == [1, 1] and redis.hget(words_key(hour[:8]), "违禁词") == "1"
    assert '<dd id="today-followers">1</dd>' in admin_client(cluster_app, client).get("/admin").text
