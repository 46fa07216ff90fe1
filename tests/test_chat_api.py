"""The spec's chat API end to end: real Redis, a real upstream over HTTP, the app's real clients."""

from __future__ import annotations

import json
import re
import time

import pytest

from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.store import keyspace
from tests.helpers import ask, key_info, one

URL = "/api/v1/chat/completions"


def balance(app, key):
    return key_info(app, key).balance


def test_answers_in_the_spec_format(client, issue_key, upstream):
    key = issue_key()
    messages = [
        {"role": "user", "content": "请介绍一下你自己"},
        {"role": "assistant", "content": "您好，我是小一机器人。"},
        {"role": "user", "content": "周末这里的天气怎么样？"},
    ]
    started = int(time.time())
    response = ask(client, key, messages)
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["code", "msg", "id", "created", "choices", "usage"]
    assert body["code"] == 0 and body["msg"] == ""
    assert re.fullmatch(r"as-[a-z0-9]{10}", body["id"])
    assert started <= body["created"] <= int(time.time())
    assert body["choices"] == [
        {
            "message": {"role": "assistant", "content": "回答：周末这里的天气怎么样？"},
            "finish_reason": "stop",
            "index": 0,
        }
    ]
    prompt = estimate_tokens(m["content"] for m in messages)
    completion = estimate_tokens("回答：周末这里的天气怎么样？")
    assert body["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    sent = upstream.received[0]
    assert sent.headers["Authorization"] == "Bearer sk-upstream-test"
    assert sent.body["model"] == "test-model"
    assert sent.body["messages"][0]["role"] == "system"
    assert sent.body["messages"][1:] == messages


def test_the_spec_curl_example_without_content_type_works(client, issue_key):
    key = issue_key()
    raw = json.dumps({"api_secret_key": key, "messages": one("你好")}, ensure_ascii=False).encode()
    response = client.post(URL, data=raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.get_json()["choices"][0]["message"]["content"] == "回答：你好"
    assert "回答：你好".encode() in response.data  # Chinese stays readable, not \\u-escaped


def test_each_answer_is_charged_exactly_its_usage(app, client, issue_key):
    key = issue_key()
    before = balance(app, key)
    body = ask(client, key, one("hello world, 你好")).get_json()
    assert balance(app, key) == before - body["usage"]["total_tokens"]


@pytest.mark.parametrize(
    ("messages", "where"),
    [
        (None, "messages is required"),
        ("hi", "messages must be a list"),
        ([], "must not be empty"),
        ([{"role": "assistant", "content": "x"}], "messages[0].role must be 'user', got 'assistant'"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "messages[1].role must be 'assistant'"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "odd number"),
        ([{"role": "system", "content": "a"}], "messages[0].role must be 'user', got 'system'"),
        ([{"role": "user", "content": 5}], "messages[0].content must be a string, got int"),
        ([{"role": "user"}], "messages[0].content must be a string, got NoneType"),
        ([{"role": "user", "content": ""}], "messages[0].content must not be empty"),
        ([{"role": "user", "content": " \n\t"}], "messages[0].content must not be empty"),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "c"}],
            "messages[1].content must not be empty",
        ),
        (["hello"], "messages[0] must be an object, got str"),
    ],
)
def test_invalid_messages_are_rejected_saying_where(client, issue_key, upstream, messages, where):
    response = client.post(URL, json={"api_secret_key": issue_key(), "messages": messages})
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 40002
    assert where in body["msg"]
    assert upstream.calls == 0


def test_a_question_of_2000_characters_is_answered_and_2001_is_refused(client, issue_key, upstream):
    key = issue_key()
    assert ask(client, key, one("问" * 2000)).status_code == 200
    response = ask(client, key, one("问" * 2001))
    assert response.status_code == 400
    assert response.get_json()["code"] == 40003
    assert "2001" in response.get_json()["msg"]
    assert upstream.calls == 1


def dialogue(*contents):
    return [{"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(contents)]


def sent_dialogue(upstream):
    return [m for m in upstream.received[-1].body["messages"] if m["role"] != "system"]


def test_history_of_exactly_2000_characters_is_kept_whole(client, issue_key, upstream):
    messages = dialogue("a" * 500, "b" * 500, "c" * 500, "d" * 300, "e" * 200)
    assert ask(client, issue_key(), messages).status_code == 200
    assert sent_dialogue(upstream) == messages


def test_one_character_over_forgets_the_oldest_pair_only(client, issue_key, upstream):
    messages = dialogue("a" * 500, "b" * 500, "c" * 500, "d" * 300, "e" * 201)
    body = ask(client, issue_key(), messages).get_json()
    assert sent_dialogue(upstream) == messages[2:]
    assert body["usage"]["prompt_tokens"] == estimate_tokens(m["content"] for m in messages[2:])


def test_a_huge_old_assistant_turn_is_forgotten_with_its_question(client, issue_key, upstream):
    messages = dialogue("早", "长" * 1995, "中", "答", "最后的问题")
    ask(client, issue_key(), messages)
    assert sent_dialogue(upstream) == messages[2:]


def test_everything_but_a_2000_character_question_is_forgotten(client, issue_key, upstream):
    messages = dialogue("a", "b", "问" * 2000)
    ask(client, issue_key(), messages)
    assert sent_dialogue(upstream) == messages[2:]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"messages": one("hi")}, 401, 40101),
        ({"api_secret_key": "", "messages": one("hi")}, 401, 40101),
        ({"api_secret_key": 123, "messages": one("hi")}, 401, 40102),
        ({"api_secret_key": "sk-short", "messages": one("hi")}, 401, 40102),
        ({"api_secret_key": "sk-" + "A" * 48, "messages": one("hi")}, 401, 40102),
    ],
)
def test_missing_or_unknown_keys_are_refused_before_the_model(client, upstream, body, status, code):
    response = client.post(URL, json=body)
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert upstream.calls == 0


