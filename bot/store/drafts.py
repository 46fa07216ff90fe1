"""Answers shown while the model writes them, across workers and hosts: the checkpoint of each one's
text in its message's claim, and the replies that hand parts of it out, each exactly once.

The writer (bot/wechat/writer.py) checkpoints its text at most about once a second once the first
delivery's window has passed (an answer ready within it costs nothing here), and a delivery on any
worker reads the checkpoint, cuts the next part (bot/wechat/parts.py) and hands it out with ShowPart,
which refuses if anything was handed out since it looked. Scripts: bot/store/drafts_lua.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from bot.store import keyspace
from bot.store.drafts_lua import Adopt, Adopted, Checkpoint, Saved, Shown, ShowPart
from bot.store.limits import now_ms

__all__ = ["Adopted", "Draft", "Drafts", "Saved", "Shown"]


@dataclass(frozen=True)
class Draft:
    """A message's answer as far as it was checkpointed, and its reply if one is decided."""

    reply: str | None
    text: str
    shown: int  # characters of `text` handed out
    run: str  # the model call writing it ('' before its first checkpoint)
    running: bool  # still being answered


class Drafts:
    def __init__(self, client: redis.Redis, lease_seconds: float, retention_seconds: int):
        self.redis = client
        self.lease_ms = int(lease_seconds * 1000)
        self.retention = retention_seconds
        self._checkpoint, self._show, self._adopt = Checkpoint(client), ShowPart(client), Adopt(client)

    def read(self, openid: str, msg_id: str) -> Draft:
        """The message's reply and checkpoint: what a delivery on another worker polls (one round trip)."""
        fields = ("reply", "text", "shown", "run", "status")
        reply, text, shown, run, status = self.redis.hmget(keyspace.message(openid, msg_id), fields)
        return Draft(reply, text or "", int(shown or 0), run or "", status == "running")

    def checkpoint(
        self, openid: str, msg_id: str, run: str, text: str, from_shown: int = 0, to_shown: int | None = None
    ) -> Saved:
        """Store the text so far, renew the lease; with `to_shown`, move what is shown if it is still
        `from_shown` (pushed text, or a failed push given back)."""
        return self._checkpoint.run(
            msg=keyspace.message(openid, msg_id), busy=keyspace.busy(openid), run=run, text=text,
            now_ms=now_ms(), lease_ms=self.lease_ms, msg_id=msg_id, from_shown=from_shown,
            to_shown=from_shown if to_shown is None else to_shown,
        )  # fmt: skip

    def show(
        self, openid: str, msg_id: str, writer_id: str, run: str, text: str, from_shown: int, part: str, *,
        defer: bool = False, queue: bool = False,
    ) -> Shown:  # fmt: skip
        """Decide message `msg_id`'s reply as `part`, the next of `writer_id`'s answer ('' to say it is
        still being written), unless anything of it was handed out since `from_shown` was read."""
        return self._show.run(
            msg=keyspace.message(openid, msg_id), writer=keyspace.message(openid, writer_id),
            outbox=keyspace.outbox(openid), run=run, text=text, from_shown=from_shown,
            to_shown=from_shown + len(part), part=part, defer="1" if defer else "0", queue="1" if queue else "0",
            retention_s=self.retention, msg_id=msg_id, writer_id=writer_id,
        )  # fmt: skip

    def adopt(self, openid: str, msg_id: str, run: str) -> Adopted:
        """A run redoing the message takes it over: resume from the checkpoint if any was shown."""
        return self._adopt(msg=keyspace.message(openid, msg_id), run=run)
