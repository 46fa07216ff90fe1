"""Fixtures: a real redis-server per test session (flushed per test), a real upstream double on
127.0.0.1, and the app built with create_app() against both."""

from __future__ import annotations

import secrets

import pytest
import redis as redis_py

from bot import create_app
from bot.extensions import services
from bot.store.embedded import EmbeddedRedis
from tests.doubles.upstream import UpstreamDouble

TEST_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server):
    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def upstream_server():
    server = UpstreamDouble().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server):
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def config(redis_server, upstream) -> dict[str, str]:
    """The settings of the app under test (they replace the environment entirely)."""
    return {
        "BOT_ENV": "test",
        "REDIS_URL": redis_server.url,
        "BOT_SECRET": TEST_SECRET,
        "OPENAI_API_KEY": "sk-upstream-test",
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_TIMEOUT": "2",
    }


@pytest.fixture
def app(config, redis):
    app = create_app(config)
    yield app
    services_ = app.extensions["bot"]
    services_.redis.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def issue_key(app):
    """Issue the API key of an openid, as the follower would get it from the official account."""

    def issue(openid: str | None = None) -> str:
        with app.app_context():
            return services().keys.issue(openid or "oUser" + secrets.token_hex(4))[0]

    return issue
