"""Upstream models: any OpenAI-compatible chat-completions server, or the offline stand-in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.chat.streams import OfflineStream, UpstreamStream
from bot.errors import ChatError, Failure

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Reply:
    content: str
    finish_reason: str


# Sampling settings a caller may pass through (temperature, top_p); absent ones are the model's.
Sampling = Mapping[str, float]


class Pieces(Protocol):
    """An answer as the model produces it: iterate for text pieces; close() stops the model."""

    finish_reason: str

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None: ...


class Provider(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Reply: ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Pieces: ...


def _session(url: str, pool_size: int) -> requests.Session:
    # A connect error or a 429/5xx means the model did no work we pay for: safe to retry, once. A
    # read timeout is not retried: the model may still be writing an answer.
    retry = Retry(
        total=1,
        connect=1,
        read=False,  # re-raise a read timeout as itself, so it is reported as a timeout
        status=1,
        backoff_factor=0.3,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    # HTTPS_PROXY and friends are read once, here: requests would otherwise scan the environment on
    # every call (a measurable share of a WeChat turn's own time).
    session.proxies = requests.utils.get_environ_proxies(url)
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class OpenAIProvider:
    """Chat completions over HTTP with one pooled session, explicit timeouts and bounded retries."""

    name = "openai"

    def __init__(self, base_url: str, api_key: str, model: str, timeout: float, pool_size: int = 1000):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self.session = _session(self.url, pool_size)
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def complete(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Reply:
        response = self._post(self._body(messages, max_tokens, sampling), stream=False)
        return _parse_reply(response.content)

    def stream(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Pieces:
        """The answer as the upstream streams it (`stream: true`), over the same pooled session."""
        body = {**self._body(messages, max_tokens, sampling), "stream": True}
        return UpstreamStream(self._post(body, stream=True))

    def _body(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "max_tokens": max_tokens, **(sampling or {})}

    def _post(self, body: dict[str, Any], stream: bool) -> requests.Response:
        """The upstream's 200 response (a stream's body still unread), or ChatError saying what failed."""
        # A stream is read as it arrives: compression would hold pieces back in the decoder.
        headers = {**self.headers, "Accept-Encoding": "identity"} if stream else self.headers
        try:
            response = self.session.post(self.url, json=body, headers=headers, timeout=self.timeout, stream=stream)
        except requests.Timeout:
            raise ChatError(Failure.UPSTREAM_TIMEOUT) from None
        except requests.RequestException as exc:
            logger.warning("upstream unreachable: %s", type(exc).__name__)
            raise ChatError(Failure.UPSTREAM_FAILED, "unreachable") from None
        if response.status_code != 200:
            response.close()
            logger.warning("upstream answered HTTP %s", response.status_code)
            raise ChatError(Failure.UPSTREAM_FAILED, f"HTTP {response.status_code}")
        return response


def _parse_reply(raw: bytes) -> Reply:
    try:
        choice = json.loads(raw)["choices"][0]
        content = choice["message"]["content"]
        finish_reason = choice.get("finish_reason") or "stop"
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning("upstream answered malformed JSON (%d bytes)", len(raw))
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

    def complete(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Reply:
        question = messages[-1]["content"]
        quoted = question if len(question) <= 200 else question[:200] + "…"
        return Reply(f"{OFFLINE_NOTICE}\n\n你说的是：{quoted}", "stop")

    def stream(self, messages: list[dict[str, str]], max_tokens: int, sampling: Sampling | None = None) -> Pieces:
        return OfflineStream(self.complete(messages, max_tokens).content)
