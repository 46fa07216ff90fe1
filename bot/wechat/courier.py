"""Answers that outlive WeChat's 5-second window, delivered exactly once on any number of workers.

WeChat waits 5 s for a reply, then sends the same message again: three deliveries in all. The first
delivery claims the message in Redis and starts the one model call in a background greenlet of its
worker; every delivery, on any worker, waits for that call's answer until its window closes
(BOT_WECHAT_WINDOW, 4.5 s). A reply decided once is the reply every later delivery gets.

Not ready in time: a delivery that is not the last says nothing, and WeChat sends the message again.
The last one replies 【正在思考…】 (passive mode) and the answer waits in the follower's outbox for
their next message; in customer_service mode the first window's end replies `success` and the
answer is pushed with the customer-service API when it is ready (the outbox if a push fails).
"""

from __future__ import annotations

import logging
import threading
import time

import gevent
import requests
from gevent import monkey
from wechatpy.exceptions import WeChatClientException

from bot import metrics
from bot.chat.core import ChatService
from bot.chat.dialogue import ROLES, Turn
from bot.chat.routing import route_note
from bot.errors import ChatError, Failure
from bot.safety.guard import ContentGuard
from bot.safety.moderation import Verdict
from bot.store.conversation import Conversation, Slot
from bot.store.quota import TurnAllowance
from bot.store.wakeups import EXPIRY_MARGIN, Wakeups
from bot.wechat import texts
from bot.wechat.client import SharedTokenClient
from bot.wechat.protocol import PASSIVE_LIMIT_BYTES, fit_bytes, xml_text
from bot.wechat.waits import POLL_SECONDS, LocalWaits

logger = logging.getLogger(__name__)

NO_REPLY = "success"  # the reply that tells WeChat: nothing to show, do not retry
DELIVERIES = 3  # WeChat's first delivery and its two retries
MAX_PUSHES = 5  # customer-service messages allowed per message the follower sent
# Room left in each part for a marker and a note, so every reply stays within the passive limit.
PART_BYTES = PASSIVE_LIMIT_BYTES - 400

_FAILURE_TEXTS = {
    Failure.UPSTREAM_TIMEOUT: texts.UPSTREAM_TIMEOUT,
    Failure.QUOTA_EXHAUSTED: texts.DAILY_CAP,
    Failure.RATE_LIMITED: texts.RATE_LIMITED,
    Failure.SERVICE_UNAVAILABLE: texts.BUSY,
}


def split_parts(text: str, limit: int = PART_BYTES) -> list[str]:
    """`text` in pieces of at most `limit` UTF-8 bytes, cut at a line break where one is near."""
    parts = []
    while len(text.encode()) > limit:
        piece = fit_bytes(text, limit)
        newline = piece.rfind("\n")
        if newline > len(piece) * 3 // 4:
            piece = piece[: newline + 1]
        parts.append(piece.rstrip("\n"))
        text = text[len(piece) :]
    return [*parts, text] if text or not parts else parts


