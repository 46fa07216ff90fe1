"""WECHAT_MESSAGE_MODE: which deliveries /wechat takes, and what a captured signed query can do.

In plaintext mode WeChat's `signature` covers token, timestamp and nonce only, not the body; these
tests are the attacks a captured query string (from any access log) allows, and their outcomes.
"""

from __future__ import annotations

import pytest

from bot.store import keyspace
from bot.wechat import simulate
from config.settings import ConfigError, load_settings
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post

ALICE = "oAlice00000000000000000000001"
MALLORY = "oMallory000000000000000000001"


def genuine(mode: str, openid: str = ALICE, text: str = "你好", msg_id: int = 1001) -> tuple[dict, bytes]:
    """A delivery exactly as WeChat sends it: its query string (as an access log keeps it) and body."""
    return simulate.sign(ACCOUNT, simulate.message_xml(ACCOUNT, openid, "text", Content=text, MsgId=msg_id), mode)


def forged(openid: str, text: str, msg_id: int = 2002) -> bytes:
    """A plaintext body an attacker writes; only a captured query can make it look signed."""
    return simulate.message_xml(ACCOUNT, openid, "text", Content=text, MsgId=msg_id).encode()


def post(client, params, body):
    response = client.post("/wechat", query_string=params, data=body)
    return response.status_code, response.data.decode()


def key_of(client, openid: str) -> str | None:
    return client.application.extensions["bot"].redis.hget(keyspace.account(openid), "key_fp")


def test_safe_is_the_default_with_an_aes_key_and_plain_without(config):
    assert load_settings(config).wechat_message_mode == "safe"
    without = {k: v for k, v in config.items() if k != "WECHAT_AES_KEY"}
    assert load_settings(without).wechat_message_mode == "plain"


@pytest.mark.parametrize(
    ("value", "named"), [("safe", "WECHAT_AES_KEY"), ("compatible", "WECHAT_AES_KEY"), ("loose", "loose")]
)
def test_a_mode_the_keys_cannot_serve_stops_start_up(config, value, named):
    settings = {k: v for k, v in config.items() if k != "WECHAT_AES_KEY"} | {"WECHAT_MESSAGE_MODE": value}
    with pytest.raises(ConfigError) as error:
        load_settings(settings)
    assert error.value.name == "WECHAT_MESSAGE_MODE" and named in str(error.value)


def test_safe_mode_refuses_a_captured_query_with_a_plaintext_body(client, redis, upstream):
    """The probe: an admin's /grant and Alice's key request, forged under a genuine delivery's query."""
    params, body = genuine("safe")
    assert post(client, params, body)[0] == 200  # the genuine delivery is answered
    Follower(flask_post(client), ACCOUNT, MALLORY).say("key")
    balance = redis.hget(keyspace.api_key(key_of(client, MALLORY)), "balance")
    plain = {k: v for k, v in params.items() if k not in ("encrypt_type", "msg_signature")}
    for query, refused in ((params, 400), (plain, 403)):  # with encrypt_type=aes the body has no Encrypt
        status, data = post(client, query, forged(ADMIN, f"/grant {MALLORY} 1000000000"))
        assert status == refused and "1000000000" not in data
        status, data = post(client, query, forged(ALICE, "key", 2003))
        assert status == refused and "sk-" not in data
    assert redis.hget(keyspace.api_key(key_of(client, MALLORY)), "balance") == balance
    assert key_of(client, ALICE) is None  # nothing was even issued for Alice
    assert upstream.calls == 1


@pytest.mark.parametrize("mode", ["plain", "compatible"])
def test_a_plaintext_account_refuses_a_signed_query_reused_with_another_message(client_in_mode, upstream, mode):
    client = client_in_mode(mode)
    params, body = genuine("plain", text="今天天气")
    assert post(client, params, body)[0] == 200
    another_sender = forged(ADMIN, f"/grant {MALLORY} 1000000000", msg_id=1001)
    another_message = forged(ALICE, "key", msg_id=1002)
    an_event = simulate.message_xml(ACCOUNT, ALICE, "event", Event="CLICK", EventKey="GET_KEY").encode()
    for body_of_attack in (another_sender, another_message, an_event):
        status, data = post(client, params, body_of_attack)
        assert status == 403 and "sk-" not in data
    assert upstream.calls == 1


@pytest.mark.parametrize("mode", ["plain", "compatible"])
def test_a_plaintext_accounts_retries_are_still_answered_once(client_in_mode, upstream, mode):
    client = client_in_mode(mode)
    params, body = genuine("plain", text="今天天气")
    first, again = post(client, params, body), post(client, params, body)  # WeChat's retry: same query, same body
    assert first == again and first[0] == 200 and "回答：今天天气" in first[1]
    assert upstream.calls == 1


def test_a_compatible_account_refuses_an_encrypted_deliverys_query_with_a_plaintext_body(client_in_mode, upstream):
    """The query of a genuine encrypted delivery cannot carry a forged plaintext body in compatible mode."""
    client = client_in_mode("compatible")
    params, body = genuine("compatible")
    assert post(client, params, body)[0] == 200
    plain = {k: v for k, v in params.items() if k not in ("encrypt_type", "msg_signature")}
    status, data = post(client, plain, forged(ALICE, "key", 2004))
    assert status == 403 and "sk-" not in data


def test_a_plaintext_account_answers_every_new_delivery(client_in_mode, upstream):
    follower = Follower(flask_post(client_in_mode("plain")), ACCOUNT, ALICE, mode="plain")
    assert [follower.say(q) for q in ("一", "二", "三")] == ["回答：一", "回答：二", "回答：三"]


@pytest.mark.parametrize("mode", ["plain", "compatible"])
def test_a_signed_query_cannot_carry_other_words_under_its_messages_own_sender_and_msgid(
    config, make_app, redis, upstream, mode
):
    """The genuine message was refused (its sender over their rate), so it left no claim to answer a
    replay with; a minute later the captured query comes back with the same sender and MsgId, and
    other words: an admin's /grant."""
    client = make_app({**config, "WECHAT_MESSAGE_MODE": mode, "BOT_RATE_OPENID_RPM": "1"}).test_client()
    Follower(flask_post(client), ACCOUNT, MALLORY, mode="plain").say("key")
    balance = redis.hget(keyspace.api_key(key_of(client, MALLORY)), "balance")
    Follower(flask_post(client), ACCOUNT, ADMIN, mode="plain").say("/stats")  # the admin's one message this minute
    params, body = genuine("plain", openid=ADMIN, text="/stats", msg_id=3003)
    status, data = post(client, params, body)
    assert status == 200 and "发得太快" in data  # refused: it stored nothing
    redis.delete(keyspace.follower_rate(ADMIN))  # a minute later
    status, data = post(client, params, forged(ADMIN, f"/grant {MALLORY} 1000000000", msg_id=3003))
    assert status == 403 and "1000000000" not in data
    assert redis.hget(keyspace.api_key(key_of(client, MALLORY)), "balance") == balance
    status, data = post(client, params, body)  # the genuine message itself may still come again
    assert status == 200 and "今日统计" in data
