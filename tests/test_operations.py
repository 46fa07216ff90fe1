"""The operator's view: /healthz, /readyz, /metrics (in-process and over 2 gunicorn workers), logs."""

from __future__ import annotations

import logging
import re

import pytest
import requests

from bot import metrics
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.helpers import one
from tests.procs import wait_for
from tests.servers import Gunicorn

URL = "/api/v1/chat/completions"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == want:
            total += float(match[3])
    return total


def scrape(client, **headers) -> str:
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def test_healthz_answers_without_redis(config, make_app):
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_is_200_with_its_checks_when_redis_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["redis"]["ok"] is True and body["checks"]["config"]["model"] == "configured"


def test_readyz_is_a_fast_503_naming_redis_when_it_is_down(config, make_app):
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert body["checks"]["config"]["ok"] is True


def test_readyz_names_a_configuration_that_cannot_work(config, make_app):
    settings = {k: v for k, v in config.items() if k != "WECHAT_SECRET"}
    app = make_app({**settings, "WECHAT_REPLY_MODE": "customer_service"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "WECHAT_SECRET" in response.get_json()["checks"]["config"]["problems"][0]


def test_readyz_fails_on_a_read_only_redis(client, redis):
    redis.config_set("replica-read-only", "yes")
    redis.execute_command("REPLICAOF", "127.0.0.1", "1")  # now a replica that refuses writes
    try:
        response = client.get("/readyz")
    finally:
        redis.execute_command("REPLICAOF", "NO", "ONE")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["error"] == "ReadOnlyError"


def test_metrics_count_requests_by_door_and_outcome(client, issue_key):
    key = issue_key()
    before = scrape(client)
    assert client.post(URL, json={"api_secret_key": key, "messages": one("hi")}).status_code == 200
    client.post(URL, json={"api_secret_key": "sk-" + "a" * 48, "messages": one("hi")})
    client.post("/v1/chat/completions", json={"model": "m", "messages": one("hi")}, headers={"Authorization": "x"})
    client.get("/nowhere")
    after = scrape(client)

    def delta(**labels):
        return sample(after, "xiaoyi_requests_total", **labels) - sample(before, "xiaoyi_requests_total", **labels)

    assert delta(door="api", status="2xx", outcome="ok") == 1
    assert delta(door="api", status="4xx", outcome="invalid_key") == 1
    assert delta(door="openai", status="4xx", outcome="invalid_key") == 1
    assert delta(door="other", status="4xx", outcome="http_404") == 1


def test_metrics_observe_the_model_and_count_tokens_charged(client, issue_key, upstream):
    before = scrape(client)
    body = client.post(URL, json={"api_secret_key": issue_key(), "messages": one("hello world")}).get_json()
    upstream.reset(latency=2.5)
    client.post(URL, json={"api_secret_key": issue_key(), "messages": one("slow")})
    after = scrape(client)

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("xiaoyi_upstream_seconds_count", outcome="ok") == 1
    assert delta("xiaoyi_upstream_seconds_count", outcome="upstream_timeout") == 1
    assert delta("xiaoyi_upstream_seconds_bucket", outcome="upstream_timeout", le="2.0") == 0
    assert delta("xiaoyi_tokens_charged_total", door="api", payer="key") == body["usage"]["total_tokens"]


def test_redis_errors_are_counted(config, make_app):
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    client = app.test_client()
    before = scrape(client)
    client.post(URL, json={"api_secret_key": "sk-" + "a" * 48, "messages": one("hi")})
    after = scrape(client)
    name = "xiaoyi_redis_errors_total"
    assert sample(after, name, door="api") - sample(before, name, door="api") == 1


def test_each_wechat_answer_is_counted_by_how_it_reached_the_follower(config, make_app, upstream, wechat_api):
    fast = {**config, "BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.5"}
    passive = make_app(fast).test_client()
    pushing = make_app({**fast, "WECHAT_REPLY_MODE": "customer_service"}).test_client()
    before = scrape(passive)

    def delta(outcome: str) -> float:
        name = "xiaoyi_wechat_deliveries_total"
        return sample(scrape(passive), name, outcome=outcome) - sample(before, name, outcome=outcome)

    assert Follower(flask_post(passive), ACCOUNT, "oCountedInWindow").say("你好") == "回答：你好"
    upstream.reset(latency=0.8)  # past the window: `success` now, the answer pushed when it is written
    assert Follower(flask_post(pushing), ACCOUNT, "oCountedPushed").say("慢慢说") is None
    assert wait_for(lambda: delta("pushed") == 1)
    assert [c.body["text"]["content"] for c in wechat_api.calls_to("/cgi-bin/message/custom/send")] == ["回答：慢慢说"]
    assert (delta("in_window"), delta("deferred"), delta("continue")) == (1, 1, 0)


def test_a_delivery_outcome_outside_the_documented_ones_is_refused():
    with pytest.raises(ValueError, match="in_window"):
        metrics.count_delivery("lost")


@pytest.mark.parametrize(
    ("remote", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("10.1.2.3", {}, False),  # a private address may be a load balancer rewriting clients
        ("::1", {}, True),
        ("203.0.113.9", {}, False),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, False),  # relayed by a proxy on this host
    ],
)
def test_without_a_token_metrics_are_for_internal_callers_only(client, remote, headers, allowed):
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == (200 if allowed else 403)


def test_with_a_token_metrics_want_it_from_anyone(config, make_app):
    client = make_app({**config, "BOT_METRICS_TOKEN": "scrape-token-1"}).test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    assert client.get("/metrics", environ_base=local).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, environ_base=local).status_code == 403
    ok = client.get(
        "/metrics", headers={"Authorization": "Bearer scrape-token-1"}, environ_base={"REMOTE_ADDR": "8.8.8.8"}
    )
    assert ok.status_code == 200 and b"xiaoyi_requests_total" in ok.data


