"""A WeChat message's one model call, read as it is written: the question waits its turn for the
follower's model slot, passes moderation, and its answer is streamed into a Writer (bot/wechat/writer.py)
that checkpoints, shows and pushes it while the courier (bot/wechat/courier.py) brings it to deliveries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.chat.core import ChatService
from bot.chat.dialogue import ROLES, Turn
from bot.chat.routing import route_note
from bot.chat.streams import on_activity
from bot.chat.usage import estimate_tokens
from bot.errors import ChatError, Failure
from bot.safety.guard import ContentGuard
from bot.safety.moderation import Verdict
from bot.store.conversation import Conversation, Slot
from bot.store.drafts import Drafts
from bot.store.quota import TurnAllowance
from bot.store.wakeups import EXPIRY_MARGIN, Wakeups
from bot.wechat import texts
from bot.wechat.pushes import MAX_PUSHES, Pusher
from bot.wechat.writer import CHECKPOINT_SECONDS, Writer, Writing

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3  # a question waiting for the model slot renews its claim this often per lease

_FAILURE_TEXTS = {
    Failure.UPSTREAM_TIMEOUT: texts.UPSTREAM_TIMEOUT,
    Failure.QUOTA_EXHAUSTED: texts.DAILY_CAP,
    Failure.RATE_LIMITED: texts.RATE_LIMITED,
    Failure.SERVICE_UNAVAILABLE: texts.BUSY,
}


@dataclass(frozen=True)
class Answer:
    text: str
    charge: int | None  # tokens to charge; None: the call failed and records no turn
    cut_off: bool = False  # the model stopped after writing `text`
    shown: int = 0  # characters of it handed out while it was written
    pushes: int = 0  # customer-service pushes sent while it was written
    # A banned word in it and BOT_SENSITIVE_ANSWER_ACTION=block: `text` stops before the word, and
    # the answer is what was handed out of it (nothing, when it was ready in time) and the notice.
    withheld: bool = False


class Answerer:
    """Asks the model one message's question, in the follower's turn, and reads the answer as it comes."""

    def __init__(
        self, conversation: Conversation, chat: ChatService, wakeups: Wakeups, drafts: Drafts, pusher: Pusher, *,
        window: float, daily_tokens: int, guard: ContentGuard | None,
    ):  # fmt: skip
        self.conv = conversation
        self.chat = chat
        self.wakeups = wakeups  # wakes a question waiting for the follower's model slot
        self.drafts = drafts  # answers' checkpoints while they are written
        self.pusher = pusher  # customer-service pushes (None: passive mode, or no WeChat API)
        self.window = window  # seconds a delivery waits for the reply (BOT_WECHAT_WINDOW)
        self.daily_tokens = daily_tokens  # a follower's free chat tokens per day
        self.guard = guard  # moderation of the question, banned words in the answer

    def answer(
        self, openid: str, msg_id: str, question: str, slot: Slot | None, writing: Writing, recovered: bool
    ) -> Answer | None:
        """The answer, read as the model writes it (None: another run finished the message)."""
        if recovered:  # its worker died: what was shown of its answer must not be shown again
            adopted = self.drafts.adopt(openid, msg_id, writing.run)
            if adopted.state == "gone":
                return None
            if adopted.state == "resume":
                return Answer(adopted.text, estimate_tokens(adopted.text), cut_off=True, shown=adopted.shown)
        slot = slot or self._wait_for_turn(openid, msg_id)
        if slot is None:
            return Answer(texts.BUSY, None)
        refusal = self._moderation_refusal(openid, question)
        if refusal is not None:
            return Answer(refusal, None)
        started, payer = time.monotonic(), TurnAllowance(self.daily_tokens, slot.used_today)
        dialogue = [Turn(ROLES[i % 2], content) for i, content in enumerate(slot.history)]
        writer = self._writer(openid, msg_id, writing)
        try:
            with on_activity(writer.alive):  # reasoning too renews the lease (writer.py)
                written = writer.write(self.chat.stream([*dialogue, Turn("user", question)], payer))
        except ChatError as error:
            logger.info("wechat %s msg %s failed: %s%s", openid, msg_id, error.failure.name, route_note())
            return Answer(_FAILURE_TEXTS.get(error.failure, texts.UPSTREAM_FAILED), None)
        if written.cut_off:
            logger.info("wechat %s msg %s: the model stopped after %d characters", openid, msg_id, len(written.text))
        # With several upstreams the line names the one that answered (and any that failed): INFO.
        note = route_note()
        level = logging.INFO if note else logging.DEBUG
        logger.log(level, "wechat %s msg %s answered in %.1fs%s", openid, msg_id, time.monotonic() - started, note)
        return Answer(written.text, payer.charged, written.cut_off, written.shown, written.pushes, written.withheld)

    def _writer(self, openid: str, msg_id: str, writing: Writing) -> Writer:
        """The answer's writer: banned words masked or blocked in the text as it arrives, before any
        of it is checkpointed, shown, pushed or recorded."""
        screen = self.guard.stream_screen("wechat", f"openid={openid}", "") if self.guard else None
        return Writer(
            self.drafts, openid, msg_id, writing, time.monotonic() + max(self.window, CHECKPOINT_SECONDS),
            push=(lambda text: self.pusher.send(openid, text)) if self.pusher else None,
            pushes_allowed=MAX_PUSHES, screen=screen,
        )  # fmt: skip

    def _moderation_refusal(self, openid: str, question: str) -> str | None:
        """The reply instead of an answer if moderation refuses the question (its time is the window's)."""
        verdict = self.guard.moderate([question], "wechat", f"openid={openid}") if self.guard else Verdict.CLEAN
        if verdict is Verdict.FLAGGED:
            return texts.QUESTION_REFUSED
        return texts.MODERATION_UNAVAILABLE if verdict is Verdict.UNAVAILABLE else None

    def _wait_for_turn(self, openid: str, msg_id: str) -> Slot | None:
        """The follower's model slot once the messages before this one are through: woken, not polling.

        It waits as long as the slot is held: a holder renews its hold while its answer is written,
        and a dead one's hold runs out, and then the slot is this message's or the next one's. Each
        try renews this message's claim, so it looks again well within its lease; it gives up (None)
        only after the claim's retention, when the message can no longer be answered anyway."""
        lease = self.conv.lease_ms / 1000
        deadline = time.monotonic() + max(lease, self.conv.retention)
        with self.wakeups.waiting(openid, msg_id) as waiter:
            while True:
                slot, hold_ms = self.conv.begin_turn(openid, msg_id)
                if slot is not None or time.monotonic() >= deadline:
                    return slot
                renew = time.monotonic() + lease / RENEWALS_PER_LEASE
                waiter.sleep(min(deadline, renew, time.monotonic() + hold_ms / 1000 + EXPIRY_MARGIN))
