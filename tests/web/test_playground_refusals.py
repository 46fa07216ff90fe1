"""The playground when the content screen refuses: a question with a banned word reads as a plain
sentence (40006), and the follower can ask again; nothing on the page fails otherwise."""

from __future__ import annotations

import pytest

from bot import create_app
from bot.services import services
from tests.servers import werkzeug_server
from tests.web.browser import PHONE, context, link_from_account


@pytest.fixture(scope="module")
def portal(redis_server, upstream_server, wechat_api_server, tmp_path_factory):
    """The portal served with a banned-words list (敏感词)."""
    from tests.conftest import ACCOUNT, TEST_SECRET, WECHAT_SECRET

    words = tmp_path_factory.mktemp("words") / "words.txt"
    words.write_text("敏感词\n", encoding="utf-8")
    app = create_app({
        "BOT_ENV": "test", "REDIS_URL": redis_server.url, "BOT_SECRET": TEST_SECRET,
        "OPENAI_API_KEY": "sk-upstream-test", "OPENAI_BASE_URL": upstream_server.url, "OPENAI_MODEL": "test-model",
        "WECHAT_TOKEN": ACCOUNT.token, "WECHAT_AES_KEY": ACCOUNT.aes_key, "WECHAT_APPID": ACCOUNT.appid,
        "WECHAT_SECRET": WECHAT_SECRET, "WECHAT_API_BASE_URL": wechat_api_server.url,
        "BOT_SENSITIVE_WORDS_FILES": str(words),
    })  # fmt: skip
    with werkzeug_server(app) as base:
        yield base, app
    app.extensions["bot"].close()


def test_a_refused_question_reads_as_a_sentence_and_the_next_one_is_answered(browser, portal, upstream_server):
    base, app = portal
    openid = "oBrowserRefused000000000001"
    with app.app_context():
        services().keys.issue(openid)
    upstream_server.reset()
    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_from_account(base, openid))
        page.goto("/playground")
        watch.expected.add(f"{base}/api/v1/chat/completions")  # the API's 400 is what the page explains
        page.get_by_label("你的问题").fill("说说敏感词")
        page.get_by_role("button", name="发送").click()
        alert = page.get_by_role("alert")
        alert.filter(has_text="换个说法").wait_for(timeout=10_000)
        assert "40006" not in alert.text_content() and "出错了" not in alert.text_content()
        assert upstream_server.calls == 0
        page.get_by_label("你的问题").fill("你好")
        page.get_by_role("button", name="发送").click()
        page.locator("#dialogue .usage").wait_for()
        assert page.locator("#dialogue li.assistant .text").last.text_content() == "回答：你好"
        assert not alert.is_visible()
        assert [p for p in watch.problems if "HTTP 400" not in p] == []