def test_a_revoked_key_stops_working_at_once(app, client, upstream):
    with app.app_context():
        key, _ = services().keys.issue("oRevoked")
    assert ask(client, key, one("hi")).status_code == 200
    with app.app_context():
        services().keys.revoke("oRevoked")
    response = ask(client, key, one("hi"))
    assert (response.status_code, response.get_json()["code"]) == (401, 40102)
    assert upstream.calls == 1


def test_an_exhausted_balance_is_refused_before_the_model(app, client, issue_key, upstream):
    key = issue_key()
    with app.app_context():
        store = services().keys
        store.redis.hset(keyspace.api_key(store.fingerprint(key)), "balance", 10)
    response = ask(client, key, one("hello there"))
    assert (response.status_code, response.get_json()["code"]) == (402, 40201)
    assert upstream.calls == 0
    assert balance(app, key) == 10


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        ({"stream": "yes"}, 40001, "stream must be true or false"),
        ({"user": 42}, 40001, "user must be a string"),
        ({"user": "u" * 257}, 40001, "at most 256"),
    ],
)
def test_options_are_checked(client, issue_key, upstream, extra, code, needle):
    response = ask(client, issue_key(), one("hi"), **extra)
    assert response.status_code == 400
    assert response.get_json()["code"] == code
    assert needle in response.get_json()["msg"]
    assert upstream.calls == 0


def test_stream_false_and_a_user_are_accepted(client, issue_key):
    response = ask(client, issue_key(), one("hi"), stream=False, user="end-user-7", unknown_field=1)
    assert response.get_json()["code"] == 0


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"{not json", "invalid JSON at line 1 column 2"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"", "invalid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_clear_400(client, data, needle):
    response = client.post(URL, data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == 40001
    assert needle in response.get_json()["msg"]


def test_an_oversized_body_is_a_413(client, issue_key):
    response = ask(client, issue_key(), one("x" * 300_000))
    assert (response.status_code, response.get_json()["code"]) == (413, 40005)


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/api/v1/nothing").get_json()["code"] == 40401
    response = client.get(URL)
    assert (response.status_code, response.get_json()["code"]) == (405, 40501)


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [
        ({"status": 500}, 502, 50201),
        ({"status": 429}, 502, 50201),
        ({"mode": "malformed"}, 502, 50201),
        ({"mode": "empty"}, 502, 50201),
        ({"mode": "drop"}, 502, 50201),
        ({"latency": 2.5}, 504, 50401),
    ],
)
def test_upstream_failures_cost_nothing_and_say_what_happened(
    app, client, issue_key, upstream, behaviour, status, code
):
    key = issue_key()
    before = balance(app, key)
    upstream.reset(**behaviour)
    response = ask(client, key, one("hi"))
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert balance(app, key) == before
    with app.app_context():
        store = services().keys
        assert store.info(store.fingerprint(key)).reserved == 0


def test_upstream_5xx_is_retried_once_then_answered(client, issue_key, upstream):
    upstream.reset(status=503, fail_times=1)
    response = ask(client, issue_key(), one("hi"))
    assert response.get_json()["code"] == 0
    assert upstream.calls == 2


def test_a_failing_upstream_is_not_hammered(client, issue_key, upstream):
    upstream.reset(status=500)
    ask(client, issue_key(), one("hi"))
    assert upstream.calls == 2  # the call and one retry


def test_the_answer_is_capped_by_what_the_balance_can_pay(app, client, issue_key, upstream):
    key = issue_key()
    with app.app_context():
        store = services().keys
        store.redis.hset(keyspace.api_key(store.fingerprint(key)), "balance", 100)
    ask(client, key, one("hi"))
    prompt = estimate_tokens("hi")
    assert upstream.received[0].body["max_tokens"] == 100 - prompt


def test_redis_unreachable_is_a_503(config, upstream, make_app):
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().post(URL, json={"api_secret_key": "sk-" + "a" * 48, "messages": one("hi")})
    assert (response.status_code, response.get_json()["code"]) == (503, 50301)


def test_offline_provider_says_it_is_offline(config, redis, make_app):
    offline = {k: v for k, v in config.items() if not k.startswith("OPENAI_")}
    app = make_app(offline)
    with app.app_context():
        key, _ = services().keys.issue("oOffline")
    body = app.test_client().post(URL, json={"api_secret_key": key, "messages": one("你好")}).get_json()
    content = body["choices"][0]["message"]["content"]
    assert body["code"] == 0
    assert "离线" in content and "OPENAI_API_KEY" in content
    assert "你好" in content
