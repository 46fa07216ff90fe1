"""The chat core's HTTP client to the model: compression, proxies, redirects, and upstreams that fail."""

from __future__ import annotations

import base64
import socket
import time

import pytest

from bot.chat.providers import OpenAIProvider
from bot.errors import ChatError, Failure
from config.settings import ConfigError

QUESTION = [{"role": "user", "content": "你好"}]


def test_a_compressed_answer_is_read(upstream):
    provider = OpenAIProvider(upstream.url, "sk-upstream-test", "test-model", timeout=2.0)
    assert provider.complete(QUESTION, 100).content == "回答：你好"
    (received,) = upstream.received
    assert "gzip" in received.headers["Accept-Encoding"]  # the double compressed its answer
    assert received.headers["Authorization"] == "Bearer sk-upstream-test"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {"model": "test-model", "messages": QUESTION, "max_tokens": 100}


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_calls_go_through_the_proxy_the_environment_names_with_its_credentials(upstream, no_proxies):
    port = upstream.url.removesuffix("/v1").rsplit(":", 1)[1]
    no_proxies.setenv("http_proxy", f"http://relay:p%40ss@127.0.0.1:{port}")  # the double plays the proxy
    provider = OpenAIProvider("http://model.invalid/v1", "sk-upstream-test", "test-model", timeout=2.0)
    assert provider.complete(QUESTION, 100).content == "回答：你好"
    (received,) = upstream.received
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["host"] == "model.invalid"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"relay:p@ss").decode()


def test_a_socks_proxy_is_refused_at_start_naming_it_but_not_its_password(config, make_app, no_proxies):
    no_proxies.setenv("ALL_PROXY", "socks5://relay:hunter2@proxy.example:1080")
    with pytest.raises(ConfigError) as refused:
        make_app(config)
    assert "socks5://proxy.example" in str(refused.value) and "hunter2" not in str(refused.value)


def test_a_redirect_is_reported_not_followed(upstream):
    upstream.reset(mode="redirect")
    provider = OpenAIProvider(upstream.url, "sk-upstream-test", "test-model", timeout=2.0)
    with pytest.raises(ChatError) as caught:
        provider.complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_FAILED and "HTTP 307" in caught.value.message
    assert upstream.calls == 1


def test_an_answer_whose_body_stalls_is_a_timeout(upstream):
    upstream.reset(body_delay=1.5)
    provider = OpenAIProvider(upstream.url, "sk-upstream-test", "test-model", timeout=0.5)
    with pytest.raises(ChatError) as caught:
        provider.complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_TIMEOUT and upstream.calls == 1


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
