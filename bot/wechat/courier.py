"""Answers that outlive WeChat's 5-second window, delivered exactly once on any number of workers.

WeChat waits 5 s for a reply, then sends the same message again: three deliveries in all. The first
delivery claims the message in Redis and starts the one model call in a background greenlet of its
worker; every delivery, on any worker, waits for that call's answer until its window closes
(BOT_WECHAT_WINDOW, 4.5 s). A reply decided once is the reply every later delivery gets.

Not ready in time: a delivery that is not the last says nothing, and WeChat sends the message again.
The model's answer is read as it is written (bot/wechat/writer.py): the last delivery replies with the
text written so far (BOT_WECHAT_PARTIAL, bot/wechat/partials.py), or 【正在思考…】 if there is none,
and the rest waits in the follower's outbox for their 继续; in customer_service mode the first window's
end replies `success` and the answer is pushed with the customer-service API in stretches as it is
written (bot/wechat/pushes.py; the outbox if a push fails).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

import gevent
from gevent import monkey

from bot import metrics
from bot.chat.core import ChatService
from bot.safety.guard import ContentGuard
from bot.store.conversation import Conversation, Slot
from bot.store.drafts import Drafts
from bot.store.wakeups import Wakeups
from bot.wechat import texts
from bot.wechat.answering import Answer, Answerer
from bot.wechat.client import SharedTokenClient
from bot.wechat.deadline import ReplyClock
from bot.wechat.partials import Partials
from bot.wechat.parts import split_parts
from bot.wechat.protocol import xml_text
from bot.wechat.pushes import MAX_PUSHES, Pusher
from bot.wechat.waits import POLL_SECONDS, LocalWaits
from bot.wechat.writer import Lost, Writing

logger = logging.getLogger(__name__)

NO_REPLY = "success"  # the reply that tells WeChat: nothing to show, do not retry
DELIVERIES = 3  # WeChat's first delivery and its two retries


class Courier:
    """Runs each message's one model call (bot/wechat/answering.py) and brings its reply to the deliveries
    that wait for it."""

    def __init__(
        self, conversation: Conversation, chat: ChatService, wakeups: Wakeups, client: SharedTokenClient | None,
        waits: LocalWaits, *, window: float, push_mode: bool, daily_tokens: int, drafts: Drafts,
        partials: Partials, clock: ReplyClock, guard: ContentGuard | None = None,
    ):  # fmt: skip
        self.conv = conversation
        self.client = client  # WeChat's API, for customer-service pushes (None: not configured)
        self.waits = waits
        self.push_mode = push_mode  # customer_service: answers are pushed, not left for 继续
        self.drafts = drafts  # answers' checkpoints while they are written
        self.partials = partials  # shows them before they are complete (BOT_WECHAT_PARTIAL)
        self.clock = clock  # when a delivery decides, so its reply is in time under load too
        self.pusher = Pusher(conversation, client)
        # The model call itself: the question's turn, moderation, the answer read as it is written.
        self.answerer = Answerer(
            conversation, chat, wakeups, drafts, self.pusher if push_mode and client else None, window=window,
            daily_tokens=daily_tokens, guard=guard,
        )  # fmt: skip

    # --- deliveries -------------------------------------------------------------------------

    def await_reply(self, openid: str, msg_id: str, deliveries: int, arrived: float, chat: bool) -> str | None:
        """Wait for the message's reply until this delivery must decide it.

        None: say nothing and let WeChat deliver the message again."""
        last = deliveries >= DELIVERIES
        # In customer_service mode the first window's end decides the reply (`success`): as late as a last.
        deadline = self.clock.decide_by(arrived, last or self.push_mode)
        key = f"{openid}:{msg_id}"
        call = self.waits.get(key)
        # The model call runs in this process: wait on it, not on Redis.
        if call is not None and call.done.wait(max(0.0, deadline - time.monotonic())) and call.replies:
            _count_in_window(deliveries)
            return call.replies[0]
        reply, draft = self._poll(openid, msg_id, deadline)
        if reply is not None:
            _count_in_window(deliveries)
            return reply
        self.clock.woke(deadline)
        if not chat:
            return None
        if not self.push_mode and (shown := self.partials.at_deadline(openid, msg_id, last, draft)) is not None:
            logger.info("wechat %s msg %s: shown as far as written after %d deliveries", openid, msg_id, deliveries)
            return shown
        if not (self.push_mode or last):
            return None
        self.waits.keep_for_redis(key)
        kind, reply = self.conv.defer(openid, msg_id, self._placeholder(arrived, deliveries))
        logger.info("wechat %s msg %s: %s after %d deliveries", openid, msg_id, kind, deliveries)
        if kind == "deferred":
            metrics.count_delivery("deferred")
        else:  # the answer was decided meanwhile: this delivery carries it
            _count_in_window(deliveries)
        return reply

    def carried(self, deliveries: int, reply: str) -> None:
        """A question's delivery that found its reply decided since the delivery before (the answer came
        between two windows): it carries the answer. A placeholder or `success` is not an answer."""
        if deliveries > 1 and reply != NO_REPLY and not reply.startswith(texts.THINKING_MARK):
            _count_in_window(deliveries)

    def _poll(self, openid: str, msg_id: str, deadline: float):
        """The reply decided, polled in Redis until `deadline` (None if none), with the answer's
        checkpoint as last read when partial answers are on (the same round trip)."""
        draft = None
        while True:
            if self.partials.on:
                draft = self.drafts.read(openid, msg_id)
                reply = None if draft.reply is None else self.conv.shown(draft.reply)
            else:
                reply = self.conv.decided_reply(openid, msg_id)
            remaining = deadline - time.monotonic()
            if reply is not None or remaining <= 0:
                return reply, draft
            time.sleep(min(POLL_SECONDS, remaining))

    def _placeholder(self, arrived: float, deliveries: int) -> str:
        if self.push_mode:
            return NO_REPLY
        if not self.partials.on:
            return texts.THINKING
        return texts.thinking_for(self.clock.thinking_seconds(arrived, deliveries))

    def collect(
        self, openid: str, msg_id: str, question: str | None, slot: Slot | None = None, arrived: float | None = None
    ) -> str:
        """Reply with the oldest thing owed; a new `question` is started and owed after it. An answer
        owed first that is still being written is shown as far as it has come (BOT_WECHAT_PARTIAL)."""
        queue = question is not None
        collected = self.conv.collect(openid, msg_id, queue, peek=self.partials.on)
        if collected.writing:  # the answer owed first is still being written: is its worker alive?
            self._recover(openid, collected.writing)
        if collected.writing and not collected.reply:  # peeked: nothing decided yet
            # It hands text out: it decides with the last delivery's margin, and its wake counts as one.
            deadline = self.clock.decide_by(time.monotonic() if arrived is None else arrived, last=True)
            shown = self.partials.collect(openid, msg_id, collected.writing, queue, deadline)
            self.clock.woke(deadline)
            collected = self.conv.collect(openid, msg_id, queue) if shown is None else collected._replace(reply=shown)
        if collected.owed is not None and collected.owed.part is not None:
            metrics.count_delivery("continue")
        if queue:  # its reply is decided: the answer goes to the outbox
            self._begin(openid, msg_id, question, slot, early=False, recovered=False)
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
        `early`: see LocalWaits.start; False when redoing a message whose first run may live on."""
        self._begin(openid, msg_id, question, slot, early, recovered=not early)

    def _begin(self, openid: str, msg_id: str, question: str, slot: Slot | None, early: bool, recovered: bool) -> None:
        writing = Writing(secrets.token_hex(6))
        self.waits.start(f"{openid}:{msg_id}", early, writing)
        self._spawn(self._run, openid, msg_id, question, slot, writing, recovered)

    def _spawn(self, target, *args) -> None:
        """Run `target` beside the delivery: a greenlet in gunicorn's gevent workers (it starts when
        the delivery waits), a thread elsewhere (the test client, the CLI)."""
        if monkey.is_module_patched("threading"):
            gevent.spawn(target, *args)
        else:
            threading.Thread(target=target, args=args, daemon=True).start()

    def _run(self, openid: str, msg_id: str, question: str, slot: Slot | None, writing: Writing, recovered: bool):
        reply, key = None, f"{openid}:{msg_id}"
        try:
            answer = self.answerer.answer(openid, msg_id, question, slot, writing, recovered)
            if answer is not None:
                reply = self._finish(openid, msg_id, question, answer, writing.run)
        except Lost:
            logger.warning("wechat %s msg %s: another run answers it now, this one stops", openid, msg_id)
        except Exception:
            logger.exception("wechat %s msg %s: answering failed", openid, msg_id)
        finally:
            self.waits.finish(key, reply)

    def _finish(self, openid: str, msg_id: str, question: str, answer: Answer, run: str) -> str:
        """Record the answer from where it was shown up to; push or owe the rest. The reply decided."""
        # Stored as it can be shown: a stored reply that began with NUL would pass for the marker
        # of a key's reply (dispatch.py) or of an owed reply (store/owed.py), and a follower can
        # have the model answer anything.
        written, shown, key = xml_text(answer.text), answer.shown, f"{openid}:{msg_id}"
        # Pushing a deferred answer keeps the follower's slot: a question queued behind it is
        # answered, and pushed, only after it, so the follower reads the answers in order.
        pushing = self.push_mode and self.client is not None
        while True:
            text = written[:shown] + texts.ANSWER_BLOCKED if answer.withheld else written
            last = "x" if answer.cut_off else "e" if shown else "t"
            parts = split_parts(text[shown:])
            finished = self.conv.finish_turn(
                openid, msg_id, question, text, answer.charge, parts, keep_slot=pushing, shown=shown, run=run,
                last=last, sent=lambda decided: self.waits.offer(key, decided),
            )  # fmt: skip
            if finished.retry < 0:
                break
            shown = finished.retry  # a delivery handed out more meanwhile: the rest starts there
        if pushing and finished.owed:
            try:
                self.pusher.push(openid, parts[-finished.owed :], last, MAX_PUSHES - answer.pushes)
            finally:
                self.conv.release(openid, msg_id)
        return finished.reply


def _count_in_window(deliveries: int) -> None:
    """An answer replied within the window, on /metrics both as an outcome and by the delivery that
    carried it (the console's 第 1/2/3 次推送内答复)."""
    metrics.count_delivery("in_window")
    metrics.count_answered(deliveries)
