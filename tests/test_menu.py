"""The account's menu (config/menu.json, published by /menu): within WeChat's rules, and every button a
follower clicks is answered, 控制台 with a sign-in link to the portal."""

from __future__ import annotations

import json

from bot.store.menus import MENU_FILE
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.portal import link_path

OPENID = "oMenu0000000000000000000001"


def clicks(menu: dict) -> dict[str, str]:
    """Each click button's key and name, top level and under a parent."""
    buttons = [sub for b in menu["button"] for sub in b.get("sub_button", [b])]
    return {b["key"]: b["name"] for b in buttons}


def test_the_menu_meets_wechats_rules():
    # mp.weixin.qq.com's 自定义菜单 rules: at most 3 buttons of at most 5 each; a name of at most
    # 16 bytes at the top and 60 below; a click's key at most 128 bytes; a parent has no type of its own.
    menu = json.loads(MENU_FILE.read_text(encoding="utf-8"))
    assert 1 <= len(menu["button"]) <= 3
    for button in menu["button"]:
        assert 0 < len(button["name"].encode()) <= 16, button
        if "sub_button" in button:
            assert "type" not in button and 1 <= len(button["sub_button"]) <= 5, button
            assert all(0 < len(sub["name"].encode()) <= 60 and "sub_button" not in sub for sub in button["sub_button"])
    buttons = [sub for b in menu["button"] for sub in b.get("sub_button", [b])]
    assert all(b["type"] == "click" and 0 < len(b["key"].encode()) <= 128 for b in buttons)
    assert len({b["key"] for b in buttons}) == len(buttons)


def test_every_button_is_answered_and_the_console_button_signs_in(app, client):
    menu = json.loads(MENU_FILE.read_text(encoding="utf-8"))
    named = {"GET_KEY": "获取密钥", "RESET_CHAT": "重置对话", "MY_USAGE": "我的用量", "CONSOLE": "控制台"}
    assert clicks(menu) == named
    follower = Follower(flask_post(client), ACCOUNT, OPENID)
    for key in clicks(menu):
        assert follower.click(key), key
    opened = app.test_client().get(link_path(follower.click("CONSOLE")))
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/me")
