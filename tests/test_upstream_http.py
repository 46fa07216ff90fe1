"""The chat core's HTTP client to the model: compression, proxies, and an upstream that is not there."""

from __future__ import annotations

import socket
import time

import pytest

from bot.chat.providers import OpenAIProvider
from bot.errors import ChatError, Failure

QUESTION = [{"role": "user", "content": "你好"}]


def test_a_compressed_answer_is_read(upstream):
    provider = OpenAIProvider(upstream.url, "sk-upstream-test", "test-model", timeout=2.0)
    assert provider.complete(QUESTION, 100).content == "回答：你好"
    (received,) = upstream.received
    assert "gzip" in received.headers["Accept-Encoding"]  # the double compressed its answer
    assert received.headers["Authorization"] == "Bearer sk-upstream-test"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {"model": "test-model", "messages": QUESTION, "max_tokens": 100}


def test_calls_go_through_the_proxy_the_environment_names(upstream, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", upstream.url.removesuffix("/v1"))  # the double plays the proxy
    provider = OpenAIProvider("http://model.invalid/v1", "sk-upstream-test", "test-model", timeout=2.0)
    assert provider.complete(QUESTION, 100).content == "回答：你好"
    assert upstream.received[0].headers["Host"] == "model.invalid"


def test_an_upstream_that_refuses_connections_fails_fast():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAIProvider(f"http://127.0.0.1:{port}/v1", "", "test-model", timeout=2.0)
    started = time.monotonic()
    with pytest.raises(ChatError) as caught:
        provider.complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_FAILED and time.monotonic() - started < 2.0


def test_an_upstream_that_never_accepts_the_connection_is_a_timeout():
    with socket.socket() as full:  # a listener whose backlog is full: further connections hang
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        waiting = []
        for _ in range(4):
            waiting.append(socket.socket())
            waiting[-1].setblocking(False)
            waiting[-1].connect_ex(full.getsockname())
        provider = OpenAIProvider(f"http://127.0.0.1:{full.getsockname()[1]}/v1", "", "test-model", timeout=0.5)
        with pytest.raises(ChatError) as caught:
            provider.complete(QUESTION, 100)
        for client in waiting:
            client.close()
    assert caught.value.failure is Failure.UPSTREAM_TIMEOUT
