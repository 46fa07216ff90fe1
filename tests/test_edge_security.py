"""Hostile input at the HTTP edge, in process: forged log lines, who may read /metrics, `model`'s size.

Slow clients against a real gunicorn are tests/test_slow_clients.py; their two settings are here.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest

from bot.chat.sse import iter_data
from config.settings import ConfigError, load_settings

# The service's log format (bot/__init__.py), as an operator's terminal or log shipper reads it.
FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
FORGED = "2026-11-29 08:00:00,000 INFO bot.request [forged] door=api POST /api/v1/chat/completions status=200"
# Every way a log reader may be told "new line" (LF, CRLF, CR, NEL, the Unicode line and paragraph
# separators: Python's splitlines() and several log viewers break on them), and a terminal's
# "erase the line, back to its start"; each with how the line shows it.
BREAKS = [
    ("%0a", "\\n"),
    ("%0d%0a", "\\r\\n"),
    ("%0d", "\\r"),
    ("%c2%85", "\\x85"),
    ("%e2%80%a8", "\\u2028"),
    ("%e2%80%a9", "\\u2029"),
    ("%1b[2K%0d", "\\x1b[2K\\r"),
]


def log_text(caplog) -> str:
    return "\n".join(FORMAT.format(record) for record in caplog.records)


def forged_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("2026-11-29 08:00:00,000")]


@pytest.mark.parametrize(("newline", "shown"), BREAKS)
def test_a_path_cannot_write_a_forged_log_line(client, caplog, newline, shown):
    with caplog.at_level(logging.INFO, logger="bot.request"):
        response = client.get("/x" + newline + quote(FORGED))
    assert response.status_code == 404
    text = log_text(caplog)
    assert forged_lines(text) == []
    [line] = text.splitlines()  # the request is one line, path and all
    assert f"GET /x{shown}2026-11-29 08:00:00,000 INFO" in line  # still readable


def test_a_backslash_in_a_path_is_escaped_so_an_escape_cannot_be_faked(client, caplog):
    with caplog.at_level(logging.INFO, logger="bot.request"):
        client.get("/x" + quote("\\n") + "y")  # a real backslash and n, not a newline
    assert "GET /x\\\\ny status=404" in log_text(caplog)


def test_a_method_cannot_write_a_forged_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="bot.request"):
        client.open("/healthz", method="GET\n" + FORGED)
    assert forged_lines(log_text(caplog)) == [] and len(log_text(caplog).splitlines()) == 1


def test_content_logged_for_debugging_cannot_forge_a_line(config, make_app, issue_key, caplog, upstream):
    client = make_app({**config, "BOT_LOG_CONTENT": "1"}).test_client()
    question = "hi\n" + FORGED + "\r\n" + FORGED + "\u2028" + FORGED
    with caplog.at_level(logging.INFO, logger="bot.request"):
        response = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": question}]},
            headers={"Authorization": f"Bearer {issue_key()}"},
        )
    assert response.status_code == 200
    text = log_text(caplog)
    assert forged_lines(text) == [] and len(text.splitlines()) == 1 and "content='hi\\n2026-11-29" in text


@pytest.mark.parametrize(("newline", "shown"), [("%0d", "\\r"), ("%e2%80%a8", "\\u2028")])
def test_a_path_logged_by_any_module_stays_on_its_line(config, make_app, caplog, newline, shown):
    """The Redis-outage line (bot/errors_http.py) names the path too: the log context escapes it.
    (/v1/models/<name> is the route that takes such a path: its converter refuses only LF.)"""
    client = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"}).test_client()
    key = "sk-" + "a" * 48  # well-formed, so the door asks Redis about it
    with caplog.at_level(logging.INFO):
        response = client.get(f"/v1/models/x{newline}" + quote(FORGED), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    text = log_text(caplog)
    assert f"redis unavailable on GET /v1/models/x{shown}2026-11-29" in text and forged_lines(text) == []


@pytest.mark.parametrize(
    ("remote", "headers", "allowed"),
    [
        ("127.0.0.1", {}, True),
        ("::1", {}, True),
        ("::ffff:127.0.0.1", {}, True),  # loopback on a dual-stack socket
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}, False),  # a proxy that sets only X-Real-IP
        ("127.0.0.1", {"X-Forwarded-Host": "bot.example.com"}, False),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, False),
        ("127.0.0.1", {"Via": "1.1 nginx"}, False),
        ("127.0.0.1", {"True-Client-IP": "203.0.113.9"}, False),
        ("10.1.2.3", {}, False),  # a load balancer that rewrites every client to a private address
        ("192.168.1.20", {}, False),
        ("fd00::5", {}, False),
        ("not-an-address", {}, False),
    ],
)
def test_without_a_token_metrics_answer_only_this_host_directly(client, remote, headers, allowed):
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == (200 if allowed else 403)
    assert (b"xiaoyi_requests_total" in response.data) is allowed


def test_with_a_token_metrics_want_exactly_it(config, make_app):
    client = make_app({**config, "BOT_METRICS_TOKEN": "scrape-token-1"}).test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    for header in ("", "Bearer scrape-token-", "Bearer scrape-token-12", "Basic scrape-token-1", "scrape-token-1"):
        assert client.get("/metrics", headers={"Authorization": header}, environ_base=local).status_code == 403
    assert client.get("/metrics?token=scrape-token-1", environ_base=local).status_code == 403
    proxied = {"Authorization": "bearer scrape-token-1", "X-Forwarded-For": "203.0.113.9"}
    assert client.get("/metrics", headers=proxied, environ_base={"REMOTE_ADDR": "8.8.8.8"}).status_code == 200


def openai_post(client, key, body):
    return client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("stream", [False, True])
def test_a_huge_model_name_is_refused_not_echoed_in_every_chunk(client, issue_key, upstream, stream):
    body = {"model": "m" * 250_000, "messages": [{"role": "user", "content": "一二三四五六七八九十"}], "stream": stream}
    response = openai_post(client, issue_key(), body)
    assert response.status_code == 400 and len(response.data) < 1000
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and set(error) == {"message", "type", "param", "code"}
    assert "model has 250000 characters, at most 256" in error["message"]
    assert upstream.calls == 0


def test_a_model_name_of_256_characters_is_echoed(client, issue_key, upstream):
    model = "模" * 256
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = openai_post(client, issue_key(), body)
    chunks = [json.loads(d) for d in iter_data([response.data]) if d != "[DONE]"]
    assert response.status_code == 200 and chunks and all(c["model"] == model for c in chunks)


@pytest.mark.parametrize(
    ("model", "needle"), [(0, "got int"), (False, "got bool"), ([], "got list"), ({"id": "m"}, "got dict")]
)
def test_a_model_that_is_not_a_string_is_refused_even_when_falsy(client, issue_key, upstream, model, needle):
    response = openai_post(client, issue_key(), {"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert f"model must be a string, {needle}" in response.get_json()["error"]["message"]
    assert upstream.calls == 0


def test_the_edge_settings_have_their_documented_defaults_and_refuse_nonsense():
    good = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BOT_SECRET": "s" * 32}
    settings = load_settings(good)
    assert (settings.body_timeout, settings.connections_per_address) == (5.0, 200)
    assert load_settings({**good, "BOT_CONNECTIONS_PER_ADDRESS": "0"}).connections_per_address == 0  # off
    for name, value in [
        ("BOT_BODY_TIMEOUT", "0"),
        ("BOT_BODY_TIMEOUT", "inf"),
        ("BOT_BODY_TIMEOUT", "soon"),
        ("BOT_CONNECTIONS_PER_ADDRESS", "-1"),
        ("BOT_CONNECTIONS_PER_ADDRESS", "1.5"),
    ]:
        with pytest.raises(ConfigError) as error:
            load_settings({**good, name: value})
        assert error.value.name == name
