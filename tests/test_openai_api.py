"""The OpenAI-compatible door over Flask's test client: OpenAI's formats, the spec's rules."""

from __future__ import annotations

import json

import pytest

from bot import create_app
from bot.chat.sse import iter_data
from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.store import keyspace
from tests.helpers import ask_openai as ask
from tests.helpers import bearer, key_info, one

URL = "/v1/chat/completions"


def set_balance(app, key, balance):
    with app.app_context():
        store = services().keys
        store.redis.hset(keyspace.api_key(store.fingerprint(key)), "balance", balance)


def events(response):
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no" and response.headers["Cache-Control"] == "no-cache"
    return [data if data == "[DONE]" else json.loads(data) for data in iter_data([response.data])]


def test_answers_in_openai_format_echoing_the_model(app, client, issue_key, upstream):
    key = issue_key()
    response = ask(client, key, one("你好"))
    body = response.get_json()
    assert response.status_code == 200 and body["id"].startswith("chatcmpl-")
    assert (body["object"], body["model"]) == ("chat.completion", "gpt-4o")
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "回答：你好", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = estimate_tokens("你好") + estimate_tokens("回答：你好")
    assert body["usage"]["total_tokens"] == usage
    assert key_info(app, key).balance == 10_000 - usage
    sent = upstream.received[0].body
    assert sent["model"] == "test-model"  # the configured model answers, whatever was asked for
    assert sent["messages"][0]["role"] == "system"  # the service's prompt when the caller sends none


def test_a_leading_system_message_replaces_the_service_prompt_and_is_billed(client, issue_key, upstream):
    messages = [{"role": "system", "content": "只用英文回答"}, *one("你好")]
    body = ask(client, issue_key(), messages).get_json()
    assert upstream.received[0].body["messages"] == messages
    assert body["usage"]["prompt_tokens"] == estimate_tokens(["只用英文回答", "你好"])


def test_the_system_message_shares_the_2000_character_budget(client, issue_key, upstream):
    key = issue_key()
    history = [{"role": "user", "content": "a" * 800}, {"role": "assistant", "content": "b" * 800}]
    messages = [{"role": "system", "content": "s" * 500}, *history, *one("q" * 100)]
    ask(client, key, messages)
    assert upstream.received[0].body["messages"] == [messages[0], messages[3]]  # 500 + 1700 > 2000
    response = ask(client, key, [{"role": "system", "content": "s" * 1000}, *one("q" * 1001)])
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "context_length_exceeded"
    assert "2001 characters" in error["message"]
    assert upstream.calls == 1


def test_max_tokens_caps_the_answer_and_the_reservation(app, client, issue_key, upstream):
    key = issue_key()
    ask(client, key, one("hi"), max_tokens=40, temperature=0.2, top_p=0.9)
    sent = upstream.received[0].body
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (40, 0.2, 0.9)
    set_balance(app, key, estimate_tokens("hi") + 5)
    assert ask(client, key, one("hi"), max_completion_tokens=5).status_code == 200
    assert upstream.received[1].body["max_tokens"] == 5


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"n": 2}, "n must be 1"),
        ({"temperature": 3}, "temperature must be between 0 and 2, got 3"),
        ({"top_p": "high"}, "top_p must be a number, got 'high'"),
        ({"max_tokens": 0}, "max_tokens must be a positive integer, got 0"),
        ({"stream": "yes"}, "stream must be true or false"),
        ({"stream_options": {"include_usage": True}}, "only allowed with stream: true"),
        ({"model": 4}, "model must be a string, got int"),
        ({"user": ["x"]}, "user must be a string, got list"),
        ({"messages": one("hi") * 2}, "messages[1].role must be 'assistant', got 'user'"),
        ({"messages": [{"role": "system", "content": "x"}]}, "a 'user' message after the system message"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "content[0] must be a text part"),
    ],
)
def test_bad_requests_are_400_invalid_request_error_saying_what(client, issue_key, upstream, extra, needle):
    response = client.post(URL, json={"model": "m", "messages": one("hi"), **extra}, headers=bearer(issue_key()))
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error"
    assert needle in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert upstream.calls == 0


