"""What the official account answers: chat, API keys by keyword, menu events, admin commands.

Every message is claimed in Redis by its MsgId (events: by their CreateTime) before anything is done,
and the reply decided for it is stored, so WeChat's retries, on any worker, get the same reply and
never a second model call. Each delivery's message is classified once (bot/wechat/incoming.py) and
answered by its kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import NamedTuple

from wechatpy.messages import BaseMessage

from bot.errors import Failure
from bot.ids import log_id
from bot.safety.guard import ContentGuard
from bot.store.apikeys import KeyStore
from bot.store.conversation import Claim, Conversation
from bot.tally import Tally
from bot.wechat import texts
from bot.wechat.admin import AdminCommands
from bot.wechat.courier import NO_REPLY, Courier
from bot.wechat.incoming import Incoming, Kind, classify

logger = logging.getLogger(__name__)
# A follower who sends one of these chatted (the console's active followers); a menu click, an event,
# a key or login request or a command does not.
CHATTED = (Kind.QUESTION, Kind.CONTINUE, Kind.TOO_LONG, Kind.REFUSED)

# Stored as a message's reply in place of the text with the follower's key. No other stored reply
# starts with NUL: XML cannot carry it, so it never comes from WeChat, and the courier strips it from answers.
KEY_MARKER = "\x00key:"
# Stored in place of a sign-in link's reply: a link is shown once and never kept (a retry draws a new one).
LOGIN_MARKER = "\x00login"


class Decided(NamedTuple):
    """A reply decided without the model: the text stored, and the key's reply this delivery drew."""

    stored: str
    drawn: str = ""  # set when `stored` is a KEY_MARKER: shown without reading the key again


