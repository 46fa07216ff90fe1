"""Admins manage the bot from WeChat; everyone else who types the same text is just chatting."""

from __future__ import annotations

import json
import logging
import re
import threading
import time

import pytest

from bot.services import services
from bot.store import keyspace
from bot.store.menus import MENU_FILE
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post

USER = "oFollower0000000000000000003"


@pytest.fixture
def user(client):
    return Follower(flask_post(client), ACCOUNT, USER)


def key_of(reply: str) -> str:
    return re.search(r"sk-[A-Za-z0-9]{48}", reply).group(0)


def api_status(client, key):
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "hi"}]}
    return client.post("/api/v1/chat/completions", json=body).get_json()["code"]


def test_help_lists_the_commands(admin, upstream):
    reply = admin.say("/help")
    for command in ("/reset", "/rotate", "/grant", "/stats", "/menu"):
        assert command in reply
    assert upstream.calls == 0


def test_a_follower_typing_a_command_is_just_chatting(user, upstream):
    assert user.say("/help") == "回答：/help"
    assert user.say("/grant oX 100") == "回答：/grant oX 100"
    assert upstream.calls == 2


def test_reset_by_openid_and_by_key(admin, user, redis):
    user.say("记住我")
    assert "已清空" in admin.say(f"/reset {USER}")
    assert redis.exists(keyspace.history(USER)) == 0
    key = key_of(user.say("key"))
    user.say("again")
    assert USER in admin.say(f"/reset {key}")
    assert redis.exists(keyspace.history(USER)) == 0


def test_rotate_revokes_at_once_and_keeps_the_balance(admin, user, client):
    old = key_of(user.say("key"))
    assert "50" in admin.say(f"/grant {USER} 50")
    reply = admin.say(f"/rotate {USER}")
    assert "10050" in reply and old not in reply  # the admin never sees a follower's key
    assert api_status(client, old) == 40102
    new = key_of(user.say("key"))
    assert new != old and "10050" in user.say("key")
    assert api_status(client, new) == 0


def test_grant_by_key_and_bad_grants(admin, user):
    key = key_of(user.say("key"))
    assert "10100" in admin.say(f"/grant {key} 100")
    for bad in ("/grant", f"/grant {USER}", f"/grant {USER} -5", f"/grant {USER} lots", "/grant oNobody 5"):
        assert "用法" in admin.say(bad)
    assert "10100" in user.click("MY_USAGE")


def test_stats(admin, user, client):
    key = key_of(user.say("key"))
    user.say("hello")
    assert api_status(client, key) == 0
    assert api_status(client, key) == 0
    reply = admin.say("/stats")
    assert "已领取密钥的用户：1" in reply and "公众号消息：1 条" in reply
    assert "API 调用：2 次" in reply


def test_unknown_command_shows_help(admin):
    assert "未知命令 /nope" in admin.say("/nope")


def test_menu_is_published_through_wechats_api(admin, wechat_api):
    assert admin.say("/menu") == "菜单已发布：默认菜单 config/menu.json（控制台还没有保存过菜单），3 个按钮。"
    [call] = wechat_api.calls_to("/cgi-bin/menu/create")
    assert call.body == json.loads(MENU_FILE.read_text(encoding="utf-8"))
    assert call.query["access_token"] == wechat_api.current_token
    assert [b["name"] for b in call.body["button"]] == ["获取密钥", "重置对话", "我的"]


def test_menu_failure_is_reported_to_the_admin(admin, wechat_api):
    wechat_api.fail("/cgi-bin/menu/create", 45009)
    assert "45009" in admin.say("/menu")


def test_admin_actions_are_logged_with_the_admin_openid(admin, user, caplog):
    key = key_of(user.say("key"))
    with caplog.at_level(logging.INFO):
        admin.say(f"/grant {key} 7")
    lines = [r.getMessage() for r in caplog.records if "admin" in r.getMessage()]
    assert any(ADMIN in line and "/grant" in line for line in lines)
    assert key not in caplog.text


def test_one_token_is_shared_and_refreshed_once_when_rejected(app, wechat_api):
    with app.app_context():
        client = services().wechat_client
        client.call(lambda: client.menu.create({"button": []}))
        client.call(lambda: client.menu.create({"button": []}))
        assert len(wechat_api.calls_to("/cgi-bin/token")) == 1
        wechat_api.fail("/cgi-bin/menu/create", 40001)
        client.call(lambda: client.menu.create({"button": []}))
    assert len(wechat_api.calls_to("/cgi-bin/token")) == 2
    assert len(wechat_api.calls_to("/cgi-bin/menu/create")) == 4


def test_workers_refreshing_together_fetch_one_token(config, redis, wechat_api, make_app):
    apps = [make_app(config) for _ in range(6)]  # six workers' own clients
    tokens = []

    def use(app):
        with app.app_context():
            tokens.append(services().wechat_client.access_token)

    threads = [threading.Thread(target=use, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wechat_api.calls_to("/cgi-bin/token")) == 1
    assert set(tokens) == {wechat_api.current_token}


def test_a_hung_token_endpoint_is_reported_within_wechats_window(admin, wechat_api):
    wechat_api.delay("/cgi-bin/token", 6.0)
    started = time.monotonic()
    reply = admin.say("/menu")
    assert reply == "发布菜单失败：微信接口暂时无法访问，请稍后再试。"
    assert time.monotonic() - started < 4.5  # the admin reads why, WeChat has not given up
    assert wechat_api.calls_to("/cgi-bin/menu/create") == []
