"""The official `openai` Python SDK as the client, against the service served over real HTTP."""

from __future__ import annotations

import openai
import pytest

from bot import create_app
from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.store import keyspace
from tests.helpers import one
from tests.servers import werkzeug_server


@pytest.fixture
def base_url(app):
    with werkzeug_server(app) as url:
        yield url + "/v1"


def sdk(base_url, key, **kwargs):
    return openai.OpenAI(base_url=base_url, api_key=key, **{"max_retries": 0, **kwargs})


def test_a_completion_through_the_sdk(base_url, issue_key, upstream):
    messages = [{"role": "system", "content": "简短回答"}, *one("你好")]
    answer = sdk(base_url, issue_key()).chat.completions.create(
        model="gpt-4o-mini", messages=messages, max_tokens=64, temperature=0.3
    )
    assert answer.choices[0].message.content == "回答：你好" and answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-4o-mini" and answer.id.startswith("chatcmpl-")
    assert answer.usage.total_tokens == estimate_tokens(["简短回答", "你好"]) + estimate_tokens("回答：你好")
    sent = upstream.received[0].body
    assert (sent["max_tokens"], sent["temperature"], sent["messages"]) == (64, 0.3, messages)


def test_a_stream_through_the_sdk(base_url, issue_key):
    stream = sdk(base_url, issue_key()).chat.completions.create(
        model="gpt-4o-mini", messages=one("一二三四五六七八九十"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "回答：一二三四五六七八九十"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == estimate_tokens(text)


def test_models_through_the_sdk(base_url, issue_key):
    assert [m.id for m in sdk(base_url, issue_key()).models.list()] == ["test-model"]


def test_a_bad_key_is_an_authentication_error(base_url):
    with pytest.raises(openai.AuthenticationError) as error:
        sdk(base_url, "sk-" + "x" * 48).chat.completions.create(model="m", messages=one("hi"))
    assert error.value.status_code == 401 and error.value.code == "invalid_api_key"


def test_an_empty_balance_is_a_rate_limit_error_for_insufficient_quota_not_retried(app, base_url, issue_key):
    key = issue_key()
    with app.app_context():
        fingerprint = services().keys.fingerprint(key)
        services().redis.hset(keyspace.api_key(fingerprint), "balance", 0)
    with pytest.raises(openai.RateLimitError) as error:
        sdk(base_url, key, max_retries=2).chat.completions.create(model="m", messages=one("hi"))
    assert error.value.code == "insufficient_quota" and error.value.type == "insufficient_quota"
    with app.app_context():  # each attempt counts in the key's window: the SDK tried once
        assert services().redis.zcard(keyspace.api_key_rate(fingerprint)) == 1


def test_too_many_requests_is_a_rate_limit_error(config, redis, upstream):
    app = create_app({**config, "BOT_RATE_KEY_RPM": "1"})
    with app.app_context():
        key = services().keys.issue("oHasty")[0]
    with werkzeug_server(app) as url:
        client = sdk(url + "/v1", key)
        client.chat.completions.create(model="m", messages=one("hi"))
        with pytest.raises(openai.RateLimitError) as error:
            client.chat.completions.create(model="m", messages=one("hi"))
    assert error.value.code == "rate_limit_exceeded"
    assert int(error.value.response.headers["Retry-After"]) in range(55, 61)


def test_a_blocked_user_is_permission_denied_and_n_2_a_bad_request(app, base_url, issue_key):
    client = sdk(base_url, issue_key())
    with app.app_context():
        services().blocks.block_user("troll")
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="m", messages=one("hi"), user="troll")
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="m", messages=one("hi"), n=2)
    assert "n must be 1" in error.value.message


def test_a_stream_that_breaks_midway_raises_in_the_sdk(base_url, issue_key, upstream):
    upstream.reset(stream_mode="error", break_after=1)
    stream = sdk(base_url, issue_key()).chat.completions.create(model="m", messages=one("你好"), stream=True)
    with pytest.raises(openai.APIError) as error:
        list(stream)
    assert "mid-answer" in error.value.message
