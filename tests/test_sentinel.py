"""REDIS_SENTINELS: the service finds its master through Redis Sentinel (real processes)."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis as redis_py

from bot.embedded import EmbeddedRedis, find_redis_server
from tests.procs import free_port
from tests.queued import QUICK, assert_woken_in_order

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sentinel")
    master = EmbeddedRedis(directory / "master", port=free_port(), persist=False).start()
    port = free_port()
    conf = directory / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor xiaoyi 127.0.0.1 {master.port} 1\nsentinel down-after-milliseconds xiaoyi 1000\n"
    )
    process = subprocess.Popen([find_redis_server(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    client = redis_py.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.execute_command("SENTINEL", "get-master-addr-by-name", "xiaoyi"):
                break
        except redis_py.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("sentinel did not come up")
        time.sleep(0.1)
    client.close()
    yield port, master
    process.terminate()
    process.wait()
    master.stop()


def test_the_service_reaches_redis_through_sentinel(sentinel, config, make_app, upstream):
    port, master = sentinel
    settings = {k: v for k, v in config.items() if k != "REDIS_URL"}
    app = make_app({**settings, "REDIS_SENTINELS": f"127.0.0.1:{port}", "REDIS_SENTINEL_MASTER": "xiaoyi"})
    from bot.services import services

    with app.app_context():
        key, _ = services().keys.issue("oSentinel")
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "hi"}]}
    assert app.test_client().post("/api/v1/chat/completions", json=body).get_json()["code"] == 0
    direct = redis_py.Redis(port=master.port, decode_responses=True)
    assert direct.exists("bot:{u:oSentinel}:account")  # the data went to the master Sentinel named
    direct.close()


def test_queued_questions_are_woken_through_sentinel(sentinel, config, make_app, upstream):
    """The worker's one subscription is made on the master Sentinel names, as every other connection."""
    port, _ = sentinel
    settings = {k: v for k, v in config.items() if k != "REDIS_URL"}
    sentinels = {"REDIS_SENTINELS": f"127.0.0.1:{port}", "REDIS_SENTINEL_MASTER": "xiaoyi"}
    assert_woken_in_order(make_app({**settings, **sentinels, **QUICK}), upstream, 2)
