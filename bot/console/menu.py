"""/admin/menu: the official account's menu as a form, checked against WeChat's rules, saved to
Redis and published through WeChat's API (menu/create), whose answer is shown.

config/menu.json stays the default: the form starts from it until a menu is saved. WeChat's rules:
1 to 3 buttons; a button has up to 5 sub-buttons (then it only opens them); names at most 16 bytes
(a button) or 60 (a sub-button); a click's key at most 128 bytes; a view's URL http(s), at most 1024.
"""

from __future__ import annotations

import json
import logging

import requests
from flask import render_template, request
from wechatpy.exceptions import WeChatClientException

from bot.console.access import audit, bp
from bot.services import services
from bot.store import menus

logger = logging.getLogger(__name__)
TOPS, SUBS = 3, 5
TYPES = ("click", "view")


def current_menu() -> dict:
    """The saved menu, else config/menu.json (also when what is saved is not a menu: the form replaces it)."""
    try:
        return menus.current_menu(services().redis)[0]
    except menus.UnreadableMenu:
        return menus.default_menu()


def _button(name: str, kind: str, value: str, limit: int, where: str, problems: list[str]) -> dict:
    """One leaf button from the form, its problems appended (in Chinese, naming the slot)."""
    if len(name.encode()) > limit:
        problems.append(f"{where}：名称超过 {limit} 字节（{len(name.encode())}）")
    if kind not in TYPES:
        problems.append(f"{where}：类型须为 click 或 view")
        return {}
    if kind == "click" and not 0 < len(value.encode()) <= 128:
        problems.append(f"{where}：click 的 key 须为 1 到 128 字节")
    if kind == "view" and (not value.startswith(("http://", "https://")) or len(value.encode()) > 1024):
        problems.append(f"{where}：view 的网址须以 http:// 或 https:// 开头，且不超过 1024 字节")
    return {"type": kind, "name": name, ("key" if kind == "click" else "url"): value}


def read_form(form: dict) -> tuple[dict, list[str]]:
    """The menu the form describes, and what breaks WeChat's rules (nothing: it can be published)."""
    problems: list[str] = []
    buttons = []
    for i in range(TOPS):
        name = form.get(f"b{i}_name", "").strip()
        subs = []
        for j in range(SUBS):
            sub = form.get(f"b{i}_{j}_name", "").strip()
            if sub:
                where = f"第 {i + 1} 个按钮的第 {j + 1} 个子按钮"
                kind, value = form.get(f"b{i}_{j}_type", ""), form.get(f"b{i}_{j}_value", "").strip()
                subs.append(_button(sub, kind, value, 60, where, problems))
        if not name:
            if subs:
                problems.append(f"第 {i + 1} 个按钮：有子按钮时须有名称")
            continue
        if subs:
            if len(name.encode()) > 16:
                problems.append(f"第 {i + 1} 个按钮：名称超过 16 字节（{len(name.encode())}）")
            buttons.append({"name": name, "sub_button": subs})
        else:
            kind, value = form.get(f"b{i}_type", ""), form.get(f"b{i}_value", "").strip()
            buttons.append(_button(name, kind, value, 16, f"第 {i + 1} 个按钮", problems))
    if not buttons:
        problems.append("菜单至少要有 1 个按钮")
    return {"button": buttons}, problems


def slots(menu: dict) -> list[dict]:
    """The menu laid out in the form's fixed slots (3 buttons, 5 sub-buttons each)."""
    tops = (menu.get("button") or [])[:TOPS]
    out = []
    for i in range(TOPS):
        top = tops[i] if i < len(tops) else {}
        subs = (top.get("sub_button") or [])[:SUBS]
        out.append({"top": top, "subs": [subs[j] if j < len(subs) else {} for j in range(SUBS)]})
    return out


@bp.get("/menu")
def menu_page() -> str:
    return render_template("console/menu.html", slots=slots(current_menu()), problems=[], preview=None)


@bp.post("/menu")
def menu_preview() -> str:
    """Check the form: its problems, or a preview with 保存并发布 (the confirmation)."""
    menu, problems = read_form(request.form)
    shown = None if problems else json.dumps(menu, ensure_ascii=False)
    return render_template("console/menu.html", slots=slots(menu), problems=problems, preview=menu, shown=shown)


@bp.post("/menu/publish")
def menu_publish() -> tuple[str, int] | str:
    """Save the previewed menu, audit it, publish it, and show WeChat's answer."""
    try:  # what the preview carried is checked again: the page's hidden field can be edited
        menu, problems = read_form(_as_form(json.loads(request.form.get("menu", ""))))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):  # [[[[…: json.loads recurses
        menu, problems = {}, ["菜单数据无效，请重新编辑"]
    if problems:
        return render_template("console/menu.html", slots=slots(menu), problems=problems, preview=None), 400
    menus.save_menu(services().redis, menu)
    answer = _publish(menu)
    audit("menu publish", "", answer)
    return render_template("console/menu.html", slots=slots(menu), problems=[], preview=None, answer=answer)


def _as_form(menu: dict) -> dict:
    """A menu as the form would post it, so a published menu passes the same checks as a typed one."""
    form: dict[str, str] = {}
    for i, top in enumerate(menu["button"]):
        form[f"b{i}_name"] = top["name"]
        form[f"b{i}_type"], form[f"b{i}_value"] = top.get("type", ""), top.get("key") or top.get("url") or ""
        for j, sub in enumerate(top.get("sub_button") or []):
            form[f"b{i}_{j}_name"], form[f"b{i}_{j}_type"] = sub["name"], sub.get("type", "")
            form[f"b{i}_{j}_value"] = sub.get("key") or sub.get("url") or ""
    if len(menu["button"]) > TOPS or any(len(t.get("sub_button") or []) > SUBS for t in menu["button"]):
        raise ValueError("more buttons than WeChat allows")
    return form


def _publish(menu: dict) -> str:
    """WeChat's answer to menu/create, in words."""
    client = services().wechat_client
    if client is None:
        return "未配置 WECHAT_APPID / WECHAT_SECRET，菜单已保存但未发布"
    try:
        client.call(lambda: client.menu.create(menu))
    except WeChatClientException as error:
        logger.error("console: menu/create failed errcode=%s", error.errcode)
        return f"发布失败：errcode={error.errcode} {error.errmsg}"
    except requests.RequestException as error:
        logger.error("console: menu/create unreachable: %s", type(error).__name__)
        return "发布失败：微信接口暂时无法访问，请稍后再试"
    return "已发布：微信返回 errcode=0 ok"
