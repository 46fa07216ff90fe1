"""API keys are credentials: never stored in plain text, never logged, and cheap to check per request."""

from __future__ import annotations

import logging

import pytest
import redis as redis_py

from bot.services import services
from tests.monitor import Monitor


def key_lifecycle(app, client, upstream):
    """Everything a key goes through: issue, both doors, streams, failures, rotate, CLI, revoke."""
    with app.app_context():
        store = services().keys
        first = store.issue("oSecretive")[0]
        assert store.issue("oSecretive")[0] == first  # asked again: opened from its sealed copy
    spec = {"api_secret_key": first, "messages": [{"role": "user", "content": "你好"}], "user": "end-user"}
    client.post("/api/v1/chat/completions", json=spec)
    client.post("/api/v1/chat/completions", json={**spec, "stream": True}).get_data()
    client.post("/v1/chat/completions", json=spec)  # the spec's curl example, posted to /v1
    openai_body = {"model": "m", "messages": spec["messages"]}
    headers = {"Authorization": f"Bearer {first}"}
    client.post("/v1/chat/completions", json={**openai_body, "stream": True}, headers=headers).get_data()
    client.post("/v1/chat/completions", json={"model": "m", "messages": []}, headers=headers)
    upstream.reset(status=500)
    client.post("/v1/chat/completions", json=openai_body, headers=headers)
    upstream.reset()
    app.test_cli_runner().invoke(args=["keys", "show", first])
    app.test_cli_runner().invoke(args=["keys", "grant", first, "100"])
    with app.app_context():
        second = services().keys.rotate("oSecretive")
        services().blocks.block_openid("oSecretive")
        services().blocks.unblock_openid("oSecretive")
        third = services().keys.issue("oOther")[0]
        services().keys.revoke("oOther")
    client.post("/v1/chat/completions", json=openai_body, headers={"Authorization": f"Bearer {third}"})
    return [first, second, third]


def readable_values(redis, name):
    """Every string Redis holds under `name`, read by type: fields, values, members, scores."""
    kind = redis.type(name)
    if kind == "string":
        return [redis.get(name)]
    if kind == "hash":
        return [text for pair in redis.hgetall(name).items() for text in pair]
    if kind == "zset":
        return [str(text) for pair in redis.zrange(name, 0, -1, withscores=True) for text in pair]
    if kind == "set":
        return list(redis.smembers(name))
    if kind == "list":
        return redis.lrange(name, 0, -1)
    if kind == "stream":  # the audit log (bot/store/audit.py)
        return [text for _, fields in redis.xrange(name) for pair in fields.items() for text in pair]
    raise AssertionError(f"{name} has a type this test does not read: {kind}")


def test_no_issued_key_is_stored_in_plain_text_anywhere_in_redis(app, client, redis, redis_server, upstream):
    keys = key_lifecycle(app, client, upstream)
    names = list(redis.scan_iter(count=1000))
    assert any(":account" in n for n in names) and any(n.endswith(":rate") for n in names)
    dumper = redis_py.Redis.from_url(redis_server.url)  # bytes, for DUMP
    for name in names:
        dumped = dumper.dump(name)
        texts = [name, *readable_values(redis, name)]
        for key in keys:
            body = key[3:]  # without the "sk-", in case only the random part were stored
            assert body.encode() not in dumped, name
            assert not any(body in text for text in texts), name
    dumper.close()


def test_no_issued_key_reaches_any_log_line_at_any_level(app, client, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    keys = key_lifecycle(app, client, upstream)
    assert any("key#" in r.getMessage() for r in caplog.records)  # keys are named by fingerprint
    assert any(r.name == "urllib3.connectionpool" for r in caplog.records)  # debug lines were captured
    for record in caplog.records:
        line = record.getMessage() + str(record.exc_text or "")
        for key in keys:
            assert key[3:] not in line, f"{record.name}: {line}"


@pytest.mark.parametrize(
    ("path", "extra", "expected"),
    [
        ("/api/v1/chat/completions", {}, ["EVALSHA", "EVALSHA"]),
        ("/api/v1/chat/completions", {"user": "u1"}, ["EXISTS", "EVALSHA", "EVALSHA"]),
        ("/v1/chat/completions", {"stream": True}, ["EVALSHA", "EVALSHA"]),
    ],
)
def test_an_answered_request_costs_two_redis_round_trips_three_with_a_user(
    app, client, redis_server, issue_key, path, extra, expected
):
    key = issue_key()
    body = {"model": "m", "api_secret_key": key, "messages": [{"role": "user", "content": "hi"}], **extra}
    headers = {"Authorization": f"Bearer {key}"} if path.startswith("/v1") else {}
    assert client.post(path, json=body, headers=headers).status_code == 200  # scripts are loaded now
    with Monitor(redis_server.url) as monitor:
        assert client.post(path, json=body, headers=headers).get_data()
    assert monitor.commands == expected  # reserve (blocks, limits, balance) and settle; the user's block
