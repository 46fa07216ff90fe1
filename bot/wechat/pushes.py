"""Customer-service pushes (verified accounts): an answer, or what is left of it, sent as messages
once it outlived the first delivery's window. At most MAX_PUSHES per message the follower sent; what
cannot be pushed stays owed for their next message (继续)."""

from __future__ import annotations

import logging

import requests
from wechatpy.exceptions import WeChatClientException

from bot import metrics
from bot.store.conversation import Conversation, OwedReply
from bot.store.owed import PART_STATES
from bot.wechat import texts
from bot.wechat.client import SharedTokenClient

logger = logging.getLogger(__name__)

MAX_PUSHES = 5  # customer-service messages allowed per message the follower sent
_ENTRY_KINDS = {"t": PART_STATES["p"], "e": PART_STATES["e"], "x": PART_STATES["x"]}


class Pusher:
    def __init__(self, conversation: Conversation, client: SharedTokenClient | None):
        self.conv = conversation
        self.client = client  # WeChat's API (None: not configured, nothing is pushed)

    def push(self, openid: str, parts: list[str], last: str = "t", budget: int = MAX_PUSHES) -> None:
        """Send owed parts as customer-service messages (at most `budget`); what cannot be pushed stays
        owed. `last`: the outbox entry of the final part (t, or e/x: the answer complete / cut off)."""
        for i, part in enumerate(parts[: max(budget, 0)]):
            entry = last if i == len(parts) - 1 else "t"
            more = i == budget - 1 and len(parts) > budget
            if not self.send(openid, texts.owed_reply(OwedReply(part, more, False, False, _ENTRY_KINDS[entry]))):
                return
            self.conv.remove_owed(openid, part, entry)

    def send(self, openid: str, text: str) -> bool:
        """One customer-service message; False if WeChat refused it or could not be reached."""
        client = self.client
        if client is None:
            return False
        try:
            client.call(lambda: client.message.send_text(openid, text))
        except (WeChatClientException, requests.RequestException) as error:
            errcode = getattr(error, "errcode", None)
            logger.warning("wechat push to %s failed (errcode=%s): kept for their next message", openid, errcode)
            return False
        metrics.count_delivery("pushed")
        return True