class Courier:
    """Runs each message's one model call and brings its reply to the deliveries that wait for it."""

    def __init__(
        self, conversation: Conversation, chat: ChatService, wakeups: Wakeups, client: SharedTokenClient | None,
        waits: LocalWaits, *, window: float, push_mode: bool, daily_tokens: int, guard: ContentGuard | None = None,
    ):  # fmt: skip
        self.conv = conversation
        self.chat = chat
        self.wakeups = wakeups  # wakes a question waiting for the follower's model slot
        self.client = client  # WeChat's API, for customer-service pushes (None: not configured)
        self.waits = waits
        self.window = window  # seconds a delivery waits for the reply (BOT_WECHAT_WINDOW)
        self.push_mode = push_mode  # customer_service: answers are pushed, not left for 继续
        self.daily_tokens = daily_tokens  # a follower's free chat tokens per day
        self.guard = guard  # moderation of the question, banned words in the answer

    # --- deliveries -------------------------------------------------------------------------

    def await_reply(self, openid: str, msg_id: str, deliveries: int, arrived: float, chat: bool) -> str | None:
        """Wait for the message's reply until this delivery's window closes.

        None: say nothing and let WeChat deliver the message again."""
        deadline = arrived + self.window
        key = f"{openid}:{msg_id}"
        call = self.waits.get(key)
        # The model call runs in this process: wait on it, not on Redis.
        if call is not None and call.done.wait(max(0.0, deadline - time.monotonic())) and call.replies:
            metrics.count_delivery("in_window")
            return call.replies[0]
        while True:
            reply = self.conv.decided_reply(openid, msg_id)
            if reply is not None:
                metrics.count_delivery("in_window")
                return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(POLL_SECONDS, remaining))
        if not chat or not (self.push_mode or deliveries >= DELIVERIES):
            return None
        self.waits.keep_for_redis(key)
        kind, reply = self.conv.defer(openid, msg_id, NO_REPLY if self.push_mode else texts.THINKING)
        logger.info("wechat %s msg %s: %s after %d deliveries", openid, msg_id, kind, deliveries)
        metrics.count_delivery("deferred" if kind == "deferred" else "in_window")
        return reply

    def collect(self, openid: str, msg_id: str, question: str | None, slot: Slot | None = None) -> str:
        """Reply with the oldest thing owed; a new `question` is started and owed after it."""
        collected = self.conv.collect(openid, msg_id, question is not None)
        if collected.owed is not None and collected.owed.part is not None:
            metrics.count_delivery("continue")
        if question is not None:  # its reply is decided: the answer goes to the outbox
            self.start(openid, msg_id, question, slot, early=False)
        if collected.writing:  # the answer owed first is still being written: is its worker alive?
            self._recover(openid, collected.writing)
        return collected.reply

    def _recover(self, openid: str, msg_id: str) -> None:
        question = self.conv.recover(openid, msg_id)
        if question is not None:
            logger.warning("wechat %s msg %s: its worker's lease ran out, answering again", openid, msg_id)
            self.start(openid, msg_id, question, early=False)

    # --- the model call ---------------------------------------------------------------------

    def start(self, openid: str, msg_id: str, question: str, slot: Slot | None = None, early: bool = True) -> None:
        """Run the message's model call in the background: it outlives the delivery that started it.
        `slot`: the follower's model slot, if the claim took it; else the call waits for it.
        `early`: see LocalWaits.start (False when redoing a message whose first run may live on)."""
        self.waits.start(f"{openid}:{msg_id}", early)
        self._spawn(self._run, openid, msg_id, question, slot)

    def _spawn(self, target, *args) -> None:
        """Run `target` beside the delivery: a greenlet in gunicorn's gevent workers (it starts when
        the delivery waits), a thread elsewhere (the test client, the CLI)."""
        if monkey.is_module_patched("threading"):
            gevent.spawn(target, *args)
        else:
            threading.Thread(target=target, args=args, daemon=True).start()

    def _run(self, openid: str, msg_id: str, question: str, slot: Slot | None) -> None:
        reply, key = None, f"{openid}:{msg_id}"
        try:
            answer, charge = self._answer(openid, msg_id, question, slot)
            # Stored as it can be shown: a stored reply that began with NUL would pass for the marker
            # of a key's reply (dispatch.py) or of an owed reply (store/owed.py), and a follower can
            # have the model answer anything.
            answer = xml_text(answer)
            parts = split_parts(answer)
            # Pushing a deferred answer keeps the follower's slot: a question queued behind it is
            # answered, and pushed, only after it, so the follower reads the answers in order.
            pushing = self.push_mode and self.client is not None
            finished = self.conv.finish_turn(
                openid, msg_id, question, answer, charge, parts, sent=lambda decided: self.waits.offer(key, decided),
                keep_slot=pushing,
            )  # fmt: skip
            reply = finished.reply
            if pushing and finished.owed:
                try:
                    self.push(openid, parts[-finished.owed :])
                finally:
                    self.conv.release(openid, msg_id)
        except Exception:
            logger.exception("wechat %s msg %s: answering failed", openid, msg_id)
        finally:
            self.waits.finish(key, reply)

    def _answer(self, openid: str, msg_id: str, question: str, slot: Slot | None) -> tuple[str, int | None]:
        """The answer, and the tokens to charge (None: it failed, and records no turn)."""
        slot = slot or self._wait_for_turn(openid, msg_id)
        if slot is None:
            return texts.BUSY, None
        refusal = self._moderation_refusal(openid, question)
        if refusal is not None:
            return refusal, None
        started = time.monotonic()
        payer = TurnAllowance(self.daily_tokens, slot.used_today)
        dialogue = [Turn(ROLES[i % 2], content) for i, content in enumerate(slot.history)]
        try:
            completion = self.chat.complete([*dialogue, Turn("user", question)], payer)
        except ChatError as error:
            logger.info("wechat %s msg %s failed: %s%s", openid, msg_id, error.failure.name, route_note())
            return _FAILURE_TEXTS.get(error.failure, texts.UPSTREAM_FAILED), None
        # With several upstreams the line names the one that answered (and any that failed): INFO.
        note = route_note()
        level = logging.INFO if note else logging.DEBUG
        logger.log(level, "wechat %s msg %s answered in %.1fs%s", openid, msg_id, time.monotonic() - started, note)
        return self._shown(openid, completion.content), payer.charged

    def _moderation_refusal(self, openid: str, question: str) -> str | None:
        """The reply instead of an answer if moderation refuses the question (its time is the window's)."""
        verdict = self.guard.moderate([question], "wechat", f"openid={openid}") if self.guard else Verdict.CLEAN
        if verdict is Verdict.FLAGGED:
            return texts.QUESTION_REFUSED
        return texts.MODERATION_UNAVAILABLE if verdict is Verdict.UNAVAILABLE else None

    def _shown(self, openid: str, answer: str) -> str:
        """The answer as the follower may see it, and as their history records it."""
        if self.guard is None:
            return answer
        shown, blocked = self.guard.screen_answer(answer, "wechat", f"openid={openid}")
        return texts.ANSWER_BLOCKED if blocked else shown

    def _wait_for_turn(self, openid: str, msg_id: str) -> Slot | None:
        """The follower's model slot once the messages before this one are through: woken, not polling."""
        deadline = time.monotonic() + self.conv.lease_ms / 1000
        with self.wakeups.waiting(openid, msg_id) as waiter:
            while True:
                slot, hold_ms = self.conv.begin_turn(openid, msg_id)
                if slot is not None or time.monotonic() >= deadline:
                    return slot
                waiter.sleep(min(deadline, time.monotonic() + hold_ms / 1000 + EXPIRY_MARGIN))

    def push(self, openid: str, parts: list[str]) -> None:
        """Send owed parts as customer-service messages; what cannot be pushed stays owed."""
        client = self.client
        if client is None:
            return
        for i, part in enumerate(parts[:MAX_PUSHES]):
            last_allowed = i == MAX_PUSHES - 1 and len(parts) > MAX_PUSHES
            text = part + texts.MORE if last_allowed else part
            try:
                client.call(lambda text=text: client.message.send_text(openid, text))
            except (WeChatClientException, requests.RequestException) as error:
                errcode = getattr(error, "errcode", None)
                logger.warning("wechat push to %s failed (errcode=%s): kept for their next message", openid, errcode)
                return
            self.conv.remove_owed(openid, part)
            metrics.count_delivery("pushed")
