"""Admin commands on the official account: only openids in BOT_ADMIN_OPENIDS reach this module."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
import requests
from wechatpy.exceptions import WeChatClientException

from bot.ids import log_id, valid_openid
from bot.safety.admin import ban_action, run_ban
from bot.safety.guard import ContentGuard
from bot.store.apikeys import KeyStore
from bot.store.audit import AuditLog
from bot.store.conversation import Conversation
from bot.store.menus import DEFAULT, SAVED, UnreadableMenu, current_menu, default_menu
from bot.store.stats import Stats
from bot.wechat import texts
from bot.wechat.client import SharedTokenClient

logger = logging.getLogger(__name__)

MAX_GRANT = 10**9
AUDITED = ("reset", "rotate", "grant", "menu")  # the commands that change something


class AdminCommands:
    """The commands, built once per app; `run` is told which admin sent each one (for the log)."""

    def __init__(
        self, keys: KeyStore, conversation: Conversation, stats: Stats, client: SharedTokenClient | None,
        guard: ContentGuard | None = None, upstreams: Callable[[], list[dict]] = list, audit: AuditLog | None = None,
        menu_redis: redis.Redis | None = None,
    ):  # fmt: skip
        self.menu_redis = menu_redis  # where the console saves its menu (bot/store/menus.py), for /menu
        self.audit = audit  # every command that changes something is written here before its reply
        self.guard = guard  # the banned words, for /ban and /stats
        self.keys = keys
        self.conversation = conversation
        self.stats = stats
        self.client = client  # WeChat's API, for /menu (None: WECHAT_APPID/WECHAT_SECRET not set)
        self.upstreams = upstreams  # the model upstreams' states in this worker (bot/chat/routing.py)

    def run(self, admin: str, text: str) -> str:
        """The reply to `text` ("/name args…") from `admin`, an openid the caller found in BOT_ADMIN_OPENIDS."""
        name, *args = text[1:].split() or ["help"]
        if name.lower() == "ban" and self.guard is not None:  # its word may hold spaces, and is not logged
            logger.info("admin %s ran /ban %s", admin, ban_action(args))
            reply = run_ban(self.guard.store, args)
            if ban_action(args) != "list":  # the word itself is not recorded, as it is not logged
                self.note(admin, f"ban {ban_action(args)}", detail=reply.splitlines()[0] if reply else "")
            return reply
        handler = getattr(self, f"do_{name.lower()}", None)
        if handler is None:
            return f"未知命令 /{name}。\n\n{texts.ADMIN_HELP}"
        reply = handler(admin, *args[:2]) if len(args) <= 2 else "参数太多。"
        logger.info("admin %s ran /%s %s", admin, name, " ".join(_loggable(a) for a in args))
        if name.lower() in AUDITED:
            target = (self._openid(args[0]) or _loggable(args[0])) if args else ""  # a key: its owner
            self.note(admin, name.lower(), target, f"{' '.join(args[1:2])} → {reply}")
        return reply

    def note(self, admin: str, action: str, target: str = "", detail: str = "") -> None:
        """Write an admin's action to the audit log (bot/store/audit.py), from WeChat."""
        if self.audit is not None:
            self.audit.record(admin, "wechat", action, target, detail)

    def _openid(self, target: str | None) -> str | None:
        """The follower named by an openid, or by their key (its owner)."""
        if not target:
            return None
        if target.startswith("sk-"):
            fingerprint = self.keys.fingerprint(target)
            info = self.keys.info(fingerprint) if fingerprint else None
            return info.owner if info else None
        return target if valid_openid(target) else None

    def do_help(self, _admin: str, *_: str) -> str:
        return texts.ADMIN_HELP

    def do_reset(self, _admin: str, target: str | None = None, *_: str) -> str:
        openid = self._openid(target)
        if openid is None:
            return "用法：/reset <openid|key>（找不到该用户或密钥）"
        self.conversation.forget(openid)
        return f"已清空 {openid} 的对话记录和待发回复。"

    def do_rotate(self, _admin: str, target: str | None = None, *_: str) -> str:
        if not target or not valid_openid(target) or not self.keys.fingerprint_of(target):
            return "用法：/rotate <openid>（该用户需已领取密钥）"
        key = self.keys.rotate(target)
        info = self.keys.info(self.keys.fingerprint(key) or "")
        balance = info.balance if info else 0
        new_id = log_id(info.fingerprint if info else "")
        return f"已为 {target} 换发密钥 {new_id}，余额 {balance}。旧密钥已失效，用户发送 key 可查看新密钥。"

    def do_grant(self, _admin: str, target: str | None = None, amount: str | None = None) -> str:
        openid = self._openid(target)
        fingerprint = self.keys.fingerprint_of(openid) if openid else None
        whole = bool(amount) and amount.isascii() and amount.isdigit()  # str.isdigit alone takes '²'
        whole = whole and len(amount) <= len(str(MAX_GRANT))  # int() raises past 4300 digits
        if not fingerprint or not whole or not 0 < int(amount) <= MAX_GRANT:
            return f"用法：/grant <openid|key> <tokens>，tokens 为 1 到 {MAX_GRANT} 的整数（该用户需已领取密钥）"
        balance = self.keys.grant(fingerprint, int(amount))
        return f"已为 {openid} 增加 {amount} tokens，当前余额 {balance}。"

    def do_stats(self, _admin: str, *_: str) -> str:
        day = self.stats.today()
        reply = texts.STATS.format(**day.__dict__)
        if self.guard is not None:
            reply += texts.STATS_REFUSALS.format(**self.guard.store.today())
        return reply

    def do_upstreams(self, _admin: str, *_: str) -> str:
        states = self.upstreams()
        if not states:
            return texts.NO_UPSTREAMS
        return texts.UPSTREAMS_HEAD + "\n".join(texts.upstream_line(**state) for state in states)

    def do_menu(self, admin: str, *_: str) -> str:
        """Publish the menu the console saved, else config/menu.json; the reply says which."""
        client = self.client
        if client is None:
            return "未配置 WECHAT_APPID / WECHAT_SECRET，无法调用微信接口。"
        try:
            menu, source = current_menu(self.menu_redis) if self.menu_redis is not None else (default_menu(), DEFAULT)
        except UnreadableMenu as error:  # publishing the default instead would undo the console's menu unasked
            logger.error("admin %s: /menu not published: %s", admin, error)
            return texts.MENU_UNREADABLE
        try:
            client.call(lambda: client.menu.create(menu))
        except WeChatClientException as error:
            logger.error("admin %s: menu/create failed errcode=%s", admin, error.errcode)
            return f"发布菜单失败：errcode={error.errcode} {error.errmsg}"
        except requests.RequestException as error:
            logger.error("admin %s: menu/create unreachable: %s", admin, type(error).__name__)
            return "发布菜单失败：微信接口暂时无法访问，请稍后再试。"
        which = texts.MENU_SAVED if source == SAVED else texts.MENU_DEFAULT
        return f"菜单已发布：{which}，{len(menu['button'])} 个按钮。"


def _loggable(arg: str) -> str:
    """Admin arguments for the log: a key is replaced by its fingerprint id."""
    return "sk-…" if arg.startswith("sk-") else arg
