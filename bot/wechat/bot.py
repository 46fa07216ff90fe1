"""What the official account answers: chat, API keys by keyword, menu events, admin commands.

Every message is claimed in Redis by its MsgId (events: by their CreateTime) before anything is done,
and the reply decided for it is stored, so WeChat's retries, on any worker, get the same reply and
never a second model call.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from wechatpy.messages import BaseMessage

from bot.chat.dialogue import MAX_CHARS
from bot.errors import Failure
from bot.extensions import Services
from bot.store.vault import log_id
from bot.wechat import texts
from bot.wechat.admin import AdminCommands
from bot.wechat.courier import NO_REPLY, Courier

logger = logging.getLogger(__name__)

# Stored as a message's reply in place of the text with the follower's key. No other stored reply
# starts with NUL: XML cannot carry it, so it never comes from WeChat, and the courier strips it from answers.
KEY_MARKER = "\x00key:"


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


class Bot:
    def __init__(self, svc: Services, courier: Courier, base_url: Callable[[], str]):
        self.svc = svc
        self.courier = courier
        self.settings = svc.settings
        self.base_url = base_url  # computed only when a reply shows it
        self.drawn = ""  # the key's reply drawn by this delivery

    def reply(self, message: BaseMessage, arrived: float | None = None) -> str | None:
        """The reply to one delivery: text, NO_REPLY, or None to stay silent so WeChat tries again."""
        arrived = time.monotonic() if arrived is None else arrived
        openid, msg_id = message.source, message_id(message)
        question = self.question(message)
        more = question is not None and question.strip().lower() in texts.CONTINUE_WORDS
        ask = question is not None and not more and len(question) <= MAX_CHARS
        claim = self.svc.conversation.claim(openid, msg_id, question or "", ask=ask)
        if claim.reply:
            return self.shown(openid, claim.reply)
        if claim.refusal is Failure.RATE_LIMITED:  # nothing was stored: a retry is judged afresh
            logger.info("wechat %s refused: %s", openid, claim.refusal.name)
            return NO_REPLY if message.type == "event" else texts.RATE_LIMITED
        if claim.status == "new" or claim.recovered:
            if question is None:
                return self.shown(openid, self.decide(openid, msg_id, self.quick_reply(message) or NO_REPLY))
            if more:
                return self.courier.collect(openid, msg_id, None)
            if not ask:
                return self.decide(openid, msg_id, texts.QUESTION_TOO_LONG.format(length=len(question)))
            if claim.refusal is Failure.BLOCKED:
                logger.info("wechat %s refused: %s", openid, claim.refusal.name)
                return self.decide(openid, msg_id, texts.BLOCKED)
            if claim.owed and not claim.recovered:
                return self.courier.collect(openid, msg_id, question, claim.slot)
            self.courier.start(openid, msg_id, question, claim.slot, early=not claim.recovered)
        reply = self.courier.await_reply(openid, msg_id, claim.deliveries, arrived, chat=question is not None)
        return None if reply is None else self.shown(openid, reply)

    def decide(self, openid: str, msg_id: str, reply: str) -> str:
        """Store the message's reply (the first decision wins) and answer the one decided."""
        return self.svc.conversation.reply(openid, msg_id, reply)

    def shown(self, openid: str, reply: str) -> str:
        """The text a stored reply shows: a key's reply is stored as a marker and drawn afresh, so no
        full key ever sits in Redis (nor in its AOF and backups)."""
        if reply.startswith(KEY_MARKER):
            return self.drawn or self.key_text(openid, created=reply == KEY_MARKER + "new")
        return reply

    def question(self, message: BaseMessage) -> str | None:
        """The text to put to the model (or 继续), or None for what is answered without it."""
        text = said(message)
        command = text.strip()
        if not command or self.is_admin_command(message.source, command) or self.asks_for_key(command):
            return None
        return text

    def is_admin_command(self, openid: str, command: str) -> bool:
        return command.startswith("/") and openid in self.settings.admin_openids

    def asks_for_key(self, command: str) -> bool:
        return command.lower() in self.settings.key_keywords

    def quick_reply(self, message: BaseMessage) -> str | None:
        """The reply to a message that is not a question for the model."""
        openid, command = message.source, said(message).strip()
        if message.type == "event":
            return self.on_event(openid, message)
        if self.is_admin_command(openid, command):
            return AdminCommands(self.svc, openid).run(command)
        if self.asks_for_key(command):
            return self.key_reply(openid)
        return texts.UNSUPPORTED

    def on_event(self, openid: str, message: BaseMessage) -> str | None:
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            return texts.WELCOME
        if event != "click":
            return None  # unsubscribe (nothing sent, nothing deleted), view, location, scan …
        key = getattr(message, "key", None) or ""  # a CLICK may come without an EventKey
        if key == "GET_KEY":
            return self.key_reply(openid)
        if key == "RESET_CHAT":
            self.svc.conversation.clear_history(openid)
            return texts.RESET_DONE
        if key == "MY_USAGE":
            return self.usage_reply(openid)
        if key.startswith("ADMIN_") and openid in self.settings.admin_openids:
            return AdminCommands(self.svc, openid).run("/" + key[len("ADMIN_") :].lower())
        return None

    def key_reply(self, openid: str) -> str:
        """Issue the follower's key if they have none; the reply stored is a marker (see `shown`)."""
        key, created = self.svc.keys.issue(openid)
        self.drawn = self.key_text(openid, created, key)  # this delivery shows it without reading it again
        return KEY_MARKER + ("new" if created else "shown")

    def key_text(self, openid: str, created: bool, key: str | None = None) -> str:
        key = key or self.svc.keys.issue(openid)[0]
        fingerprint = self.svc.keys.fingerprint(key)
        info = self.svc.keys.info(fingerprint) if fingerprint else None
        logger.info("wechat key %s %s for %s", "issued" if created else "shown", log_id(fingerprint or ""), openid)
        return texts.KEY_HOWTO.format(
            status="已生成" if created else "",
            key=key,
            balance=info.balance if info else 0,
            base=(self.settings.public_url or self.base_url()).rstrip("/"),
        )

    def usage_reply(self, openid: str) -> str:
        fingerprint = self.svc.keys.fingerprint_of(openid)
        info = self.svc.keys.info(fingerprint) if fingerprint else None
        if info is None:
            return texts.NO_KEY
        return texts.USAGE.format(balance=info.balance, used_today=info.used_today, used=info.used)
