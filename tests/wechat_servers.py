"""WeChat's servers as the service meets them: each message delivered with a 5-second deadline,
and delivered again, up to three times in all, while no reply comes in time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

from bot.wechat import simulate, texts


@dataclass
class Outcome:
    attempts: list[str] = field(default_factory=list)  # 'timeout' or 'answered', per delivery
    reply: str | None = None  # what the follower sees (None: WeChat shows its failure text)
    answered_after: float = 0.0  # seconds from the first delivery to the reply
    reply_took: float = 0.0  # seconds the answering delivery took


class WeChatServers:
    def __init__(self, urls: list[str], account: simulate.Account, timeout: float = 5.0, deliveries: int = 3):
        self.urls, self.account, self.timeout, self.deliveries = urls, account, timeout, deliveries

    def send(self, xml: str) -> Outcome:
        """Deliver like WeChat; delivery i goes to urls[i % len(urls)] (another host or worker)."""
        outcome, started = Outcome(), time.monotonic()
        for attempt in range(self.deliveries):
            params, body = simulate.sign(self.account, xml, "safe")
            sent = time.monotonic()
            try:
                response = requests.post(
                    self.urls[attempt % len(self.urls)] + "/wechat", params=params, data=body, timeout=self.timeout
                )
            except requests.Timeout:
                outcome.attempts.append("timeout")
                continue
            outcome.attempts.append("answered")
            assert response.status_code == 200, response.text
            reply = simulate.open_reply(self.account, response.content, encrypted=True)
            outcome.reply = "" if reply is None else reply["Content"]
            outcome.answered_after = time.monotonic() - started
            outcome.reply_took = time.monotonic() - sent
            return outcome
        return outcome

    def say(self, openid: str, text: str, msg_id: int) -> Outcome:
        return self.send(simulate.message_xml(self.account, openid, "text", Content=text, MsgId=msg_id))


NOTES = (texts.STILL_WRITING, texts.COMPLETE, texts.CUT_OFF)  # what ends a streamed part


def body(reply: str) -> tuple[str, str]:
    """A reply's text without its note, and the note (after an answer's last part: more is owed)."""
    reply = reply.removesuffix(texts.NEXT_ANSWER)
    for note in NOTES:
        if reply.endswith(note):
            return reply.removesuffix(note), note
    return reply, ""