def test_text_parts_are_joined(client, issue_key, upstream):
    parts = [{"type": "text", "text": "你"}, {"type": "text", "text": "好"}]
    assert ask(client, issue_key(), [{"role": "user", "content": parts}]).status_code == 200
    assert upstream.received[0].body["messages"][-1] == {"role": "user", "content": "你好"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, None),
        ({"Authorization": "Bearer sk-" + "A" * 48}, "invalid_api_key"),
        ({"Authorization": "Bearer nonsense"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "invalid_api_key"),
    ],
)
def test_missing_or_unknown_keys_are_401_in_openai_shape(client, upstream, headers, code):
    response = client.post(URL, json={"model": "m", "messages": one("hi")}, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code
    assert upstream.calls == 0


def test_an_exhausted_balance_is_openais_429_insufficient_quota_not_to_be_retried(app, client, issue_key, upstream):
    key = issue_key()
    set_balance(app, key, 3)
    response = ask(client, key, one("hello there"))
    assert response.status_code == 429 and response.headers["x-should-retry"] == "false"
    assert response.get_json()["error"]["type"] == response.get_json()["error"]["code"] == "insufficient_quota"
    assert upstream.calls == 0 and key_info(app, key).balance == 3


def test_rate_limits_answer_429_with_retry_after(config, redis, upstream):
    app = create_app({**config, "BOT_RATE_KEY_RPM": "5", "BOT_RATE_USER_RPM": "2"})
    client = app.test_client()
    with app.app_context():
        key = services().keys.issue("oBusy")[0]
    assert [ask(client, key, one("hi"), user="u1").status_code for _ in range(3)] == [200, 200, 429]
    limited = ask(client, key, one("hi"), user="u1")
    assert limited.get_json()["error"]["code"] == "rate_limit_exceeded"
    assert 58 <= int(limited.headers["Retry-After"]) <= 60
    assert [ask(client, key, one("hi")).status_code for _ in range(4)] == [200, 200, 200, 429]
    spec = client.post("/api/v1/chat/completions", json={"api_secret_key": key, "messages": one("hi")})
    assert (spec.status_code, spec.get_json()["code"]) == (429, 42901) and "Retry-After" in spec.headers
    assert upstream.calls == 5


def test_blocked_user_values_and_followers_are_403(app, client, issue_key, upstream):
    key = issue_key("oBlocked")
    with app.app_context():
        services().blocks.block_user("spammer")
    response = ask(client, key, one("hi"), user="spammer")
    assert (response.status_code, response.get_json()["error"]["code"]) == (403, "blocked")
    assert ask(client, key, one("hi"), user="someone-else").status_code == 200
    with app.app_context():
        services().blocks.block_openid("oBlocked")
    assert ask(client, key, one("hi")).status_code == 403
    spec = client.post("/api/v1/chat/completions", json={"api_secret_key": key, "messages": one("hi")})
    assert (spec.status_code, spec.get_json()["code"]) == (403, 40301)
    assert upstream.calls == 1


def test_unknown_paths_and_methods_answer_in_openai_shape(client):
    response = client.get("/v1/nothing")
    assert response.status_code == 404 and response.get_json()["error"]["type"] == "invalid_request_error"
    assert client.get(URL).status_code == 405 and "error" in client.get(URL).get_json()


def test_models_lists_the_configured_model_to_a_key_holder(app, client, issue_key):
    key = issue_key("oModels")
    assert client.get("/v1/models").status_code == 401
    body = client.get("/v1/models", headers=bearer(key)).get_json()
    assert [m["id"] for m in body["data"]] == ["test-model"] and body["object"] == "list"
    assert client.get("/v1/models/test-model", headers=bearer(key)).get_json()["id"] == "test-model"
    assert client.get("/v1/models/gpt-5", headers=bearer(key)).status_code == 404
    with app.app_context():
        services().keys.revoke("oModels")
    assert client.get("/v1/models", headers=bearer(key)).status_code == 401


def test_the_specs_curl_example_posting_here_is_served_as_the_spec_door(client, issue_key, upstream):
    raw = json.dumps({"api_secret_key": issue_key(), "messages": one("你好")}, ensure_ascii=False).encode()
    body = client.post(URL, data=raw, content_type="application/x-www-form-urlencoded").get_json()
    assert list(body) == ["code", "msg", "id", "created", "choices", "usage"] and body["code"] == 0
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "回答：你好"}
    refused = client.post(URL, json={"api_secret_key": "sk-wrong", "messages": one("hi")})
    assert (refused.status_code, refused.get_json()) == (
        401,
        {"code": 40102, "msg": "api_secret_key 无效或已被撤销：expected 'sk-' followed by 48 letters or digits"},
    )
    assert client.post(URL, data=b"{oops").get_json()["code"] == 40001  # no header: the spec's errors
    assert upstream.calls == 1


@pytest.mark.parametrize("behaviour", [{"status": 500}, {"mode": "malformed"}, {"mode": "empty"}])
def test_a_failed_upstream_call_costs_nothing_on_this_door(app, client, issue_key, upstream, behaviour):
    key = issue_key()
    upstream.reset(**behaviour)
    for stream in (False, True):
        response = ask(client, key, one("hi"), stream=stream)
        assert response.status_code == 502 and response.get_json()["error"]["type"] == "server_error"
    info = key_info(app, key)
    assert (info.balance, info.reserved) == (10_000, 0)


def test_a_stream_is_openai_chunks_ending_with_done(app, client, issue_key, upstream):
    key = issue_key()
    chunks = events(ask(client, key, one("一二三四五六七八九十"), stream=True))
    assert chunks[-1] == "[DONE]"
    chunks = chunks[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "回答：一二三四五六七八九十" and len(chunks) > 3
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all("usage" not in c for c in chunks)
    assert key_info(app, key).balance == 10_000 - estimate_tokens("一二三四五六七八九十") - estimate_tokens(text)


def test_include_usage_adds_a_last_chunk_with_the_usage(client, issue_key):
    chunks = events(ask(client, issue_key(), one("你好"), stream=True, stream_options={"include_usage": True}))
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"] == []
    assert chunks[-2]["usage"]["total_tokens"] == estimate_tokens("你好") + estimate_tokens("回答：你好")
    assert all(c["usage"] is None for c in chunks[:-2])


def test_a_stream_broken_midway_ends_with_an_error_event_and_bills_what_came(app, client, issue_key, upstream):
    key = issue_key()
    upstream.reset(stream_mode="cut", break_after=2)  # two 4-character pieces, then the body ends
    chunks = events(ask(client, key, one("一二三四五六七八九十"), stream=True))
    assert "[DONE]" not in chunks and chunks[-1]["error"]["type"] == "server_error"
    produced = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert produced == "回答：一二三四五"
    spent = 10_000 - key_info(app, key).balance
    assert spent == estimate_tokens("一二三四五六七八九十") + estimate_tokens(produced)
