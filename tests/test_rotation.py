"""Rotating BOT_SECRET and WECHAT_AES_KEY without losing a key or a message in flight."""

from __future__ import annotations

import pytest

from bot.services import services
from bot.store import keyspace
from bot.store.audit import AuditLog
from bot.store.vault import Vault
from bot.wechat import simulate
from tests.conftest import ACCOUNT
from tests.helpers import ask
from tests.monitor import Monitor

SECRET_A = "secret-A-" + "a" * 40
SECRET_B = "secret-B-" + "b" * 40
# Another valid EncodingAESKey: what the console shows after 重置.
NEW_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def record_of(redis, secret, key):
    return redis.hgetall(keyspace.api_key(Vault(secret).fingerprint(key)))


def test_a_key_survives_a_secret_rotation_moved_on_first_use_then_by_reseal(config, make_app, redis):
    app_a = make_app({**config, "BOT_SECRET": SECRET_A})
    with app_a.app_context():
        used, _ = services().keys.issue("oUsedDuringRotation")
        idle, _ = services().keys.issue("oIdleDuringRotation")
    assert ask(app_a.test_client(), used).status_code == 200
    balance_a = int(record_of(redis, SECRET_A, used)["balance"])

    app_b = make_app({**config, "BOT_SECRET": SECRET_B})  # rotated without the previous secret: keys lost
    assert ask(app_b.test_client(), used).status_code == 401

    rotating = make_app({**config, "BOT_SECRET": SECRET_B, "BOT_SECRET_PREVIOUS": SECRET_A})
    response = ask(rotating.test_client(), used)
    assert response.status_code == 200
    assert record_of(redis, SECRET_A, used) == {}  # re-indexed: gone from the old fingerprint…
    moved = record_of(redis, SECRET_B, used)
    assert int(moved["balance"]) == balance_a - response.get_json()["usage"]["total_tokens"]  # …balance kept
    account = redis.hgetall(keyspace.account("oUsedDuringRotation"))
    assert account["key_fp"] == Vault(SECRET_B).fingerprint(used)
    assert Vault(SECRET_B).open_current(account["key_sealed"]) == used  # re-sealed under the new secret
    assert record_of(redis, SECRET_A, idle) != {}  # an unused key waits for reseal

    result = rotating.test_cli_runner().invoke(args=["keys", "reseal"])
    assert result.exit_code == 0, result.output
    assert "moved 1, already current 1, unreadable 0" in result.output
    with rotating.app_context():
        audited = AuditLog(services().redis).recent(1, "+")[0]
    assert (audited.via, audited.action) == ("cli", "keys reseal")
    assert audited.detail == "moved 1, already current 1, unreadable 0"

    after = make_app({**config, "BOT_SECRET": SECRET_B})  # the previous secret retired
    client = after.test_client()
    assert ask(client, used).status_code == 200 and ask(client, idle).status_code == 200
    with after.app_context():
        assert services().keys.issue("oIdleDuringRotation") == (idle, False)  # the follower sees the same key


def test_reseal_reports_keys_sealed_under_neither_secret(config, make_app, redis):
    app_a = make_app({**config, "BOT_SECRET": SECRET_A})
    with app_a.app_context():
        services().keys.issue("oLostSecret")
    stranger = make_app({**config, "BOT_SECRET": SECRET_B, "BOT_SECRET_PREVIOUS": "another-" + "c" * 40})
    result = stranger.test_cli_runner().invoke(args=["keys", "reseal"])
    assert result.exit_code != 0
    assert "unreadable 1" in result.output and "keys rotate" in result.output


def test_a_short_previous_secret_is_refused_at_start(config, make_app):
    from config.settings import ConfigError

    with pytest.raises(ConfigError, match="BOT_SECRET_PREVIOUS"):
        make_app({**config, "BOT_SECRET_PREVIOUS": "short"})


def deliver(client, account, text, msg_id):
    xml = simulate.message_xml(account, "oRotatingAes", "text", Content=text, MsgId=msg_id)
    params, body = simulate.sign(account, xml, "safe")
    return client.post("/wechat", query_string=params, data=body)


def test_messages_sealed_with_the_previous_aes_key_are_read_and_answered_in_it(config, make_app):
    app = make_app({**config, "WECHAT_AES_KEY": NEW_AES_KEY, "WECHAT_AES_KEY_PREVIOUS": ACCOUNT.aes_key})
    client = app.test_client()
    old = ACCOUNT
    new = simulate.Account(token=ACCOUNT.token, aes_key=NEW_AES_KEY, appid=ACCOUNT.appid)
    for account, msg_id in ((old, 9001), (new, 9002)):
        response = deliver(client, account, "你好", msg_id)
        assert response.status_code == 200
        reply = simulate.open_reply(account, response.data, encrypted=True)
        assert reply["Content"] == "回答：你好"


def test_without_the_previous_aes_key_an_old_message_is_refused(config, make_app):
    client = make_app({**config, "WECHAT_AES_KEY": NEW_AES_KEY}).test_client()
    assert deliver(client, ACCOUNT, "你好", 9003).status_code == 400


def test_while_rotating_a_current_key_costs_no_extra_redis_round_trip(config, make_app, redis_server):
    rotating = make_app({**config, "BOT_SECRET": SECRET_B, "BOT_SECRET_PREVIOUS": SECRET_A})
    with rotating.app_context():
        key, _ = services().keys.issue("oCurrentDuringRotation")
    client = rotating.test_client()
    assert ask(client, key).status_code == 200  # scripts loaded
    with Monitor(redis_server.url) as monitor:
        assert ask(client, key).status_code == 200
    assert monitor.commands == ["EVALSHA", "EVALSHA"]  # reserve and settle, as without a rotation


def test_the_openai_door_moves_a_key_from_the_previous_secret_too(config, make_app, redis):
    with make_app({**config, "BOT_SECRET": SECRET_A}).app_context():
        key, _ = services().keys.issue("oOpenAIDuringRotation")
    client = make_app({**config, "BOT_SECRET": SECRET_B, "BOT_SECRET_PREVIOUS": SECRET_A}).test_client()
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert record_of(redis, SECRET_A, key) == {} and record_of(redis, SECRET_B, key) != {}
    body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
