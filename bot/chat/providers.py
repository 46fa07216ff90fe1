"""Upstream models: any OpenAI-compatible chat-completions server, or the offline stand-in."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from requests.certs import where as ca_bundle
from requests.utils import get_auth_from_url, get_environ_proxies, prepend_scheme_if_needed, select_proxy
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util import make_headers, parse_url
from urllib3.util.retry import Retry

from bot.chat.streams import OfflineStream, UpstreamStream, hang_up
from bot.errors import ChatError, Failure

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reply:
    content: str
    finish_reason: str


Messages = list[dict[str, str]]  # the dialogue as sent upstream: role and content

# Sampling settings a caller may pass through (temperature, top_p); absent ones are the model's.
Sampling = Mapping[str, float]


class Pieces(Protocol):
    """An answer as the model produces it: iterate for text pieces; close() stops the model."""

    finish_reason: str

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None: ...


class Provider(Protocol):
    """`route`: the public model a request named on the OpenAI door (bot/chat/routing.py); None: the
    default route. A provider with one upstream has one route and ignores it."""

    name: str

    def complete(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Reply: ...

    def stream(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Pieces: ...

    def close(self) -> None:
        """Close the connections it keeps (tests, a clean shutdown)."""


def _pool(url: str, pool_size: int, retry: bool = True) -> urllib3.PoolManager:
    """The upstream's connection pool, straight on urllib3 (the library requests sends through):
    requests' own work per call (preparing, merging settings, hooks, cookies) costs more than a
    call to a nearby model takes (bench/upstream_client.py). What requests gave is kept: its CA
    bundle, HTTPS_PROXY and friends (read once, here; `host:port` means http://, and a proxy's
    user:password is sent), answers decoded (gzip, deflate)."""
    # A connect error or a 429/5xx means the model did no work we pay for: safe to retry, once. A
    # read timeout is not retried: the model may still be writing an answer. With several upstreams
    # the retry is the next upstream (bot/chat/routing.py), at once: no second try here.
    retries = Retry(
        total=int(retry),
        connect=int(retry),
        read=False,  # re-raise a read timeout as itself, so it is reported as a timeout
        status=int(retry),
        backoff_factor=0.3,
        status_forcelist=(429, 500, 502, 503, 504) if retry else (),
        allowed_methods=None,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    options: dict[str, Any] = {"num_pools": 4, "maxsize": pool_size, "retries": retries, "ca_certs": ca_bundle()}
    proxy = select_proxy(url, get_environ_proxies(url))
    if not proxy:
        return urllib3.PoolManager(**options)
    proxy = prepend_scheme_if_needed(proxy, "http")
    where = parse_url(proxy)
    if where.scheme not in ("http", "https"):
        raise ProxyNotSupported(f"{where.scheme}://{where.host}")
    credentials = _credentials(proxy)
    headers = make_headers(proxy_basic_auth=credentials) if credentials else None
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **options)


def _credentials(url: str) -> str:
    """`user:password` from a URL (%-escapes decoded, as requests read them), or "" if it has none."""
    user, password = get_auth_from_url(url)
    return f"{user}:{password}" if user or password else ""


class ProxyNotSupported(ValueError):
    """The environment names a proxy for the model that is not http(s) (socks): str() is the proxy
    without its credentials."""


# 4xx answers about the upstream or our account with it, not about the request: another upstream may answer.
UPSTREAM_4XX = frozenset((401, 402, 403, 404, 405, 408, 429))


class UpstreamStatus(ChatError):
    """The upstream answered a status other than 200; str() names the status, never its body."""

    def __init__(self, status: int):
        super().__init__(Failure.UPSTREAM_FAILED, f"HTTP {status}")
        self.status = status

    @property
    def about_request(self) -> bool:
        """A 4xx about the request itself (400, 413, 422…): any upstream would refuse it."""
        return 400 <= self.status < 500 and self.status not in UPSTREAM_4XX


class OpenAIProvider:
    """Chat completions over HTTP with one connection pool, explicit timeouts and bounded retries."""

    name = "openai"

    def __init__(
        self, base_url: str, api_key: str, model: str, timeout: float, pool_size: int = 1000, retry: bool = True,
        label: str = "",
    ):  # fmt: skip
        # `label`: the upstream's configured name, in its warnings, so an operator with several knows
        # which one failed (never its URL, which may carry a password, nor its key).
        self.label = f"upstream {label}" if label else "upstream"
        url = parse_url(base_url.rstrip("/") + "/chat/completions")
        self.url = url._replace(auth=None).url  # never sent on, nor logged with a retry
        self.model = model
        self.timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=timeout)
        self.pool = _pool(self.url, pool_size, retry)
        self.headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        if credentials := _credentials(url.url):  # https://user:password@host/v1, as requests sent it
            self.headers["Authorization"] = make_headers(basic_auth=credentials)["authorization"]

    def complete(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Reply:
        response = self._post(self._body(messages, max_tokens, sampling), stream=False)
        return _parse_reply(response.data, self.label)

    def stream(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Pieces:
        """The answer as the upstream streams it (`stream: true`), over the same connection pool."""
        body = {**self._body(messages, max_tokens, sampling), "stream": True}
        first_by = time.monotonic() + self.timeout.read_timeout  # its first text, whatever comes before
        return UpstreamStream(self._post(body, stream=True), self.label, first_by)

    def close(self) -> None:
        self.pool.clear()

    def _body(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "max_tokens": max_tokens, **(sampling or {})}

    def _post(self, body: dict[str, Any], stream: bool) -> urllib3.BaseHTTPResponse:
        """The upstream's 200 response (a stream's body still unread), or ChatError saying what failed."""
        # A stream is read as it arrives: compression would hold pieces back in the decoder.
        headers = {**self.headers, "Accept-Encoding": "identity"} if stream else self.headers
        payload = json.dumps(body).encode()  # ASCII: any text encodes
        try:
            response = self.pool.request(
                "POST", self.url, body=payload, headers=headers, timeout=self.timeout, preload_content=not stream,
                redirect=False,  # a 3xx is a misconfigured URL: reported as it is, not followed
            )  # fmt: skip
        except (ReadTimeoutError, TimeoutError):
            raise ChatError(Failure.UPSTREAM_TIMEOUT) from None
        except MaxRetryError as exc:
            # A refused connection is a NewConnectionError, which urllib3 derives from ConnectTimeoutError.
            if isinstance(exc.reason, ConnectTimeoutError) and not isinstance(exc.reason, NewConnectionError):
                raise ChatError(Failure.UPSTREAM_TIMEOUT) from None
            logger.warning("%s unreachable: %s", self.label, type(exc.reason).__name__)
            raise ChatError(Failure.UPSTREAM_FAILED, "unreachable") from None
        except (HTTPError, OSError) as exc:
            logger.warning("%s unreachable: %s", self.label, type(exc).__name__)
            raise ChatError(Failure.UPSTREAM_FAILED, "unreachable") from None
        if response.status != 200:
            hang_up(response)
            logger.warning("%s answered HTTP %s", self.label, response.status)
            raise UpstreamStatus(response.status)
        return response


def _parse_reply(raw: bytes, label: str = "upstream") -> Reply:
    try:
        choice = json.loads(raw)["choices"][0]
        content = choice["message"]["content"]
        finish_reason = choice.get("finish_reason") or "stop"
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning("%s answered malformed JSON (%d bytes)", label, len(raw))
        raise ChatError(Failure.UPSTREAM_FAILED, "malformed response") from None
    if not isinstance(content, str) or not content.strip():
        raise ChatError(Failure.UPSTREAM_FAILED, "empty answer")
    return Reply(content, str(finish_reason))


OFFLINE_NOTICE = (
    "【离线模式】小一机器人尚未接入真实模型，这是一条离线自动回复，不是 ChatGPT 的回答。"
    "运营者设置 OPENAI_API_KEY（或 OPENAI_BASE_URL 指向任意 OpenAI 兼容服务）并重启即可接入模型。"
)


class OfflineProvider:
    """Answers without a model, saying so plainly, so every flow can be tried without an account."""

    name = "offline"

    def complete(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Reply:
        question = messages[-1]["content"]
        quoted = question if len(question) <= 200 else question[:200] + "…"
        return Reply(f"{OFFLINE_NOTICE}\n\n你说的是：{quoted}", "stop")

    def stream(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Pieces:
        return OfflineStream(self.complete(messages, max_tokens).content)

    def close(self) -> None:
        pass
