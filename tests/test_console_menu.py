"""/admin/menu: the menu as a form, checked against WeChat's rules, saved and published through
WeChat's API (the double on 127.0.0.1), its answer shown and audited."""

from __future__ import annotations

import html
import json
import re

import pytest

from bot.services import services
from bot.store.audit import AuditLog
from bot.store.menus import MENU_FILE
from tests.console import admin_client, entries
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


def test_the_wechat_command_publishes_the_menu_the_console_saved_and_says_so(app, client, admin, wechat_api, redis):
    assert "默认菜单 config/menu.json" in admin.say("/menu")  # nothing saved yet: the default
    browser = admin_client(app, client)
    shown, csrf = preview(browser, form())
    carried = html.unescape(re.search(r'name="menu" value="([^"]+)"', shown.text)[1])
    browser.post("/admin/menu/publish", data={"menu": carried, "csrf_token": csrf})
    reply = admin.say("/menu")
    assert reply == "菜单已发布：控制台保存的菜单，2 个按钮。"
    default, console, command = wechat_api.calls_to(MENU)
    assert default.body == json.loads(MENU_FILE.read_text(encoding="utf-8"))
    assert command.body == console.body == json.loads(redis.get("bot:menu"))  # not config/menu.json again
    assert entries(app)[0].detail.endswith(reply)  # the audit entry says which menu went out


@pytest.mark.parametrize("saved", ["not json", '{"button": []}', '["a"]', '{"button": "x"}'])
def test_a_saved_menu_that_is_not_one_is_not_published_and_the_form_starts_afresh(
    app, client, admin, wechat_api, redis, saved
):
    redis.set("bot:menu", saved)  # written by hand, or cut short
    assert admin.say("/menu") == "控制台保存的菜单（Redis bot:menu）无法读取，未发布。请在控制台的「菜单」页重新保存。"
    assert wechat_api.calls_to(MENU) == [] and redis.get("bot:menu") == saved  # nothing sent, nothing lost
    page = admin_client(app, client).get("/admin/menu")
    assert page.status_code == 200 and 'value="GET_KEY"' in page.text  # config/menu.json, to save over it
