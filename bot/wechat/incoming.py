"""What a follower's message is, decided once per delivery: the dispatcher answers each kind its own way."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from wechatpy.messages import BaseMessage

from bot.chat.dialogue import MAX_CHARS
from bot.wechat import texts


class Kind(Enum):
    ADMIN_COMMAND = "admin command"  # "/…" from an openid in BOT_ADMIN_OPENIDS
    KEY_REQUEST = "key request"  # one of BOT_KEY_KEYWORDS, in any case
    RESET = "reset"  # one of BOT_RESET_KEYWORDS: clear the follower's history, as the menu's RESET_CHAT
    HELP = "help"  # 帮助 / help: what the bot can do
    LOGIN_REQUEST = "login request"  # one of BOT_LOGIN_KEYWORDS: a one-time link to the web portal
    CONTINUE = "continue"  # 继续 / continue / more: the next part owed
    QUESTION = "question"  # text for the model
    TOO_LONG = "too long"  # a question over the dialogue's MAX_CHARS: answered with a note, never asked
    REFUSED = "refused"  # a question holding a banned word: answered with a fixed text, never asked
    EVENT = "event"  # subscribe, menu clicks, and events answered with nothing
    UNSUPPORTED = "unsupported"  # images, blank text, voice WeChat could not recognise …

    @property
    def chat(self) -> bool:
        """Whether its reply may come from a model call, so a delivery waits for it (and may defer it)."""
        return self in (Kind.CONTINUE, Kind.QUESTION, Kind.TOO_LONG)


@dataclass(frozen=True)
class Incoming:
    message: BaseMessage
    kind: Kind
    text: str  # what it says: the question as sent, a command stripped; "" for events and the unsupported
    msg_id: str  # see message_id

    @property
    def openid(self) -> str:
        return self.message.source

    @property
    def question(self) -> str:
        """The text the claim records for the model ("" unless it is a question to ask)."""
        return self.text if self.kind is Kind.QUESTION else ""


def classify(
    message: BaseMessage,
    admins: Collection[str],
    key_keywords: Collection[str],
    reset_words: Collection[str] = (),
    login_keywords: Collection[str] = (),
) -> Incoming:
    """The message's kind, in the order that decides overlaps: an admin's "/key" is a command."""
    msg_id = message_id(message)
    if message.type == "event":
        return Incoming(message, Kind.EVENT, "", msg_id)
    text = said(message)
    command = text.strip()
    if command.startswith("/") and message.source in admins:
        return Incoming(message, Kind.ADMIN_COMMAND, command, msg_id)
    if command.lower() in key_keywords:
        return Incoming(message, Kind.KEY_REQUEST, command, msg_id)
    if command.lower() in reset_words:
        return Incoming(message, Kind.RESET, command, msg_id)
    if command.lower() in texts.HELP_WORDS:
        return Incoming(message, Kind.HELP, command, msg_id)
    if command.lower() in login_keywords:
        return Incoming(message, Kind.LOGIN_REQUEST, command, msg_id)
    if not command:
        return Incoming(message, Kind.UNSUPPORTED, "", msg_id)
    if command.lower() in texts.CONTINUE_WORDS:
        return Incoming(message, Kind.CONTINUE, command, msg_id)
    if len(text) > MAX_CHARS:  # counted as it would be sent, spaces included
        return Incoming(message, Kind.TOO_LONG, text, msg_id)
    return Incoming(message, Kind.QUESTION, text, msg_id)


def message_id(message: BaseMessage) -> str:
    """WeChat's MsgId. Events have none: the sender (the key's owner) and CreateTime tell a retry,
    and the event and its key tell apart two clicks in the same second."""
    msg_id = getattr(message, "id", None)
    if msg_id:
        return str(msg_id)
    what = f"{getattr(message, 'event', '')}|{getattr(message, 'key', '')}"
    return f"event-{int(message.time)}-{hashlib.sha1(what.encode()).hexdigest()[:12]}"


def said(message: BaseMessage) -> str:
    """What a text message says, or what WeChat recognised in a voice message ("" for the rest)."""
    if message.type == "text":
        return message.content or ""
    if message.type == "voice":
        return getattr(message, "recognition", None) or ""
    return ""
