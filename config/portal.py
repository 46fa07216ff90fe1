"""The web portal's settings (bot/web/, docs/portal.md): sign-in by the official account."""

from __future__ import annotations

from dataclasses import dataclass

from config.reader import ConfigError, Reader


@dataclass(frozen=True)
class Portal:
    """The web portal's sign-in (docs/portal.md)."""

    login_keywords: tuple[str, ...] = ("登录", "login", "控制台")  # texts that ask for a sign-in link
    oauth: bool = False  # WECHAT_OAUTH: silent sign-in inside WeChat (网页授权, snsapi_base)
    oauth_base_url: str = "https://open.weixin.qq.com/connect/"
    proxies: tuple[str, ...] = ("127.0.0.1",)  # FORWARDED_ALLOW_IPS: whose X-Forwarded-For names the client


DEFAULT_LOGIN_KEYWORDS = "登录,login,控制台"


def read_portal(read: Reader) -> Portal:
    """The portal's settings: sign-in words, WeChat's silent sign-in, the proxies trusted to name the client."""
    keywords = read.str("BOT_LOGIN_KEYWORDS", DEFAULT_LOGIN_KEYWORDS) or DEFAULT_LOGIN_KEYWORDS
    oauth = read.choice("WECHAT_OAUTH", "0", ("0", "1")) == "1"
    if oauth and not (read.str("WECHAT_APPID") and read.str("WECHAT_SECRET")):
        raise ConfigError("WECHAT_OAUTH", "needs WECHAT_APPID and WECHAT_SECRET (网页授权 uses the AppSecret)")
    base = read.url("WECHAT_OAUTH_BASE_URL", "https://open.weixin.qq.com/connect/", ("http", "https"))
    proxies = read.str("FORWARDED_ALLOW_IPS", "127.0.0.1")
    return Portal(
        login_keywords=tuple(k.strip().lower() for k in keywords.split(",") if k.strip()),
        oauth=oauth,
        oauth_base_url=base.rstrip("/") + "/",
        proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
    )
