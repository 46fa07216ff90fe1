"""The official account's settings (bot/wechat/, docs/wechat.md): keys, message mode, admins, the
texts that are commands, and how replies are delivered within WeChat's window."""

from __future__ import annotations

import base64

from config.portal import DEFAULT_LOGIN_KEYWORDS
from config.reader import ConfigError, Reader

DEFAULT_KEY_KEYWORDS = "key,apikey,api key,密钥,获取key"
DEFAULT_RESET_KEYWORDS = "重置,清空对话,新对话"
MESSAGE_MODES = ("safe", "compatible", "plain")


def read_wechat(read: Reader) -> dict:
    """The official account's settings: its keys and message mode, admins, command words, delivery."""
    aes_key = read.str("WECHAT_AES_KEY")
    appid = read.str("WECHAT_APPID")
    if aes_key:
        if not valid_aes_key(aes_key):
            raise ConfigError("WECHAT_AES_KEY", "must be the 43-character EncodingAESKey from the WeChat console")
        if not appid:
            raise ConfigError("WECHAT_APPID", "is required when WECHAT_AES_KEY is set (it is inside every ciphertext)")
    # The console's 消息加解密方式: 安全模式 = safe, 兼容模式 = compatible, 明文模式 = plain. Safe (the
    # default with a key) refuses plaintext deliveries, whose signature does not cover the body.
    mode = read.choice("WECHAT_MESSAGE_MODE", "safe" if aes_key else "plain", MESSAGE_MODES)
    if mode != "plain" and not aes_key:
        raise ConfigError("WECHAT_MESSAGE_MODE", f"is {mode}, which needs WECHAT_AES_KEY (or set it to plain)")
    admins = frozenset(a.strip() for a in read.str("BOT_ADMIN_OPENIDS").split(",") if a.strip())
    keywords = read.str("BOT_KEY_KEYWORDS", DEFAULT_KEY_KEYWORDS) or DEFAULT_KEY_KEYWORDS
    resets = _keywords(read, "BOT_RESET_KEYWORDS", DEFAULT_RESET_KEYWORDS)
    # A reset word that is also another command would make that command clear the history.
    logins = read.str("BOT_LOGIN_KEYWORDS", DEFAULT_LOGIN_KEYWORDS) or DEFAULT_LOGIN_KEYWORDS
    taken = {k.strip().lower() for k in f"{keywords},{logins}".split(",")} | {
        "继续",
        "continue",
        "more",
        "帮助",
        "help",
    }
    if clash := sorted(taken.intersection(resets)):
        raise ConfigError("BOT_RESET_KEYWORDS", f"must not name another command's text, got {', '.join(clash)}")
    return {
        "wechat_token": read.str("WECHAT_TOKEN"),
        "wechat_appid": appid,
        "wechat_aes_key": aes_key,
        "wechat_message_mode": mode,
        "wechat_secret": read.str("WECHAT_SECRET"),
        "wechat_api_base_url": read.url("WECHAT_API_BASE_URL", "https://api.weixin.qq.com", ("http", "https")),
        "admin_openids": admins,
        "key_keywords": tuple(k.strip().lower() for k in keywords.split(",") if k.strip()),
        "reset_keywords": resets,
        "history_idle_seconds": read.int("BOT_HISTORY_IDLE_SECONDS", 86400, 60, 365 * 86400),
        "public_url": read.str("BOT_PUBLIC_URL").rstrip("/"),
        **_delivery(read),
    }


def _delivery(read: Reader) -> dict:
    timeout = read.float("BOT_WECHAT_TIMEOUT", 5.0, 0.2, 60.0)
    window = read.float("BOT_WECHAT_WINDOW", max(0.1, timeout - 0.5), 0.1, 60.0)
    if window >= timeout:
        raise ConfigError("BOT_WECHAT_WINDOW", f"must be shorter than BOT_WECHAT_TIMEOUT ({timeout}s), got {window}")
    return {
        "wechat_reply_mode": read.choice("WECHAT_REPLY_MODE", "passive", ("passive", "customer_service")),
        "wechat_timeout": timeout,
        "wechat_window": window,
        "reply_retention_seconds": read.int("BOT_REPLY_RETENTION_SECONDS", 86400, 60, 30 * 86400),
        "wechat_partial": read.choice("BOT_WECHAT_PARTIAL", "last", ("last", "first", "off")),
    }


def _keywords(read: Reader, name: str, default: str) -> tuple[str, ...]:
    """Comma-separated texts a follower may send, compared in lower case; empty: the default."""
    return tuple(k.strip().lower() for k in (read.str(name, default) or default).split(",") if k.strip())


def valid_aes_key(key: str) -> bool:
    """Whether `key` is an EncodingAESKey: 43 base64 characters that decode to 32 bytes."""
    try:
        return len(key) == 43 and len(base64.b64decode(key + "=", validate=True)) == 32
    except ValueError:
        return False
