"""What the official account answers: chat, API keys by keyword, menu events, admin commands."""

from __future__ import annotations

import logging

from wechatpy.messages import BaseMessage

from bot.chat.dialogue import MAX_CHARS, Turn
from bot.errors import ChatError, Failure
from bot.extensions import Services
from bot.store.vault import log_id
from bot.wechat import texts
from bot.wechat.admin import AdminCommands

logger = logging.getLogger(__name__)

_FAILURE_TEXTS = {
    Failure.UPSTREAM_TIMEOUT: texts.UPSTREAM_TIMEOUT,
    Failure.QUOTA_EXHAUSTED: texts.DAILY_CAP,
    Failure.RATE_LIMITED: texts.RATE_LIMITED,
    Failure.SERVICE_UNAVAILABLE: texts.BUSY,
}


class Unmetered:
    """Pays for a follower's chat on the official account, which is free to them."""

    def reserve(self, wanted: int, minimum: int) -> int:
        return wanted

    def settle(self, reserved: int, actual: int) -> int:
        return actual


class Bot:
    def __init__(self, svc: Services, base_url: str):
        self.svc = svc
        self.settings = svc.settings
        self.base_url = (svc.settings.public_url or base_url).rstrip("/")

    def reply(self, message: BaseMessage) -> str | None:
        """The text to answer `message` with, or None for no reply."""
        openid = message.source
        if message.type == "text":
            return self.on_text(openid, message.content or "")
        if message.type == "voice" and (getattr(message, "recognition", None) or "").strip():
            return self.on_text(openid, message.recognition)
        if message.type == "event":
            return self.on_event(openid, message)
        return texts.UNSUPPORTED

    def on_text(self, openid: str, text: str) -> str:
        command = text.strip()
        if command.startswith("/") and openid in self.settings.admin_openids:
            return AdminCommands(self.svc, openid).run(command)
        if command.lower() in self.settings.key_keywords:
            return self.key_reply(openid)
        return self.chat(openid, text)

    def on_event(self, openid: str, message: BaseMessage) -> str | None:
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            return texts.WELCOME
        if event != "click":
            return None  # unsubscribe (nothing sent, nothing deleted), view, location, scan …
        key = message.key
        if key == "GET_KEY":
            return self.key_reply(openid)
        if key == "RESET_CHAT":
            self.svc.history.clear(openid)
            return texts.RESET_DONE
        if key == "MY_USAGE":
            return self.usage_reply(openid)
        if key.startswith("ADMIN_") and openid in self.settings.admin_openids:
            return AdminCommands(self.svc, openid).run("/" + key[len("ADMIN_") :].lower())
        return None

    def key_reply(self, openid: str) -> str:
        key, created = self.svc.keys.issue(openid)
        fingerprint = self.svc.keys.fingerprint(key)
        info = self.svc.keys.info(fingerprint) if fingerprint else None
        logger.info("wechat key %s %s for %s", "issued" if created else "shown", log_id(fingerprint or ""), openid)
        return texts.KEY_HOWTO.format(
            status="已生成" if created else "",
            key=key,
            balance=info.balance if info else 0,
            base=self.base_url,
        )

    def usage_reply(self, openid: str) -> str:
        fingerprint = self.svc.keys.fingerprint_of(openid)
        info = self.svc.keys.info(fingerprint) if fingerprint else None
        if info is None:
            return texts.NO_KEY
        return texts.USAGE.format(balance=info.balance, used_today=info.used_today, used=info.used)

    def chat(self, openid: str, question: str) -> str:
        """One chat turn with this follower's history; a failed call leaves the history unchanged."""
        if len(question) > MAX_CHARS:
            return texts.QUESTION_TOO_LONG.format(length=len(question))
        turns = [*self.svc.history.load(openid), Turn("user", question)]
        try:
            completion = self.svc.chat.complete(turns, Unmetered())
        except ChatError as error:
            logger.info("wechat chat for %s failed: %s", openid, error.failure.name)
            return _FAILURE_TEXTS.get(error.failure, texts.UPSTREAM_FAILED)
        self.svc.history.append(openid, question, completion.content)
        self.svc.stats.count_message(completion.usage.total_tokens)
        return completion.content
