"""Hostile bodies on both JSON doors: a clear 4xx naming what is wrong, never a 500, never the model.

What tests/test_chat_api.py and tests/test_openai_api.py already cover (bad JSON, each messages
rule, the common wrong types) is not repeated here.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import one

SPEC = "/api/v1/chat/completions"
OPENAI = "/v1/chat/completions"


def spec_post(client, key, raw: bytes | str):
    return client.post(SPEC, data=raw, content_type="application/json")


def openai_post(client, key, raw: bytes | str):
    return client.post(OPENAI, data=raw, content_type="application/json", headers={"Authorization": f"Bearer {key}"})


def message_of(response) -> str:
    body = response.get_json()
    return body["msg"] if "msg" in body else body["error"]["message"]


DOORS = [pytest.param(spec_post, id="spec"), pytest.param(openai_post, id="openai")]


def send(post, client, key, **fields):
    """A body for `post`'s door (the key in it on the spec's door, in the header on OpenAI's)."""
    base = {"api_secret_key": key} if post is spec_post else {"model": "m"}
    return post(client, key, json.dumps({**base, **fields}))


@pytest.mark.parametrize("post", DOORS)
@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_json_is_a_400_not_a_crash(client, issue_key, upstream, post, depth):
    raw = '{"messages": ' + "[" * depth + "]" * depth + "}"
    response = post(client, issue_key(), raw)
    assert response.status_code == 400
    assert "nested too deeply" in message_of(response)
    assert send(post, client, issue_key(), messages=one("hi")).status_code == 200  # the worker still serves
    assert upstream.calls == 1


@pytest.mark.parametrize("post", DOORS)
@pytest.mark.parametrize(
    ("raw_field", "where"),
    [
        ('"messages": [{"role": "user", "content": "hi \\ud800 there"}]', "messages[0].content"),
        ('"messages": [{"role": "user", "content": "hi"}], "user": "\\udfff"', "user"),
        ('"messages": [{"role": "user", "content": "hi", "\\ud83d": 1}]', "messages[0] (a key)"),
    ],
)
def test_lone_surrogates_are_refused_saying_where(client, issue_key, upstream, post, raw_field, where):
    key = issue_key()
    head = f'"api_secret_key": "{key}", ' if post is spec_post else '"model": "m", '
    response = post(client, key, "{" + head + raw_field + "}")
    assert response.status_code == 400
    assert f"{where} is not valid Unicode" in message_of(response)
    assert upstream.calls == 0


@pytest.mark.parametrize("post", DOORS)
@pytest.mark.parametrize(
    "question",
    [
        "nul\x00inside",
        "\u202eRTL override\u202c and \u200f marks \u200e",
        "emoji 😀👍🏽 and a family 👨\u200d👩\u200d👧",
        "e\u0301\u0301\u0301 combining",
        "\U0002a6d6 beyond the BMP",
    ],
)
def test_unusual_but_valid_unicode_is_answered_and_round_trips(client, issue_key, upstream, post, question):
    response = send(post, client, issue_key(), messages=one(question))
    assert response.status_code == 200
    body = response.get_json()
    message = body["choices"][0]["message"]["content"]
    assert message == "回答：" + question
    assert upstream.received[-1].body["messages"][-1]["content"] == question


@pytest.mark.parametrize("post", DOORS)
def test_2000_combining_marks_are_2000_characters(client, issue_key, post):
    key = issue_key()
    assert send(post, client, key, messages=one("\u0301" * 2000)).status_code == 200
    refused = send(post, client, key, messages=one("\u0301" * 2001))
    assert refused.status_code == 400 and "2001" in message_of(refused)


@pytest.mark.parametrize("post", DOORS)
@pytest.mark.parametrize("content", ["", " ", "\u3000\n\t\u00a0", "\r\n"])
def test_empty_and_whitespace_only_contents_are_refused(client, issue_key, upstream, post, content):
    messages = [*one("first"), {"role": "assistant", "content": content}, *one("q")]
    response = send(post, client, issue_key(), messages=messages)
    assert response.status_code == 400
    assert "messages[1].content must not be empty" in message_of(response)
    assert upstream.calls == 0


