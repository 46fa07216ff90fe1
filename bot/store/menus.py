"""The official account's menu: the one the console saved (Redis `bot:menu`), else config/menu.json.

The console (bot/console/menu.py) checks a menu against WeChat's rules before it saves it here;
the WeChat command /menu (bot/wechat/admin.py) publishes whichever of the two is current.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from bot.store.keyspace import PREFIX

MENU_FILE = Path(__file__).resolve().parent.parent.parent / "config" / "menu.json"
MENU_KEY = f"{PREFIX}:menu"
SAVED, DEFAULT = "saved", "default"


class UnreadableMenu(ValueError):
    """What `bot:menu` holds is not a menu (written by hand, or cut short): nothing is published."""


def default_menu() -> dict:
    return json.loads(MENU_FILE.read_text(encoding="utf-8"))


def current_menu(client: redis.Redis) -> tuple[dict, str]:
    """The menu to publish and where it came from (SAVED or DEFAULT); UnreadableMenu if the saved one is not one."""
    saved = client.get(MENU_KEY)
    if not saved:
        return default_menu(), DEFAULT
    try:
        menu = json.loads(saved)
    except ValueError as error:
        raise UnreadableMenu(f"{MENU_KEY} is not JSON: {error}") from None
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list) or not menu["button"]:
        raise UnreadableMenu(f"{MENU_KEY} holds no list of buttons")
    return menu, SAVED


def save_menu(client: redis.Redis, menu: dict) -> None:
    """Keep a menu the console checked; /menu and the console's form start from it from now on."""
    client.set(MENU_KEY, json.dumps(menu, ensure_ascii=False))