class Dispatcher:
    """The WeChat door's answers, built once per app: it keeps nothing between deliveries."""

    def __init__(
        self, conversation: Conversation, keys: KeyStore, courier: Courier, admin: AdminCommands, *,
        admins: Collection[str], key_keywords: Collection[str], public_url: str, base_url: Callable[[], str],
        guard: ContentGuard | None = None,
        reset_words: Collection[str] = (),
        login_keywords: Collection[str] = (), login_link: Callable[[str], str] | None = None,
        tally: Tally | None = None,
    ):  # fmt: skip
        self.conversation = conversation
        self.keys = keys
        self.courier = courier
        self.admin = admin
        self.admins = admins  # BOT_ADMIN_OPENIDS: the only openids whose "/…" is a command
        self.key_keywords = key_keywords  # BOT_KEY_KEYWORDS, lower case
        self.public_url = public_url  # BOT_PUBLIC_URL, named in a key's reply; else the request's own
        self.base_url = base_url  # computed only when a reply shows it
        self.guard = guard  # banned words: a question holding one is refused before anything is stored
        self.reset_words = reset_words  # BOT_RESET_KEYWORDS, lower case
        self.login_keywords = login_keywords  # BOT_LOGIN_KEYWORDS, lower case
        self.login_link = login_link  # openid → a new one-time sign-in token (bot/web/signins.py)
        self.tally = tally  # the console's active followers: who sent a chat message

    def reply(self, message: BaseMessage, arrived: float | None = None) -> str | None:
        """The reply to one delivery: text, NO_REPLY, or None to stay silent so WeChat tries again."""
        arrived = time.monotonic() if arrived is None else arrived
        incoming = self.screened(
            classify(message, self.admins, self.key_keywords, self.reset_words, self.login_keywords)
        )
        openid, msg_id = incoming.openid, incoming.msg_id
        if self.tally is not None and incoming.kind in CHATTED:  # a set add: no Redis
            self.tally.saw(openid)
        claim = self.conversation.claim(openid, msg_id, incoming.question, ask=incoming.kind is Kind.QUESTION)
        if claim.reply:
            if incoming.kind is Kind.QUESTION:
                self.courier.carried(claim.deliveries, claim.reply)
            return self.shown(openid, claim.reply)
        if claim.refusal is Failure.RATE_LIMITED:  # nothing was stored: a retry is judged afresh
            logger.info("wechat %s refused: %s", openid, claim.refusal.name)
            return NO_REPLY if incoming.kind is Kind.EVENT else texts.RATE_LIMITED
        if claim.status == "new" or claim.recovered:
            decided = self.first_reply(incoming, claim, arrived)
            if decided is not None:
                return decided
        # Only a question's answer may be deferred: anything else is decided by its first delivery.
        reply = self.courier.await_reply(openid, msg_id, claim.deliveries, arrived, chat=incoming.kind is Kind.QUESTION)
        return None if reply is None else self.shown(openid, reply)

    def first_reply(self, incoming: Incoming, claim: Claim, arrived: float | None = None) -> str | None:
        """The reply of the delivery that claimed the message (or claimed it again when the lease of the
        one before ran out); None once it started a model call, whose reply it then waits for."""
        openid, msg_id = incoming.openid, incoming.msg_id
        match incoming.kind:
            case Kind.QUESTION:
                return self.ask(incoming, claim)
            case Kind.CONTINUE:
                return self.courier.collect(openid, msg_id, None, arrived=arrived)
            case Kind.REFUSED:  # not echoed, not asked, no turn, no cost
                return self.decide(openid, msg_id, texts.QUESTION_REFUSED)
            case Kind.TOO_LONG:
                return self.decide(openid, msg_id, texts.QUESTION_TOO_LONG.format(length=len(incoming.text)))
            case _:
                stored, drawn = self.answer_at_once(incoming)
                return self.shown(openid, self.decide(openid, msg_id, stored), drawn)

    def screened(self, incoming: Incoming) -> Incoming:
        """A question holding a banned word becomes REFUSED (in-process: no Redis round trip)."""
        guard, who = self.guard, f"openid={incoming.openid}"
        if incoming.kind is Kind.QUESTION and guard is not None and guard.words_hit([incoming.text], "wechat", who):
            return replace(incoming, kind=Kind.REFUSED)
        return incoming

    def ask(self, incoming: Incoming, claim: Claim) -> str | None:
        """Start the question's model call, unless the follower is blocked or is owed older answers first."""
        openid, msg_id = incoming.openid, incoming.msg_id
        if claim.refusal is Failure.BLOCKED:
            logger.info("wechat %s refused: %s", openid, claim.refusal.name)
            return self.decide(openid, msg_id, texts.BLOCKED)
        if claim.owed and not claim.recovered:  # the reply is what is owed; this answer queues behind it
            return self.courier.collect(openid, msg_id, incoming.text, claim.slot)
        self.courier.start(openid, msg_id, incoming.text, claim.slot, early=not claim.recovered)
        return None

    def answer_at_once(self, incoming: Incoming) -> Decided:
        """The reply to a message that is not for the model: an event, a command, a key request."""
        openid = incoming.openid
        match incoming.kind:
            case Kind.EVENT:
                return self.on_event(openid, incoming.message)
            case Kind.ADMIN_COMMAND:
                if incoming.text.split()[0].lower() == "/console":  # stored as a marker, never the link
                    self.admin.note(openid, "console link")
                    return self.login_reply(openid)
                return Decided(self.admin.run(openid, incoming.text))
            case Kind.KEY_REQUEST:
                return self.key_reply(openid)
            case Kind.RESET:
                self.conversation.clear_history(openid)
                return Decided(texts.RESET_DONE)
            case Kind.HELP:
                return Decided(texts.HELP)
            case Kind.LOGIN_REQUEST:
                return self.login_reply(openid)
            case _:
                return Decided(texts.UNSUPPORTED)

    def decide(self, openid: str, msg_id: str, reply: str) -> str:
        """Store the message's reply (the first decision wins) and answer the one decided."""
        return self.conversation.reply(openid, msg_id, reply)

    def shown(self, openid: str, reply: str, drawn: str = "") -> str:
        """The text a stored reply shows: a key's reply is stored as a marker and drawn afresh, so no
        full key ever sits in Redis (nor in its AOF and backups)."""
        if reply.startswith(KEY_MARKER):
            return drawn or self.key_text(openid, created=reply == KEY_MARKER + "new")
        if reply == LOGIN_MARKER:
            return drawn or self.login_reply(openid).drawn
        return reply

    def on_event(self, openid: str, message: BaseMessage) -> Decided:
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            return Decided(texts.WELCOME)
        if event != "click":
            return Decided(NO_REPLY)  # unsubscribe (nothing sent, nothing deleted), view, location, scan …
        key = getattr(message, "key", None) or ""  # a CLICK may come without an EventKey
        if key == "GET_KEY":
            return self.key_reply(openid)
        if key == "RESET_CHAT":
            self.conversation.clear_history(openid)
            return Decided(texts.RESET_DONE)
        if key == "CONSOLE":
            return self.login_reply(openid)
        if key == "MY_USAGE":
            return Decided(self.usage_reply(openid))
        if key.startswith("ADMIN_") and openid in self.admins:
            return Decided(self.admin.run(openid, "/" + key[len("ADMIN_") :].lower()))
        return Decided(NO_REPLY)

    def key_reply(self, openid: str) -> Decided:
        """Issue the follower's key if they have none; the reply stored is a marker (see `shown`)."""
        key, created = self.keys.issue(openid)
        drawn = self.key_text(openid, created, key)  # this delivery shows it without reading it again
        return Decided(KEY_MARKER + ("new" if created else "shown"), drawn)

    def key_text(self, openid: str, created: bool, key: str | None = None) -> str:
        key = key or self.keys.issue(openid)[0]
        fingerprint = self.keys.fingerprint(key)
        info = self.keys.info(fingerprint) if fingerprint else None
        logger.info("wechat key %s %s for %s", "issued" if created else "shown", log_id(fingerprint or ""), openid)
        return texts.KEY_HOWTO.format(
            status="已生成" if created else "",
            key=key,
            balance=info.balance if info else 0,
            base=(self.public_url or self.base_url()).rstrip("/"),
        )

    def login_reply(self, openid: str) -> Decided:
        """A one-time link to the web portal; what is stored is a marker, never the link."""
        if self.login_link is None:
            return Decided(texts.UNSUPPORTED)
        base = (self.public_url or self.base_url()).rstrip("/")
        return Decided(LOGIN_MARKER, texts.LOGIN_LINK.format(link=f"{base}/login/{self.login_link(openid)}"))

    def usage_reply(self, openid: str) -> str:
        fingerprint = self.keys.fingerprint_of(openid)
        info = self.keys.info(fingerprint) if fingerprint else None
        if info is None:
            return texts.NO_KEY
        return texts.USAGE.format(balance=info.balance, used_today=info.used_today, used=info.used)
