"""WeChat's message protocol: signatures, the three encryption modes, and safe XML replies.

wechatpy does the AES and the XML; this module adds what it leaves out: constant-time signature
checks, one exception for every way a body can be junk, and reply text that cannot break its CDATA.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply

from bot.ids import valid_openid

# WeChat shows at most 2048 bytes of a passive text reply; one byte of margin.
PASSIVE_LIMIT_BYTES = 2047
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class WebhookError(Exception):
    """A delivery refused at the door: `status` for WeChat, `reason` for the log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    message: BaseMessage
    encrypted: bool
    nonce: str
    timestamp: str
    crypto: WeChatCrypto | None = None  # the key it came sealed with: the reply is sealed the same way

    @property
    def pair(self) -> str:
        """The signed (timestamp, nonce) this delivery came with."""
        return f"{self.timestamp}:{self.nonce}"

    @property
    def identity(self) -> str:
        """Every field of the message, not only its sender and MsgId: a claim is no guard against other
        words under those (a refused message leaves none), so a signed query may carry only these again."""
        fields = json.dumps(self.message._data, sort_keys=True, ensure_ascii=False)  # wechatpy's parsed XML
        return hashlib.sha256(fields.encode()).hexdigest()


def signature_of(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def fit_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 is at most `limit` bytes (never half a character)."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def xml_text(text: str) -> str:
    """`text` without the characters XML cannot carry (NUL, most C0 controls): no reply could show them."""
    return _XML_ILLEGAL.sub("", text)


def cdata_safe(text: str) -> str:
    """Text that stays inside its CDATA section: no XML-illegal characters, no raw `]]>`."""
    return xml_text(text).replace("]]>", "]]]]><![CDATA[>")


class WeChatProtocol:
    def __init__(
        self, token: str, aes_key: str, appid: str, previous_aes_key: str = "", max_age: float = 600,
        mode: str = "",
    ):  # fmt: skip
        self.token = token
        # safe: only encrypted deliveries, whose msg_signature covers the body. compatible and plain
        # also take plaintext ones, whose signature covers token, timestamp and nonce only: a captured
        # query would carry any body, so the door must check each (timestamp, nonce) against the
        # message it first came with (guards_replays).
        self.mode = mode or ("safe" if aes_key else "plain")
        # A signed delivery can be captured and sent again. Within `max_age` its MsgId's claim (kept
        # far longer) answers a replay with the same reply and no model call; older ones are refused.
        self.max_age = max_age
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        # After the console's EncodingAESKey is reset, deliveries already sent (and their retries)
        # still come sealed with the old key: WECHAT_AES_KEY_PREVIOUS opens them.
        self.previous = WeChatCrypto(token, previous_aes_key, appid) if aes_key and previous_aes_key else None

    def check_signature(self, args: Mapping[str, str]) -> None:
        """The query's `signature` over token/timestamp/nonce, compared in constant time."""
        expected = signature_of(self.token, args.get("timestamp", ""), args.get("nonce", ""))
        if not _same(expected, args.get("signature", "")):
            raise WebhookError(403, "bad signature")

    @property
    def guards_replays(self) -> bool:
        """Whether plaintext deliveries are taken, so the door must tie each signed query to one message."""
        return self.mode != "safe"

    def read(self, args: Mapping[str, str], body: bytes) -> Delivery:
        """Parse one delivery in plaintext, compatible or safe mode, whose query has passed
        check_signature (the door checks it before reading the body): freshness, then the
        message signature and decryption."""
        self._check_fresh(args.get("timestamp", ""))
        encrypted = args.get("encrypt_type", "raw").lower() == "aes"
        if not encrypted and self.mode == "safe":
            raise WebhookError(403, "plaintext delivery refused: WECHAT_MESSAGE_MODE is safe")
        xml, crypto = self._decrypt(args, body) if encrypted else (body, None)
        message = _parse(xml)
        return Delivery(message, encrypted, args.get("nonce", ""), args.get("timestamp", ""), crypto)

    def _check_fresh(self, timestamp: str) -> None:
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise WebhookError(400, f"timestamp is not a number: {timestamp[:20]!r}") from None
        if age > self.max_age:
            raise WebhookError(403, f"delivery signed {int(age)} s from now: refused as a replay")

    def _decrypt(self, args: Mapping[str, str], body: bytes) -> tuple[bytes | str, WeChatCrypto]:
        if self.crypto is None:
            raise WebhookError(400, "encrypted delivery but WECHAT_AES_KEY is not configured")
        try:
            envelope = xmltodict.parse(body)["xml"]
            encrypt = envelope["Encrypt"]
        except Exception as exc:  # noqa: BLE001 - expat, entities, shape: all are junk at the door
            raise WebhookError(400, f"unreadable envelope: {type(exc).__name__}") from None
        if not isinstance(encrypt, str):
            raise WebhookError(400, "Encrypt is not text")
        expected = signature_of(self.token, args.get("timestamp", ""), args.get("nonce", ""), encrypt)
        if not _same(expected, args.get("msg_signature", "")):
            raise WebhookError(403, "bad msg_signature")
        failure = ""
        for crypto in (self.crypto, self.previous):
            if crypto is None:
                continue
            try:
                return crypto.decrypt_message({"Encrypt": encrypt}, expected, args["timestamp"], args["nonce"]), crypto
            except Exception as exc:  # noqa: BLE001 - base64, block length, padding, AppId, struct, UTF-8
                failure = failure or type(exc).__name__
        raise WebhookError(400, f"undecryptable: {failure}")

    def render(self, delivery: Delivery, text: str) -> str:
        """A text reply in the mode the message came in, cut to WeChat's passive limit."""
        message = delivery.message
        reply = TextReply(
            source=cdata_safe(message.target),
            target=cdata_safe(message.source),
            content=cdata_safe(fit_bytes(text, PASSIVE_LIMIT_BYTES)),
            time=int(time.time()),
        ).render()
        crypto = delivery.crypto or self.crypto
        if not delivery.encrypted or crypto is None:
            return reply
        return crypto.encrypt_message(reply, delivery.nonce or "nonce", str(int(time.time())))


def _parse(xml: bytes | str) -> BaseMessage:
    try:
        message = parse_message(xml)
        source, target, msg_type = message.source, message.target, message.type
        int(message.time)
        msg_id = getattr(message, "id", 0)  # wechatpy converts MsgId when it is first read
    except Exception as exc:  # noqa: BLE001 - wechatpy lets every parser error escape
        raise WebhookError(400, f"unreadable message: {type(exc).__name__}") from None
    if not isinstance(source, str) or not valid_openid(source):
        raise WebhookError(400, "FromUserName is not an openid")
    if not isinstance(target, str) or not _ACCOUNT_ID.fullmatch(target):
        raise WebhookError(400, "ToUserName is not an account id")
    if not isinstance(msg_type, str):
        raise WebhookError(400, "MsgType missing")
    if not 0 <= (msg_id or 0) < 2**64:  # WeChat's MsgId is a 64-bit number; it names a Redis key
        raise WebhookError(400, "MsgId is out of range")
    return message