def test_a_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-Id": "lb-42.a:b"}).headers["X-Request-Id"] == "lb-42.a:b"
    made = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces; and \u00e9" + "x" * 200}).headers[
        "X-Request-Id"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["X-Request-Id"] != client.get("/healthz").headers["X-Request-Id"]


def test_every_log_line_of_a_request_carries_its_id_and_no_secret(client, issue_key, upstream, caplog):
    key = issue_key()
    secret_question = "我的秘密问题 tell nobody"
    with caplog.at_level(logging.INFO):
        response = client.post(
            URL, json={"api_secret_key": key, "messages": one(secret_question)}, headers={"X-Request-Id": "rid-1"}
        )
    assert response.status_code == 200
    [request_line] = [r.getMessage() for r in caplog.records]  # one line per request
    assert caplog.records[0].request_id == "rid-1"
    assert "door=api POST /api/v1/chat/completions status=200" in request_line and "who=key#" in request_line
    assert f"id={response.get_json()['id']} tokens={response.get_json()['usage']['total_tokens']}" in request_line
    caplog.clear()
    upstream.reset(status=500)  # the chat core logs the model's failure: that line carries the id too
    with caplog.at_level(logging.INFO):
        client.post(URL, json={"api_secret_key": key, "messages": one(secret_question)}, headers={"X-Request-Id": "r2"})
        client.post(URL, json={"api_secret_key": key, "messages": one(secret_question), "stream": "x"})
    first = [r for r in caplog.records if r.name.startswith("bot.")][:2]
    assert {r.name for r in first} == {"bot.chat.providers", "bot.request"}
    assert all(r.request_id == "r2" for r in first)
    for record in caplog.records:
        text = logging.Formatter("%(message)s").format(record)
        assert key not in text and key[3:20] not in text and "秘密" not in text


def test_content_is_logged_only_when_asked(config, make_app, caplog):
    app = make_app({**config, "BOT_LOG_CONTENT": "1"})
    from bot.services import services

    with app.app_context():
        key = services().keys.issue("oLogContent")[0]
    with caplog.at_level(logging.INFO, logger="bot.request"):
        app.test_client().post(URL, json={"api_secret_key": key, "messages": one("调试这句")})
    assert any("content='调试这句'" in r.getMessage() for r in caplog.records)
    assert not any(key in r.getMessage() for r in caplog.records)


def test_wechat_request_lines_name_the_follower_and_drop_the_query(client, caplog):
    from bot.wechat import simulate
    from tests.conftest import ACCOUNT

    xml = simulate.message_xml(ACCOUNT, "oLogFollower", "text", Content="你好", MsgId=77)
    params, body = simulate.sign(ACCOUNT, xml, "safe")
    with caplog.at_level(logging.INFO, logger="bot.request"):
        assert client.post("/wechat", query_string=params, data=body).status_code == 200
    line = next(r.getMessage() for r in caplog.records if r.name == "bot.request")
    assert "door=wechat POST /wechat status=200" in line and "who=openid=oLogFollower" in line
    assert "signature" not in line and "你好" not in line


@pytest.mark.slow
def test_metrics_under_gunicorn_add_up_both_workers(tmp_path, redis_server, upstream_server):
    server = Gunicorn(tmp_path, redis_server.url, upstream_server.url, WEB_CONCURRENCY="2")
    try:
        server.start()

        def both_answered() -> bool:  # the second worker may still be booting on a busy machine
            requests.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=5)
            return len({pid for pid, _, path in server.served() if path == "/healthz"}) == 2

        assert wait_for(both_answered, 30), "only one worker answered"
        text = requests.get(server.url + "/metrics", timeout=5).text
        counted = sample(text, "xiaoyi_requests_total", door="ops", status="2xx", outcome="ok")
        # A request is counted before its response is sent, and its access-log line written after.
        assert wait_for(lambda: sum(1 for _, _, path in server.served() if path == "/healthz") == counted, 5)
    finally:
        server.stop()
