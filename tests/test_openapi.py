"""The OpenAPI document against the doors: it describes every route, and the doors do what it says.

schemathesis runs in-process against the WSGI app (real Redis, the upstream double answering), with
a bounded number of examples per operation. Every response must be documented (status, content
type, body shape) and none may be a 5xx: the model answers, so 502/503/504 cannot be honest here.
A request the document calls valid must be answered (2xx), once the rules a schema cannot state
(roles alternate, an odd number, the character budget: bot/chat/dialogue.py) are applied to it;
a request it calls invalid must be refused (4xx). The documented bounds are tried at the edge too.
"""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.generation.meta import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.chat.dialogue import MAX_CHARS, MAX_MESSAGES, ROLES, SYSTEM_ROLES
from bot.services import services
from tests.helpers import OPENAI_URL, bearer, one

# Per operation and mode: the whole run stays well under a minute (FUZZ_EXAMPLES=500 for a long hunt).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
DOORS = ("/api/v1/", "/v1/")


def test_the_document_is_served_and_describes_both_doors(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    spec_door = document["paths"]["/api/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "402", "403", "413", "429", "500", "502", "503", "504"} == set(spec_door)
    assert "40002" in spec_door["400"]["description"] and "42901" in spec_door["429"]["description"]


def test_every_route_of_the_doors_is_documented_and_nothing_else(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    routes = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(DOORS)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented


def request_schema(client, name):
    return client.get("/api/v1/openapi.json").get_json()["components"]["schemas"][name]["properties"]


def bound(schema, key, default):
    """A field's documented bound; `default` when the document states none (anything goes, then)."""
    options = schema.get("anyOf", [schema])
    return next((option[key] for option in options if key in option), default)


def openai_post(client, key, **fields):
    body = {"model": "m", "messages": one("hi"), **fields}
    return client.post(OPENAI_URL, json=body, headers=bearer(key))


@pytest.mark.parametrize(("field", "filler"), [("model", "m"), ("user", "u")])
def test_the_longest_string_the_document_allows_is_answered_and_one_more_refused(client, issue_key, field, filler):
    longest = bound(request_schema(client, "OpenAIChatRequest")[field], "maxLength", 10_000)
    key = issue_key()
    assert openai_post(client, key, **{field: filler * longest}).status_code == 200
    assert openai_post(client, key, **{field: filler * (longest + 1)}).status_code == 400


@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_the_documented_number_bounds_are_the_codes(client, issue_key, field):
    schema, key = request_schema(client, "OpenAIChatRequest")[field], issue_key()
    low, high = bound(schema, "minimum", -1e6), bound(schema, "maximum", 1e6)
    assert [openai_post(client, key, **{field: value}).status_code for value in (low, high)] == [200, 200]
    assert [openai_post(client, key, **{field: value}).status_code for value in (low - 0.01, high + 0.01)] == [400, 400]


@pytest.mark.parametrize(("name", "system"), [("SpecChatRequest", False), ("OpenAIChatRequest", True)])
def test_the_most_messages_the_document_allows_are_answered(client, issue_key, name, system):
    most = bound(request_schema(client, name)["messages"], "maxItems", 10_000)
    head = [{"role": "system", "content": "s"}] if system else []
    dialogue = [{"role": ROLES[i % 2], "content": "x"} for i in range((most - len(head) - 1) // 2 * 2 + 1)]
    key = issue_key()

    def post(messages):
        if system:
            return openai_post(client, key, messages=messages)
        return client.post("/api/v1/chat/completions", json={"api_secret_key": key, "messages": messages})

    assert post(head + dialogue).status_code == 200  # the most that is odd, as the dialogue rules want
    more = [{"role": "assistant", "content": "x"}, *one("y")]
    assert post(head + dialogue + more).status_code == 400


OPERATIONS = [
    ("POST", "/api/v1/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
]
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzzed(config, make_app):
    """The app (no rate limits: hypothesis sends many requests) and a key with a huge balance."""
    app = make_app({**config, "BOT_RATE_KEY_RPM": "0", "BOT_RATE_USER_RPM": "0"})
    with app.app_context():
        keys = services().keys
        key, _ = keys.issue("oFuzz")
        keys.grant(keys.fingerprint(key), 10**9)
    return app, key


def text_of(content):
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def apply_dialogue_rules(body):
    """What bot/chat/dialogue.py asks of messages beyond their schema, applied to a valid body:
    one optional leading system message, then roles alternating from 'user', an odd number at
    most MAX_MESSAGES, no blank text, a question (and system message with it) within MAX_CHARS."""
    messages = body["messages"]
    head = messages[:1] if messages[0]["role"] in SYSTEM_ROLES else []
    rest = messages[len(head) :][:MAX_MESSAGES] or one("hi")
    rest = rest if len(rest) % 2 else rest[:-1]
    for i, message in enumerate(head + rest):
        message["role"] = message["role"] if i < len(head) else ROLES[(i - len(head)) % 2]
        if not text_of(message["content"]).strip():
            message["content"] = "hi"
    if len(text_of(rest[-1]["content"])) > MAX_CHARS // 2:
        rest[-1]["content"] = "hi"
    if head and len(text_of(head[0]["content"])) > MAX_CHARS // 2:
        head[0]["content"] = "be brief"
    body["messages"] = head + rest


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzed_requests_are_answered_as_the_document_says(fuzzed, method, path, mode):
    app, key = fuzzed
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exchange(case):
        if path.startswith("/v1/"):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body["api_secret_key"] = key
            apply_dialogue_rules(case.body)
        response = case.call_and_validate(checks=CHECKS)
        said = f"{case.method} {case.path} {case.body!r:.300} answered {response.status_code}: {response.text[:300]}"
        assert response.status_code < 500, said
        if mode is GenerationMode.POSITIVE:
            unknown_model = path.endswith("{model_id}") and case.path_parameters["model_id"] != "test-model"
            assert response.status_code == (404 if unknown_model else 200), said
        elif any(case.meta.is_negative_at(part) for part in (ParameterLocation.BODY, ParameterLocation.PATH)):
            assert 400 <= response.status_code < 500, said  # refused (an invalid header is replaced by the key)
        statuses.append(response.status_code)

    statuses: list[int] = []
    exchange()
    print(method, path, mode, sorted(statuses))
