"""The chat core's HTTP client to the model: compression, proxies, credentials, redirects, and upstreams
that fail. (tests/conftest.py clears the shell's proxy variables for every test.)"""

from __future__ import annotations

import base64
import socket
import sys
import time

import pytest

from bot.chat.providers import OpenAIProvider
from bot.errors import ChatError, Failure
from config.settings import ConfigError

QUESTION = [{"role": "user", "content": "你好"}]


@pytest.fixture
def provider_at():
    """An OpenAIProvider for a base URL; its connections close after the test."""
    made = []

    def make(base_url: str, timeout: float = 2.0, api_key: str = "sk-upstream-test") -> OpenAIProvider:
        made.append(OpenAIProvider(base_url, api_key, "test-model", timeout=timeout))
        return made[-1]

    yield make
    for provider in made:
        provider.close()


def headers_of(received) -> dict[str, str]:
    return {name.lower(): value for name, value in received.headers.items()}


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


def test_a_compressed_answer_is_read(upstream, provider_at):
    assert provider_at(upstream.url).complete(QUESTION, 100).content == "回答：你好"
    (received,) = upstream.received
    assert "gzip" in received.headers["Accept-Encoding"]  # the double compressed its answer
    assert received.headers["Authorization"] == "Bearer sk-upstream-test"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {"model": "test-model", "messages": QUESTION, "max_tokens": 100}


def test_credentials_in_the_base_url_are_sent_as_basic_auth(upstream, provider_at):
    base = upstream.url.replace("http://", "http://gate:p%40ss@")
    assert provider_at(base).complete(QUESTION, 100).content == "回答：你好"
    assert headers_of(upstream.received[0])["authorization"] == basic(b"gate:p@ss")


def test_calls_go_through_the_proxy_the_environment_names_with_its_credentials(upstream, provider_at, monkeypatch):
    port = upstream.url.removesuffix("/v1").rsplit(":", 1)[1]
    monkeypatch.setenv("http_proxy", f"http://relay:p%40ss@127.0.0.1:{port}")  # the double plays the proxy
    assert provider_at("http://model.invalid/v1").complete(QUESTION, 100).content == "回答：你好"
    headers = headers_of(upstream.received[0])
    assert headers["host"] == "model.invalid"
    assert headers["proxy-authorization"] == basic(b"relay:p@ss")


def test_a_proxy_given_as_host_and_port_is_an_http_proxy(upstream, provider_at, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", upstream.url.removesuffix("/v1").removeprefix("http://"))
    assert provider_at("http://model.invalid/v1").complete(QUESTION, 100).content == "回答：你好"
    assert headers_of(upstream.received[0])["host"] == "model.invalid"


def test_no_proxy_names_hosts_reached_directly(upstream, provider_at, monkeypatch):
    with socket.socket() as probe:  # a proxy nobody listens on: a call through it would fail
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{probe.getsockname()[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert provider_at(upstream.url).complete(QUESTION, 100).content == "回答：你好"


def test_a_socks_proxy_is_refused_at_start_naming_it_but_not_its_password(config, make_app, monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "socks5://relay:hunter2@proxy.example:1080")
    with pytest.raises(ConfigError) as refused:
        make_app(config)
    assert "socks5://proxy.example" in str(refused.value) and "hunter2" not in str(refused.value)


def test_a_redirect_is_reported_not_followed(upstream, provider_at):
    upstream.reset(mode="redirect")
    with pytest.raises(ChatError) as caught:
        provider_at(upstream.url).complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_FAILED and "HTTP 307" in caught.value.message
    assert upstream.calls == 1


def test_an_answer_whose_body_stalls_is_a_timeout(upstream, provider_at):
    upstream.reset(body_delay=1.5)
    with pytest.raises(ChatError) as caught:
        provider_at(upstream.url, timeout=0.5).complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_TIMEOUT and upstream.calls == 1


def test_an_upstream_that_refuses_connections_fails_fast(provider_at):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ChatError) as caught:
        provider_at(f"http://127.0.0.1:{port}/v1").complete(QUESTION, 100)
    assert caught.value.failure is Failure.UPSTREAM_FAILED and time.monotonic() - started < 1.0


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping connections beyond a full backlog")
def test_an_upstream_that_never_accepts_the_connection_is_a_timeout(provider_at):
    with socket.socket() as full:  # a listener whose backlog is full: further connections hang
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        waiting = [socket.socket() for _ in range(4)]
        try:
            for client in waiting:
                client.setblocking(False)
                client.connect_ex(full.getsockname())
            with pytest.raises(ChatError) as caught:
                provider_at(f"http://127.0.0.1:{full.getsockname()[1]}/v1", timeout=0.5).complete(QUESTION, 100)
        finally:
            for client in waiting:
                client.close()
    assert caught.value.failure is Failure.UPSTREAM_TIMEOUT
