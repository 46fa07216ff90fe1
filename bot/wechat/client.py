"""WeChat's server API (menu, customer-service messages) with one access token for all workers.

The token lives in Redis, shared by every worker and host. It is refreshed under a Redis lock, and a
worker that waited on the lock takes the token the holder just fetched instead of fetching again:
each fetch invalidates the previous token, so two workers refreshing at once would break each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import redis
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

logger = logging.getLogger(__name__)
T = TypeVar("T")

# connect, read: WeChat's API answers in well under a second. An admin's /menu is called within a
# delivery, so a hung endpoint must fail in time for the admin to read why within WeChat's 5 s.
TIMEOUT = (2.0, 3.0)
# Refresh this long before WeChat's expiry, so no request carries a token that dies in flight.
EXPIRY_MARGIN = 300
TOKEN_ERRORS = (40001, 40014, 42001)  # invalid credential, invalid token, expired token


class SharedTokenClient(WeChatClient):
    def __init__(self, appid: str, secret: str, client: redis.Redis, base_url: str):
        tag = f"bot:{{wx:{appid}}}"
        # auto_retry off: wechatpy's own retry refetches on every token error, without bound.
        super().__init__(appid, secret, session=RedisStorage(client, prefix=tag), timeout=TIMEOUT, auto_retry=False)
        self.API_BASE_URL = base_url.rstrip("/") + "/cgi-bin/"
        self.token_url = base_url.rstrip("/") + "/cgi-bin/token"
        self.redis = client
        self.lock_name = f"{tag}:token-lock"

    @property
    def access_token(self) -> str:
        return self.session.get(self.access_token_key) or self.refresh(stale=None)

    def fetch_access_token(self) -> dict:
        return {"access_token": self.refresh(stale=self.session.get(self.access_token_key))}

    def refresh(self, stale: str | None) -> str:
        """A valid token: the shared one if it is not `stale`, else a new one; one fetch at a time."""
        with self.redis.lock(self.lock_name, timeout=15, blocking_timeout=15):
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current  # another worker refreshed while we waited
            return self._fetch_locked()

    def _fetch_locked(self) -> str:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        response = self._http.get(self.token_url, params=params, timeout=TIMEOUT)
        result = response.json() if response.status_code == 200 else {"errcode": response.status_code}
        if result.get("errcode") or "access_token" not in result:
            logger.error("wechat token fetch failed: errcode=%s", result.get("errcode"))
            raise WeChatClientException(result.get("errcode"), result.get("errmsg", "token fetch failed"))
        ttl = max(60, int(result.get("expires_in", 7200)) - EXPIRY_MARGIN)
        self.session.set(self.access_token_key, result["access_token"], ttl)
        logger.info("wechat access token refreshed, valid %ss", ttl)
        return result["access_token"]

    def call(self, action: Callable[[], T]) -> T:
        """Run one API call; on a token error refresh once (unless someone already did) and retry once."""
        token = self.access_token
        try:
            return action()
        except WeChatClientException as error:
            if error.errcode not in TOKEN_ERRORS:
                raise
            logger.warning("wechat token rejected (errcode=%s): refreshing", error.errcode)
            self.refresh(stale=token)
            return action()
