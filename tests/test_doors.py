"""Each JSON door answers its own failures in its own shape, whatever they are and wherever they arise.

The spec's door (/api/v1) answers `{code, msg}`; the OpenAI door (/v1) answers OpenAI's `{error}`,
except for the spec's curl example, which posts to /v1 with the key in its body and no
Authorization header: that request is the spec's door's, failures included.
"""

from __future__ import annotations

import json

import pytest

from bot.services import services
from tests.helpers import OPENAI_URL as OPENAI
from tests.helpers import SPEC_URL as SPEC
from tests.helpers import one
from tests.test_operations import sample, scrape


def spec_shape(response, code):
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "msg"} and body["code"] == code, body


def openai_shape(response, error_type):
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["type"] == error_type, body


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nowhere", 404, 40401),
        # A caller who misses the version is still answered by the spec's door, as before the doors split.
        ("POST", "/api/chat/completions", 404, 40401),
        ("GET", "/api/v2/chat/completions", 404, 40401),
        ("GET", SPEC, 405, 40501),
        ("DELETE", "/api/v1/openapi.json", 405, 40501),
    ],
)
def test_the_spec_door_answers_unrouted_requests_in_its_shape(client, method, path, status, code):
    response = client.open(path, method=method)
    assert response.status_code == status
    spec_shape(response, code)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nowhere", 404), ("GET", OPENAI, 405), ("POST", "/v1/models", 405)],
)
def test_the_openai_door_answers_unrouted_requests_in_its_shape(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    openai_shape(response, "invalid_request_error")


def test_an_unrouted_request_is_counted_under_the_door_of_its_prefix(client):
    before = scrape(client)
    client.get("/v1/nowhere")
    client.get("/api/v1/nowhere")
    after = scrape(client)
    for door in ("openai", "api"):
        labels = {"door": door, "status": "4xx", "outcome": "not_found"}
        assert sample(after, "xiaoyi_requests_total", **labels) - sample(before, "xiaoyi_requests_total", **labels) == 1


def test_a_request_under_api_without_the_version_is_counted_under_the_spec_door(client):
    labels = {"door": "api", "status": "4xx", "outcome": "not_found"}
    before = sample(scrape(client), "xiaoyi_requests_total", **labels)
    client.get("/api/nowhere")
    assert sample(scrape(client), "xiaoyi_requests_total", **labels) - before == 1


def test_oversized_bodies_are_413_in_each_doors_shape(client, issue_key):
    key, big = issue_key(), "x" * 300_000
    spec_shape(client.post(SPEC, json={"api_secret_key": key, "messages": one(big)}), 40005)
    response = client.post(OPENAI, json={"messages": one(big)}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 413
    openai_shape(response, "invalid_request_error")
    curl = client.post(OPENAI, data=json.dumps({"api_secret_key": key, "messages": one(big)}))
    assert curl.status_code == 413
    spec_shape(curl, 40005)


def test_the_spec_curl_example_on_v1_fails_in_the_spec_shape(client, issue_key, upstream):
    key = issue_key()
    spec_shape(client.post(OPENAI, data=json.dumps({"api_secret_key": key, "messages": one("")})), 40002)
    spec_shape(client.post(OPENAI, data=json.dumps({"api_secret_key": key, "messages": one("问" * 2001)})), 40003)
    spec_shape(client.post(OPENAI, data=json.dumps({"api_secret_key": "sk-1", "messages": one("hi")})), 40102)
    no_key = client.post(OPENAI, data=json.dumps({"messages": one("hi")}))  # not the spec's: OpenAI's 401
    assert no_key.status_code == 401
    openai_shape(no_key, "invalid_request_error")
    assert upstream.calls == 0


def test_redis_down_is_a_503_in_each_doors_shape(config, make_app, upstream):
    client = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    key = "sk-" + "a" * 48
    spec_shape(client.post(SPEC, json={"api_secret_key": key, "messages": one("hi")}), 50301)
    response = client.post(OPENAI, json={"messages": one("hi")}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    openai_shape(response, "server_error")
    spec_shape(client.post(OPENAI, data=json.dumps({"api_secret_key": key, "messages": one("hi")})), 50301)
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 503


def test_an_unexpected_error_is_a_500_in_each_doors_shape_and_logged(app, client, issue_key, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with app.app_context():
        monkeypatch.setattr(services().chat, "complete", broken)
    key = issue_key()
    spec_shape(client.post(SPEC, json={"api_secret_key": key, "messages": one("hi")}), 50001)
    response = client.post(OPENAI, json={"messages": one("hi")}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 500 and "a bug" not in response.get_data(as_text=True)
    openai_shape(response, "server_error")
    assert sum(bool("unhandled error on POST" in r.getMessage() and r.exc_info) for r in caplog.records) == 2


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, None), ("Bearer sk-short", "invalid_api_key"), ("Token abc", "invalid_api_key")],
)
def test_the_model_list_is_for_key_holders_only(client, upstream, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/v1/models", "/v1/models/test-model"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == code


def test_json_numbers_with_no_fraction_are_integers_and_true_is_not_one(client, issue_key, upstream):
    key = issue_key()
    headers = {"Authorization": f"Bearer {key}"}
    body = {"messages": one("hi"), "max_tokens": 7.0, "n": 1.0}
    assert client.post(OPENAI, data=json.dumps(body), headers=headers).status_code == 200
    assert upstream.received[-1].body["max_tokens"] == 7
    for field, value in (("max_tokens", True), ("n", True), ("max_tokens", 7.5)):
        refused = client.post(OPENAI, json={"messages": one("hi"), field: value}, headers=headers)
        assert refused.status_code == 400 and field in refused.get_json()["error"]["message"]
    assert upstream.calls == 1
