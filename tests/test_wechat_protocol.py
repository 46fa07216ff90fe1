"""The webhook's door: signatures, the three modes, Tencent's sample vector, and junk of every kind."""

from __future__ import annotations

import base64
import time

import pytest
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bot.wechat import simulate
from bot.wechat.protocol import signature_of
from tests.conftest import ACCOUNT

OPENID = "oFollower0000000000000000002"


def test_tencent_sample_vector():
    class FixedRandom(PrpCrypto):
        def get_random_string(self):
            return "aaaabbbbccccdddd"

    crypto = WeChatCrypto(ACCOUNT.token, ACCOUNT.aes_key, ACCOUNT.appid)
    expected = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    assert FixedRandom(crypto.key).encrypt("我是中文abcd123", ACCOUNT.appid).decode() == expected
    assert PrpCrypto(crypto.key).decrypt(expected, ACCOUNT.appid) == "我是中文abcd123"


def verification(token=ACCOUNT.token, **override):
    params = {"timestamp": "1700000000", "nonce": "12345", "echostr": "echo-7781"}
    params["signature"] = signature_of(token, params["timestamp"], params["nonce"])
    return {**params, **override}


def test_url_verification_echoes_echostr(client):
    response = client.get("/wechat", query_string=verification())
    assert response.status_code == 200
    assert response.data == b"echo-7781" and response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "params",
    [verification(token="wrong"), verification(signature=""), verification(nonce="other"), {"echostr": "x"}],
)
def test_url_verification_refuses_bad_signatures(client, params):
    assert client.get("/wechat", query_string=params).status_code == 403


def delivery(mode="safe", xml=None):
    xml = xml or simulate.message_xml(ACCOUNT, OPENID, "text", Content="hi", MsgId=42)
    return simulate.sign(ACCOUNT, xml, mode)


def post(client, params, body):
    return client.post("/wechat", query_string=params, data=body)


def test_a_bad_signature_is_403_before_the_body_is_read(client, upstream):
    params, body = delivery()
    params["signature"] = "0" * 40
    assert post(client, params, body).status_code == 403
    assert upstream.calls == 0


def test_a_bad_msg_signature_is_403(client, upstream):
    params, body = delivery()
    params["msg_signature"] = "0" * 40
    assert post(client, params, body).status_code == 403
    assert upstream.calls == 0


