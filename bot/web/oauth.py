"""WeChat's silent sign-in (网页授权, scope snsapi_base) through wechatpy's WeChatOAuth.

The browser goes to WeChat's authorize URL (WECHAT_OAUTH_BASE_URL) and comes back with a code; the
code is exchanged for the follower's openid on WeChat's API (WECHAT_API_BASE_URL, as every other call).
"""

from __future__ import annotations

import logging

import requests
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from bot.ids import valid_openid
from bot.services import services

logger = logging.getLogger(__name__)
TIMEOUT = 5


def client(redirect_uri: str = "", state: str = "") -> WeChatOAuth:
    settings = services().settings
    oauth = WeChatOAuth(settings.wechat_appid, settings.wechat_secret, redirect_uri, "snsapi_base", state)
    oauth.API_BASE_URL = settings.wechat_api_base_url.rstrip("/") + "/"
    oauth.OAUTH_BASE_URL = settings.portal.oauth_base_url
    return oauth


def openid_of(code: str) -> str | None:
    """The follower a code was issued for, or None (a used or forged code, WeChat unreachable)."""
    oauth = client()
    try:
        answer = oauth._get(  # fetch_access_token() without its unbounded wait: the same call, with a timeout
            "sns/oauth2/access_token",
            params={"appid": oauth.app_id, "secret": oauth.secret, "code": code, "grant_type": "authorization_code"},
            timeout=TIMEOUT,
        )
    except (WeChatOAuthException, requests.RequestException, ValueError) as error:
        logger.warning("WeChat OAuth code refused: %s", type(error).__name__)
        return None
    finally:
        oauth._http.close()
    openid = str(answer.get("openid", ""))
    return openid if valid_openid(openid) else None
