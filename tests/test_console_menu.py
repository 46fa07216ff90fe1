"""/admin/menu: the menu as a form, checked against WeChat's rules, saved and published through
WeChat's API (the double on 127.0.0.1), its answer shown and audited."""

from __future__ import annotations

import html
import json
import re

import pytest

from bot.services import services
from bot.store.audit import AuditLog
from tests.console import admin_client
from tests.portal import csrf_of

MENU = "/cgi-bin/menu/create"


def form(**fields: str) -> dict:
    base = {"b0_name": "获取密钥", "b0_type": "click", "b0_value": "GET_KEY",
            "b1_name": "更多", "b1_0_name": "文档", "b1_0_type": "view", "b1_0_value": "https://example.com/docs",
            "b1_1_name": "我的用量", "b1_1_type": "click", "b1_1_value": "MY_USAGE"}  # fmt: skip
    return {**base, **fields}


def preview(browser, fields: dict):
    csrf = csrf_of(browser.get("/admin/menu").text)
    return browser.post("/admin/menu", data={**fields, "csrf_token": csrf}), csrf


def test_the_form_starts_from_config_menu_json(app, client):
    page = admin_client(app, client).get("/admin/menu").text
    assert 'value="GET_KEY"' in page and 'value="RESET_CHAT"' in page and 'value="MY_USAGE"' in page


def test_a_menu_is_previewed_then_saved_published_and_audited(app, client, wechat_api, redis):
    browser = admin_client(app, client)
    shown, csrf = preview(browser, form())
    assert shown.status_code == 200 and "确认保存并发布到微信" in shown.text
    assert wechat_api.calls_to(MENU) == []  # a preview publishes nothing
    carried = html.unescape(re.search(r'name="menu" value="([^"]+)"', shown.text)[1])
    done = browser.post("/admin/menu/publish", data={"menu": carried, "csrf_token": csrf})
    assert done.status_code == 200 and "已发布：微信返回 errcode=0 ok" in done.text
    [call] = wechat_api.calls_to(MENU)
    assert call.body == {"button": [
        {"type": "click", "name": "获取密钥", "key": "GET_KEY"},
        {"name": "更多", "sub_button": [{"type": "view", "name": "文档", "url": "https://example.com/docs"},
                                        {"type": "click", "name": "我的用量", "key": "MY_USAGE"}]}]}  # fmt: skip
    assert json.loads(redis.get("bot:menu")) == call.body
    assert 'value="https://example.com/docs"' in browser.get("/admin/menu").text  # the saved one, now
    with app.app_context():
        entry = AuditLog(services().redis).recent()[0]
    assert (entry.action, entry.detail) == ("menu publish", "已发布：微信返回 errcode=0 ok")


@pytest.mark.parametrize(("fields", "problem"), [
    ({"b0_name": "一二三四五六"}, "名称超过 16 字节"),
    ({"b1_0_name": "长" * 21}, "名称超过 60 字节"),
    ({"b1_0_value": "javascript:alert(1)"}, "view 的网址须以 http:// 或 https:// 开头"),
    ({"b0_value": ""}, "click 的 key 须为 1 到 128 字节"),
    ({"b0_type": "miniprogram"}, "类型须为 click 或 view"),
    ({"b0_name": "", "b1_name": "", "b1_0_name": "", "b1_1_name": ""}, "至少要有 1 个按钮"),
])  # fmt: skip
def test_a_menu_against_wechats_rules_is_refused_with_the_reason(app, client, wechat_api, fields, problem):
    shown, _ = preview(admin_client(app, client), form(**fields))
    assert problem in shown.text and "确认保存并发布到微信" not in shown.text
    assert wechat_api.calls_to(MENU) == []


def test_an_edited_preview_is_checked_again_and_wechats_refusal_is_shown(app, client, wechat_api, redis):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/menu").text)
    four = {"button": [{"type": "click", "name": f"b{i}", "key": "K"} for i in range(4)]}
    for bad in (
        json.dumps(four),
        "not json",
        json.dumps({"button": [{"type": "view", "name": "x", "url": "ftp://x"}]}),
    ):
        assert browser.post("/admin/menu/publish", data={"menu": bad, "csrf_token": csrf}).status_code == 400
    assert wechat_api.calls_to(MENU) == [] and redis.get("bot:menu") is None
    wechat_api.fail(MENU, 40018)
    one = json.dumps({"button": [{"type": "click", "name": "密钥", "key": "GET_KEY"}]})
    done = browser.post("/admin/menu/publish", data={"menu": one, "csrf_token": csrf})
    assert "发布失败：errcode=40018" in done.text