@pytest.mark.parametrize("post", DOORS)
@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"messages": one("x") * 1001}, "1001 items, at most 1000"),
        ({"messages": [1] * 50_000}, "1000"),
        ({"messages": one("hi"), "stream": [True] * 20_000}, "stream must be true or false, got [True, True"),
        ({"messages": one("hi"), "user": ["u"] * 20_000}, "user must be a string, got list"),
        ({"messages": {"role": "user", "content": "hi"}}, "messages must be a list, got dict"),
        ({"messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role must be 'user', got ['user']"),
        ({"messages": [{"role": "user", "content": {"text": "hi"}}]}, "messages[0].content must be a string, got dict"),
        ({"messages": [{"role": "user", "content": None}]}, "content must be a string, got NoneType"),
        ({"messages": [{"role": "user", "content": 1.5}]}, "content must be a string, got float"),
        ({"messages": [{"role": "user", "content": True}]}, "content must be a string, got bool"),
        ({"messages": [[]]}, "messages[0] must be an object, got list"),
        ({"messages": [None]}, "messages[0] must be an object, got NoneType"),
        ({"messages": one("hi"), "stream": "x" * 100_000}, "…"),  # a huge value is quoted short
        ({"messages": one("hi"), "user": 1.0}, "user must be a string, got float"),
    ],
)
def test_wrong_types_and_huge_arrays_are_400s_saying_what(client, issue_key, upstream, post, fields, needle):
    response = send(post, client, issue_key(), **fields)
    assert response.status_code == 400
    assert needle in message_of(response)
    assert len(message_of(response)) < 300
    assert upstream.calls == 0


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"api_secret_key": ["sk-x"]}, "the key must be a string, got list"),
        ({"api_secret_key": {"k": 1}}, "the key must be a string, got dict"),
        ({"api_secret_key": True}, "the key must be a string, got bool"),
        ({"api_secret_key": "sk-" + "é" * 48}, "expected 'sk-' followed by 48 letters or digits"),
        ({"api_secret_key": "sk-" + "a" * 48 + "\x00"}, "expected 'sk-' followed by 48 letters or digits"),
    ],
)
def test_keys_of_the_wrong_type_or_shape_are_401s(client, upstream, fields, needle):
    response = spec_post(client, "", json.dumps({"messages": one("hi"), **fields}))
    assert (response.status_code, response.get_json()["code"]) == (401, 40102)
    assert needle in response.get_json()["msg"]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"temperature": "1"}, "temperature must be a number, got '1'"),
        ({"temperature": True}, "temperature must be a number, got True"),
        ({"temperature": [1]}, "temperature must be a number, got [1]"),
        ({"top_p": 1.5}, "top_p must be between 0 and 1"),
        ({"max_tokens": 1.5}, "max_tokens must be a positive integer, got 1.5"),
        ({"max_tokens": "10"}, "max_tokens must be a positive integer, got '10'"),
        ({"max_completion_tokens": -1}, "max_completion_tokens must be a positive integer, got -1"),
        ({"n": "1"}, "n must be 1"),
        ({"n": True}, "n must be 1"),
        ({"stream": True, "stream_options": [1]}, "stream_options must be like"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options must be like"),
        ({"model": ["gpt"]}, "model must be a string, got list"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "content[0] must be a text part"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "content[0] must be a text part, got 'str'"),
        ({"messages": [{"role": "system", "content": 5}, *one("hi")]}, "messages[0].content must be a string"),
    ],
)
def test_openai_fields_of_the_wrong_type_are_400s(client, issue_key, upstream, fields, needle):
    raw = json.dumps({"model": "m", "messages": one("hi"), **fields})
    response = openai_post(client, issue_key(), raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "invalid_request_error"
    assert needle in message_of(response)
    assert upstream.calls == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(client, issue_key, upstream, literal):
    raw = '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": ' + literal + "}"
    response = openai_post(client, issue_key(), raw)
    assert response.status_code == 400 and "temperature must be a number" in message_of(response)
    assert upstream.calls == 0


def test_an_integer_too_long_to_read_is_a_400(client, issue_key):
    raw = '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + "9" * 5000 + "}"
    response = openai_post(client, issue_key(), raw)
    assert response.status_code == 400 and "invalid JSON" in message_of(response)


def test_unknown_fields_are_ignored_on_the_openai_door(client, issue_key, upstream):
    raw = json.dumps(
        {
            "model": "m",
            "messages": one("hi"),
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "logprobs": True,
            "response_format": {"type": "json_object"},
            "seed": 7,
            "金": "额",
        }
    )
    response = openai_post(client, issue_key(), raw)
    assert response.status_code == 200
    assert set(upstream.received[-1].body) <= {"model", "messages", "max_tokens", "temperature", "top_p"}


@pytest.mark.parametrize(
    "authorization",
    ["Bearer " + "é" * 51, "Bearer", "Basic dXNlcjpwYXNz", "Bearer sk-" + "a" * 48 + " extra", "bearer  "],
)
def test_odd_authorization_headers_are_401s(client, upstream, authorization):
    raw = json.dumps({"model": "m", "messages": one("hi")})
    headers = {"Authorization": authorization.encode().decode("latin-1")}
    response = client.post(OPENAI, data=raw, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["type"] == "invalid_request_error"
    assert upstream.calls == 0
