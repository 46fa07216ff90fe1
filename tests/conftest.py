"""Fixtures: a real redis-server per test session (flushed per test), a real upstream double on
127.0.0.1, and the app built with create_app() against both."""

from __future__ import annotations

import secrets

import pytest
import redis as redis_py

from bot import create_app
from bot.embedded import EmbeddedRedis
from bot.services import services
from bot.wechat.simulate import Account
from tests.doubles.upstream import UpstreamDouble
from tests.doubles.wechat_api import WeChatApiDouble
from tests.follower import Follower, flask_post

TEST_SECRET = "test-secret-" + "x" * 40
# Tencent's published sample EncodingAESKey; token and AppId of a test account.
ACCOUNT = Account(token="pamtest", aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appid="wxb11529c136998cb6")
WECHAT_SECRET = "wechat-app-secret"
ADMIN = "oAdmin0000000000000000000001"


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


@pytest.fixture(scope="session")
def backup_server():
    """A second model upstream, for failover (tests/test_failover*.py)."""
    server = UpstreamDouble().start()
    yield server
    server.stop()


@pytest.fixture
def backup(backup_server):
    backup_server.reset(answer=lambda messages: "备用：" + messages[-1]["content"])
    return backup_server


@pytest.fixture(scope="session")
def wechat_api_server():
    server = WeChatApiDouble(ACCOUNT.appid, WECHAT_SECRET)
    yield server
    server.stop()


@pytest.fixture
def wechat_api(wechat_api_server):
    wechat_api_server.reset()
    return wechat_api_server


@pytest.fixture
def config(redis_server, upstream, wechat_api) -> dict[str, str]:
    """The settings of the app under test (they replace the environment entirely)."""
    return {
        "BOT_ENV": "test",
        "REDIS_URL": redis_server.url,
        "BOT_SECRET": TEST_SECRET,
        "OPENAI_API_KEY": "sk-upstream-test",
        "OPENAI_BASE_URL": upstream.url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_TIMEOUT": "2",
        "WECHAT_TOKEN": ACCOUNT.token,
        "WECHAT_AES_KEY": ACCOUNT.aes_key,
        "WECHAT_APPID": ACCOUNT.appid,
        "WECHAT_SECRET": WECHAT_SECRET,
        "WECHAT_API_BASE_URL": wechat_api.url,
        "BOT_ADMIN_OPENIDS": ADMIN,
    }


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """Everything a test talks to is on 127.0.0.1: a proxy set in the shell must not come between."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def make_app(redis):
    """create_app() for tests that need other settings; every app's connections close after the test."""
    apps = []

    def make(config: dict[str, str]):
        apps.append(create_app(config))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["bot"].close()


@pytest.fixture
def app(config, make_app):
    return make_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(client):
    """The account's admin (in BOT_ADMIN_OPENIDS) on WeChat."""
    return Follower(flask_post(client), ACCOUNT, ADMIN)


@pytest.fixture
def client_in_mode(config, make_app):
    """A test client of an app whose account is in message mode `mode` (the console's 消息加解密方式)."""

    def client(mode: str):
        return make_app({**config, "WECHAT_MESSAGE_MODE": mode}).test_client()

    return client


@pytest.fixture
def issue_key(app):
    """Issue the API key of an openid, as the follower would get it from the official account."""

    def issue(openid: str | None = None) -> str:
        with app.app_context():
            return services().keys.issue(openid or "oUser" + secrets.token_hex(4))[0]

    return issue
