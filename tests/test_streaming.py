"""Streaming in the chat core: the upstream's SSE read as it arrives, billing what was produced."""

from __future__ import annotations

import time

import pytest

from bot.chat.core import ChatService, Options
from bot.chat.dialogue import Turn
from bot.chat.providers import OFFLINE_NOTICE, OfflineProvider, OpenAIProvider
from bot.chat.sse import iter_data
from bot.chat.usage import estimate_tokens
from bot.errors import ChatError, Failure
from bot.store.apikeys import KeyStore
from bot.store.connection import connect
from bot.store.quota import KeyLedger
from bot.store.vault import Vault
from tests.conftest import TEST_SECRET

QUESTION = [{"role": "user", "content": "一二三四五六七八九十"}]
ANSWER = "回答：一二三四五六七八九十"  # the double echoes; 4 characters a piece: 4 pieces


@pytest.fixture
def provider(upstream):
    return OpenAIProvider(upstream.url, "sk-upstream-test", "test-model", timeout=1.0)


def test_sse_data_is_read_whatever_the_chunking():
    raw = b'data: {"a": 1}\r\n\r\n: comment\n\ndata: line one\ndata: line two\n\nevent: x\ndata:[DONE]\n\n'
    expected = ['{"a": 1}', "line one\nline two", "[DONE]"]
    assert list(iter_data([raw])) == expected
    assert list(iter_data([raw[i : i + 1] for i in range(len(raw))])) == expected
    assert list(iter_data([b"data: no blank line at the end"])) == ["no blank line at the end"]


def test_pieces_arrive_as_the_upstream_writes_them(provider, upstream):
    upstream.reset(chunk_delay=0.15)
    started = time.monotonic()
    stream = provider.stream(QUESTION, 100, {"temperature": 0.5})
    arrivals = []
    for piece in stream:
        arrivals.append((piece, time.monotonic() - started))
    assert "".join(p for p, _ in arrivals) == ANSWER and len(arrivals) == 4
    assert arrivals[-1][1] - arrivals[0][1] > 0.35  # 0.15 s apart as written, not all at the end
    assert stream.finish_reason == "stop"
    sent = upstream.received[0].body
    assert (sent["stream"], sent["temperature"], sent["max_tokens"]) == (True, 0.5, 100)
    assert upstream.received[0].headers["Accept-Encoding"] == "identity"


def test_closing_a_stream_hangs_up_on_the_upstream(provider, upstream):
    upstream.reset(chunk_delay=0.1, piece_chars=1)
    stream = provider.stream(QUESTION, 100)
    assert next(stream) and next(stream)
    stream.close()
    (streamed,) = upstream.wait_for_streams()
    assert streamed.hung_up and len(streamed.pieces) < len(ANSWER)


@pytest.mark.parametrize(
    ("behaviour", "failure", "detail"),
    [
        ({"stream_mode": "cut", "break_after": 2}, Failure.UPSTREAM_FAILED, "cut off"),
        ({"stream_mode": "error", "break_after": 2}, Failure.UPSTREAM_FAILED, "error mid-answer"),
        ({"chunk_delay": 1.5}, Failure.UPSTREAM_TIMEOUT, "OPENAI_TIMEOUT"),
    ],
)
def test_a_stream_that_breaks_says_how(provider, upstream, behaviour, failure, detail):
    upstream.reset(**behaviour)
    with pytest.raises(ChatError) as error:
        list(provider.stream(QUESTION, 100))
    assert error.value.failure is failure and detail in error.value.message


@pytest.mark.parametrize(
    ("behaviour", "failure"),
    [
        ({"status": 500}, Failure.UPSTREAM_FAILED),
        ({"mode": "empty"}, Failure.UPSTREAM_FAILED),
        ({"latency": 1.5}, Failure.UPSTREAM_TIMEOUT),
    ],
)
def test_a_stream_that_fails_before_its_first_piece_raises_there(provider, upstream, behaviour, failure):
    upstream.reset(**behaviour)
    with pytest.raises(ChatError) as error:
        next(provider.stream(QUESTION, 100))
    assert error.value.failure is failure


def test_the_offline_provider_streams_its_notice_in_pieces():
    pieces = list(OfflineProvider().stream(QUESTION, 100))
    assert len(pieces) > 5 and "".join(pieces).startswith(OFFLINE_NOTICE)


@pytest.fixture
def key(redis_server, redis):
    client = connect(redis_server.url)
    keys = KeyStore(client, Vault(TEST_SECRET), 1000)
    fingerprint = keys.fingerprint(keys.issue("oStreamer")[0])
    yield keys, KeyLedger(client).payer(fingerprint), fingerprint
    client.close()


def spent(keys, fingerprint):
    info = keys.info(fingerprint)
    assert info.reserved == 0
    return 1000 - info.balance


def test_a_whole_stream_is_charged_exactly_its_usage(provider, upstream, key):
    keys, payer, fingerprint = key
    stream = ChatService(provider, "", 100).stream([Turn("user", QUESTION[0]["content"])], payer)
    assert "".join(stream) == ANSWER
    stream.close()
    assert stream.usage.total_tokens == estimate_tokens(QUESTION[0]["content"]) + estimate_tokens(ANSWER)
    assert spent(keys, fingerprint) == stream.usage.total_tokens


def test_a_stream_left_early_is_charged_what_the_model_produced(provider, upstream, key):
    keys, payer, fingerprint = key
    upstream.reset(chunk_delay=0.1, piece_chars=1)
    stream = ChatService(provider, "", 100).stream([Turn("user", QUESTION[0]["content"])], payer)
    pieces = iter(stream)
    taken = [next(pieces), next(pieces), next(pieces)]
    stream.close()
    (streamed,) = upstream.wait_for_streams()
    assert streamed.hung_up
    prompt = estimate_tokens(QUESTION[0]["content"])
    assert spent(keys, fingerprint) == stream.usage.total_tokens == prompt + estimate_tokens("".join(taken))


def test_a_stream_that_fails_before_any_text_costs_nothing(provider, upstream, key):
    keys, payer, fingerprint = key
    upstream.reset(status=503)
    with pytest.raises(ChatError) as error:
        ChatService(provider, "", 100).stream([Turn("user", "hi")], payer)
    assert error.value.failure is Failure.UPSTREAM_FAILED
    assert spent(keys, fingerprint) == 0


def test_a_callers_system_message_shares_the_budget_and_is_billed(provider, upstream, key):
    keys, payer, fingerprint = key
    turns = [Turn("user", "a" * 600), Turn("assistant", "b" * 600), Turn("user", "问" * 500)]
    options = Options(system="系" * 400, max_tokens=50)
    completion = ChatService(provider, "the service prompt", 100).complete(turns, payer, options)
    sent = upstream.received[0].body
    assert sent["messages"] == [{"role": "system", "content": "系" * 400}, turns[2].as_dict()]  # 1700 + 400 > 2000
    assert sent["max_tokens"] == 50
    assert completion.usage.prompt_tokens == 900