def encrypted_body(ciphertext: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>".encode()


def signed_for(ciphertext: str) -> dict[str, str]:
    now = str(int(time.time()))
    params = {"timestamp": now, "nonce": "99"}
    params["signature"] = signature_of(ACCOUNT.token, now, "99")
    params["msg_signature"] = signature_of(ACCOUNT.token, now, "99", ciphertext)
    params["encrypt_type"] = "aes"
    return params


def other_appid_ciphertext() -> str:
    other = WeChatCrypto(ACCOUNT.token, ACCOUNT.aes_key, "wxOtherAppId00000")
    xml = simulate.message_xml(ACCOUNT, OPENID, "text", Content="hi", MsgId=1)
    return PrpCrypto(other.key).encrypt(xml, "wxOtherAppId00000").decode()


def bad_padding_ciphertext() -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(ACCOUNT.aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(b"\x00" * 31 + b"\xff") + encryptor.finalize()).decode()


@pytest.mark.parametrize(
    "ciphertext",
    [
        "not base64 at all!!",
        base64.b64encode(b"x" * 17).decode(),  # not a whole number of AES blocks
        base64.b64encode(b"").decode(),
        other_appid_ciphertext(),
        bad_padding_ciphertext(),
        "A" * 10,
    ],
    ids=["base64", "block-length", "empty", "other-appid", "bad-padding", "truncated"],
)
def test_undecryptable_ciphertexts_are_400(client, upstream, ciphertext):
    response = post(client, signed_for(ciphertext), encrypted_body(ciphertext))
    assert response.status_code == 400
    assert b"Traceback" not in response.data
    assert upstream.calls == 0


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&e;</Content><MsgId>1</MsgId></xml>"""


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>",
        b"not xml",
        b"",
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"<xml><ToUserName><![CDATA[gh_x]]></ToUserName></xml>",  # no Encrypt
        b"\xff\xfe<xml/>",
    ],
    ids=["truncated", "not-xml", "empty", "billion-laughs", "external-entity", "no-encrypt", "not-utf8"],
)
def test_junk_envelopes_are_400_in_safe_mode(client, upstream, body):
    params, _ = delivery()
    assert post(client, params, body).status_code == 400
    assert upstream.calls == 0


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"<xml><MsgType>text</MsgType></xml>",  # no FromUserName
        b"<xml><ToUserName>gh_x</ToUserName><FromUserName>o]]>x</FromUserName><MsgType>text</MsgType>"
        b"<CreateTime>1</CreateTime></xml>",
        b"<xml><ToUserName>gh_x</ToUserName><FromUserName>oX</FromUserName><MsgType>text</MsgType>"
        b"<CreateTime>yesterday</CreateTime></xml>",
        b"<xml><ToUserName>gh x!</ToUserName><FromUserName>oX</FromUserName><MsgType>text</MsgType>"
        b"<CreateTime>1</CreateTime></xml>",
        b"<notxml/>",
    ],
    ids=["billion-laughs", "external-entity", "no-from", "bad-openid", "bad-time", "bad-account", "wrong-root"],
)
def test_junk_messages_are_400_in_plain_mode(client_in_mode, upstream, body):
    client = client_in_mode("plain")
    params, _ = delivery("plain")
    assert post(client, params, body).status_code == 400
    assert upstream.calls == 0


def test_an_oversized_body_is_413(client_in_mode, upstream):
    client = client_in_mode("plain")
    params, _ = delivery("plain")
    assert post(client, params, b"<xml>" + b"x" * 70_000 + b"</xml>").status_code == 413
    assert upstream.calls == 0


def test_encrypted_delivery_without_an_aes_key_is_400(config, redis, make_app):
    app = make_app({k: v for k, v in config.items() if k != "WECHAT_AES_KEY"})
    params, body = delivery("safe")
    assert post(app.test_client(), params, body).status_code == 400


def test_without_wechat_token_the_webhook_is_unavailable(config, redis, make_app):
    app = make_app({k: v for k, v in config.items() if k != "WECHAT_TOKEN"})
    assert app.test_client().get("/wechat", query_string=verification()).status_code == 503


def test_a_replayed_delivery_gets_the_same_reply_and_no_second_model_call(client, upstream):
    params, body = delivery()
    first = post(client, params, body)
    again = post(client, params, body)  # the same captured request, sent again
    assert first.status_code == again.status_code == 200
    opened = [simulate.open_reply(ACCOUNT, r.data, encrypted=True)["Content"] for r in (first, again)]
    assert opened == ["回答：hi", "回答：hi"]
    assert upstream.calls == 1


@pytest.mark.parametrize("age", [601, -601, 86400 * 2])
def test_a_delivery_signed_too_long_ago_is_refused_as_a_replay(client, upstream, age):
    xml = simulate.message_xml(ACCOUNT, OPENID, "text", Content="hi", MsgId=77)
    params, body = simulate.sign(ACCOUNT, xml, "safe", timestamp=str(int(time.time()) - age))
    assert post(client, params, body).status_code == 403
    assert upstream.calls == 0


def test_a_delivery_signed_minutes_ago_is_accepted(client, upstream):
    xml = simulate.message_xml(ACCOUNT, OPENID, "text", Content="hi", MsgId=78)
    params, body = simulate.sign(ACCOUNT, xml, "safe", timestamp=str(int(time.time()) - 300))
    assert post(client, params, body).status_code == 200
