"""The browser tests' fixtures: one served portal per module, one chromium per session."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from bot import create_app
from tests.servers import werkzeug_server
from tests.web.browser import launch


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def portal(redis_server, upstream_server, wechat_api_server):
    """The app served over real HTTP on 127.0.0.1 (a threaded werkzeug server), its base URL and app."""
    from tests.conftest import ACCOUNT, ADMIN, TEST_SECRET, WECHAT_SECRET

    app = create_app({
        "BOT_ENV": "test", "REDIS_URL": redis_server.url, "BOT_SECRET": TEST_SECRET,
        "OPENAI_API_KEY": "sk-upstream-test", "OPENAI_BASE_URL": upstream_server.url, "OPENAI_MODEL": "test-model",
        "WECHAT_TOKEN": ACCOUNT.token, "WECHAT_AES_KEY": ACCOUNT.aes_key, "WECHAT_APPID": ACCOUNT.appid,
        "WECHAT_SECRET": WECHAT_SECRET, "WECHAT_API_BASE_URL": wechat_api_server.url, "BOT_ADMIN_OPENIDS": ADMIN,
    })  # fmt: skip
    with werkzeug_server(app) as base:
        yield base, app
    app.extensions["bot"].close()


@pytest.fixture(autouse=True)
def fresh_model(upstream_server):
    """Each browser test starts with the model double answering plainly: the double is shared by the
    session's test files, and another file may have left it failing or slow."""
    upstream_server.reset()
