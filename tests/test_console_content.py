"""/admin/content: the system prompt set from the console overrides BOT_SYSTEM_PROMPT on every
worker within 5 s (each polls Redis; the test polls by hand), after a confirmation, audited."""

from __future__ import annotations

import re

from bot.console.prompt import PROMPT_KEY
from tests.console import admin_client, entries
from tests.portal import csrf_of


def asked_with(client, key: str, upstream) -> str:
    """The system message the model received for one API question."""
    upstream.reset()
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你是谁"}]}
    assert client.post("/api/v1/chat/completions", json=body).status_code == 200
    return upstream.received[-1].body["messages"][0]["content"]


def test_a_saved_prompt_is_used_after_the_next_poll_and_the_default_comes_back_on_reset(
    app, client, issue_key, upstream, redis
):
    key = issue_key()
    default = asked_with(client, key, upstream)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content").text)
    shown = browser.post("/admin/content/prompt", data={"prompt": "你是小一。\r\n回答简短。", "csrf_token": csrf})
    assert "确认保存系统提示" in shown.text and "11 / 2000" in shown.text
    assert redis.get(PROMPT_KEY) is None  # the preview saves nothing
    carried = re.search(r'name="prompt" value="([^"]*)"', shown.text)[1]
    saved = browser.post("/admin/content/prompt/save", data={"prompt": carried, "csrf_token": csrf})
    assert saved.status_code == 303 and redis.get(PROMPT_KEY) == "你是小一。\n回答简短。"
    assert entries(app)[0].action == "system prompt" and entries(app)[0].detail == "11 characters"
    app.extensions["prompt_poll"].poll()  # what each worker does every 2 s
    assert asked_with(client, key, upstream) == "你是小一。\n回答简短。"
    assert "当前使用控制台设置的系统提示" in browser.get("/admin/content").text
    assert browser.post("/admin/content/prompt/reset", data={"csrf_token": csrf}).status_code == 303
    app.extensions["prompt_poll"].poll()
    assert asked_with(client, key, upstream) == default and entries(app)[0].action == "system prompt reset"


def test_an_empty_or_overlong_prompt_is_refused_and_nothing_changes(app, client, redis):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content").text)
    for text, problem in (("   ", "不能为空"), ("字" * 2001, "2001 个字符，超过 2000")):
        shown = browser.post("/admin/content/prompt", data={"prompt": text, "csrf_token": csrf})
        assert problem in shown.text and "确认保存系统提示" not in shown.text
        assert browser.post("/admin/content/prompt/save", data={"prompt": text, "csrf_token": csrf}).status_code == 400
    assert browser.post("/admin/content/prompt/save", data={"prompt": "x"}).status_code == 400  # no CSRF token
    assert redis.get(PROMPT_KEY) is None and [e.action for e in entries(app)] == ["console link"]


def test_a_poll_that_redis_cannot_answer_keeps_the_prompt_in_use(app, redis):
    poller = app.extensions["prompt_poll"]
    redis.set(PROMPT_KEY, "覆盖")
    poller.poll()
    broken = type(poller)(redis.__class__(port=1, socket_connect_timeout=0.2), poller.chat, poller.default)
    broken.poll()
    assert poller.chat.system_prompt == "覆盖"


def _confirm_and_apply(browser, csrf: str, action: str, words: str):
    shown = browser.post("/admin/content/words/confirm", data={"action": action, "words": words, "csrf_token": csrf})
    assert f"确认{ {'add': '添加', 'remove': '删除', 'import': '导入'}[action] }" in shown.text
    return browser.post("/admin/content/words/apply", data={"action": action, "words": words, "csrf_token": csrf})


def test_words_are_added_imported_searched_and_removed_after_confirmation_and_audited_without_the_word(
    app, client, redis
):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content/words").text)
    assert _confirm_and_apply(browser, csrf, "add", "违禁甲").status_code == 303
    assert _confirm_and_apply(browser, csrf, "import", "违禁乙\n违禁丙\n").status_code == 303
    listed = browser.get("/admin/content/words").text
    assert all(w in listed for w in ("违禁甲", "违禁乙", "违禁丙")) and "共 3 个" in listed
    found = browser.post("/admin/content/words", data={"find": "乙", "csrf_token": csrf}).text
    assert "违禁乙" in found and "违禁甲" not in found.split('id="words"')[1]
    assert _confirm_and_apply(browser, csrf, "remove", "违禁甲").status_code == 303
    assert "共 2 个" in browser.get("/admin/content/words").text
    audited = [(e.action, e.detail) for e in entries(app)][:3]
    assert audited == [("ban remove", "1 word(s), 1 changed"), ("ban import", "2 word(s), 2 changed"),
                       ("ban add", "1 word(s), 1 changed")]  # fmt: skip
    assert not any("违禁" in f"{e.target}{e.detail}" for e in entries(app))


def test_a_bad_word_or_import_is_refused_before_anything_changes(app, client):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content/words").text)
    for action, words in (("add", "   "), ("add", "！！"), ("add", "字" * 500), ("delete", "违禁")):
        shown = browser.post("/admin/content/words/confirm", data={"action": action, "words": words,
                                                                   "csrf_token": csrf})  # fmt: skip
        assert "确认" not in shown.text.split("<h1>")[1].split("</h1>")[1].split('id="change-title"')[0], words
        applied = browser.post(
            "/admin/content/words/apply", data={"action": action, "words": words, "csrf_token": csrf}
        )
        assert applied.status_code == 400
    assert "共 0 个" in browser.get("/admin/content/words").text
