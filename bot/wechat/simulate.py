"""Messages built exactly as WeChat's servers build them: signed, and encrypted in safe or
compatible mode. The `wechat say` command and the tests use it to talk to /wechat."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.wechat.protocol import signature_of

MODES = ("plain", "compatible", "safe")


@dataclass(frozen=True)
class Account:
    token: str
    aes_key: str
    appid: str
    account_id: str = "gh_xiaoyibot0001"

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.appid)


def message_xml(
    account: Account, openid: str, msg_type: str = "text", created: int | None = None, **fields: object
) -> str:
    """A follower's message or event as WeChat's XML (fields as WeChat names them: Content, MsgId, …)."""
    parts = {
        "ToUserName": account.account_id,
        "FromUserName": openid,
        "CreateTime": created or int(time.time()),
        "MsgType": msg_type,
        **fields,
    }
    body = "".join(
        f"<{name}>{value}</{name}>" if isinstance(value, int) else f"<{name}><![CDATA[{value}]]></{name}>"
        for name, value in parts.items()
    )
    return f"<xml>{body}</xml>"


def sign(account: Account, xml: str, mode: str = "safe", timestamp: str | None = None) -> tuple[dict[str, str], bytes]:
    """The query string and body of one delivery of `xml` in `mode`."""
    timestamp = timestamp or str(int(time.time()))
    nonce = str(secrets.randbelow(10**10))
    params = {"signature": signature_of(account.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    params["openid"] = xmltodict.parse(xml)["xml"]["FromUserName"]
    if mode == "plain":
        return params, xml.encode()
    envelope = xmltodict.parse(account.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
    params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
    encrypted = f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt>"
    if mode == "safe":
        return (
            params,
            f"<xml><ToUserName><![CDATA[{escape(account.account_id)}]]></ToUserName>{encrypted}</xml>".encode(),
        )
    return params, xml.replace("</xml>", encrypted + "</xml>").encode()


def open_reply(account: Account, body: bytes | str, encrypted: bool) -> dict[str, str] | None:
    """The fields of the service's reply as the follower's WeChat would read them (None: no reply)."""
    text = body.decode() if isinstance(body, bytes) else body
    if text in ("", "success"):
        return None
    if encrypted:
        envelope = xmltodict.parse(text)["xml"]
        text = account.crypto.decrypt_message(text, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    return xmltodict.parse(text)["xml"]
