"""An answer still being written, shown to the deliveries that come for it (passive mode):

- at a deferral (BOT_WECHAT_PARTIAL): `last` shows it when the last delivery's window closes, `first`
  at every delivery's window once there is a whole sentence; `off` never (【正在思考…】 as before);
- on 继续 while it is the oldest thing owed: what was written since, waiting within the delivery's
  window for a whole sentence if nothing new has come.

The text comes from this worker's Writing when the model call runs here, else from the checkpoint in
Redis (bot/store/drafts.py); ShowPart hands each part out once, whichever worker asks.
"""

from __future__ import annotations

import time

from bot import metrics
from bot.store.conversation import Conversation
from bot.store.drafts import Draft, Drafts
from bot.wechat.parts import next_part
from bot.wechat.waits import POLL_SECONDS, LocalWaits
from bot.wechat.writer import Writing

PARTIAL_SETTINGS = ("last", "first", "off")


class Partials:
    def __init__(self, conversation: Conversation, drafts: Drafts, waits: LocalWaits, setting: str):
        self.conv, self.drafts, self.waits = conversation, drafts, waits
        self.setting = setting  # BOT_WECHAT_PARTIAL
        self.on = setting != "off"

    def writing(self, openid: str, msg_id: str) -> Writing | None:
        call = self.waits.get(f"{openid}:{msg_id}")
        return None if call is None else call.writing

    def at_deadline(self, openid: str, msg_id: str, last: bool, draft: Draft | None) -> str | None:
        """The reply that shows the message's answer as far as it is written, now that this delivery's
        window closes; None if there is none to show (or the setting shows none at this delivery)."""
        if not self.on or not (last or self.setting == "first"):
            return None
        text, run, shown = self._source(openid, msg_id, draft)
        part = next_part(text[shown:], final=False, whole_sentences=not last)
        if not part:
            return None
        result = self.drafts.show(openid, msg_id, msg_id, run, text, shown, part, defer=True)
        if result.state == "stale":
            return None
        if result.state == "shown":
            self.waits.keep_for_redis(f"{openid}:{msg_id}")
            metrics.count_delivery("partial")
        return self.conv.shown(result.reply)

    def collect(self, openid: str, msg_id: str, writer_id: str, queue: bool, deadline: float) -> str | None:
        """The reply to a 继续 (or, with `queue`, a new question) while `writer_id`'s answer is still being
        written: what was written since, in whole sentences, waiting until `deadline` for some if none
        has come (a new question does not wait). None once that answer is finished: collect it as owed."""
        while True:
            draft = self.drafts.read(openid, writer_id)
            if not draft.running:
                return None
            text, run, shown = self._source(openid, writer_id, draft)
            closing = time.monotonic() >= deadline
            part = next_part(text[shown:], final=False, whole_sentences=not closing)
            if part or queue or closing:
                result = self.drafts.show(openid, msg_id, writer_id, run, text, shown, part, queue=queue)
                if result.state != "stale":
                    if part and result.state == "shown":
                        metrics.count_delivery("continue")
                    return self.conv.shown(result.reply)
                continue  # handed out meanwhile, or just finished: look again
            self._wait(openid, writer_id, min(deadline, time.monotonic() + 1.0))

    def _source(self, openid: str, msg_id: str, draft: Draft | None) -> tuple[str, str, int]:
        """(text, the run writing it, characters shown): this worker's own text when the call runs here
        (fresher than the checkpoint), else the checkpoint's."""
        writing = self.writing(openid, msg_id)
        if writing is not None and (draft is None or draft.run in ("", writing.run)):
            return writing.text, writing.run, draft.shown if draft is not None else 0
        if draft is None:
            return "", "", 0
        return draft.text, draft.run, draft.shown

    def _wait(self, openid: str, msg_id: str, until: float) -> None:
        """Until more may have been written: woken by the local call, else after a checkpoint's time."""
        writing = self.writing(openid, msg_id)
        remaining = until - time.monotonic()
        if writing is not None:
            writing.wait(remaining)
        else:
            time.sleep(max(0.0, min(remaining, 2 * POLL_SECONDS)))
