"""A follower's messages on WeChat, exactly once across workers: claims, answers, replies, outbox.

Per message (`bot:{u:<openid>}:msg:<MsgId>`, a hash): `status` running|done, `deliveries` (how often
WeChat sent it), `lease` (ms; a claim whose lease has passed may be taken over), `question` (while a
model call may still need redoing), `reply` (what the follower was answered; every later delivery
gets the same), `deferred` (the answer goes to the outbox). A running question's claim is kept for
BOT_REPLY_RETENTION_SECONDS; once answered, and for anything answered at once, only as long as
WeChat's retries and replays of its signed delivery can come (11 minutes).

Per follower: `busy` (one model call at a time), `busy:waiting` (the messages waiting for it, in
order of arrival; bot/store/wakeups.py) and `outbox` (entries `t:<text>` ready to send, or
`m:<MsgId>` for an answer still being written, in order; neither leaves this package).
Every step is one Lua script over one follower's keys, all in one hash slot (conversation_lua.py,
slot_lua.py, turn_lua.py). A reply made of what the follower is owed is stored as what it was made of
and worded when read, by the `word` the WeChat door gives: no wording goes into a script.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import redis

from bot.ids import today
from bot.store import keyspace
from bot.store.conversation_lua import (
    Claim,
    ClaimMessage,
    Collected,
    CollectOwed,
    DecideReply,
    DeferAnswer,
    Deferred,
    RecoverMessage,
)
from bot.store.keyspace import DAY_TTL
from bot.store.limits import WINDOW_MS, now_ms, request_member
from bot.store.owed import OWED, OwedReply
from bot.store.slot_lua import BeginTurn, Begun, ReleaseSlot, Slot
from bot.store.turn_lua import Finished, FinishTurn
from bot.store.usage import follower_history
from bot.store.wakeups import CHANNEL, waiting

__all__ = ["Claim", "Collected", "Conversation", "Deferred", "Finished", "OwedReply", "Slot"]

# How long a freed slot stays reserved for the message it was handed to: it takes the slot within
# milliseconds once woken; if its worker is gone, the next message waiting gets it after this.
HANDOFF_MS = 5000


class Conversation:
    def __init__(
        self, client: redis.Redis, lease_seconds: float, retention_seconds: int, idle_seconds: int, rpm: int, *,
        word: Callable[[OwedReply], str], history_chars: int, clock: Callable[[], float] = time.time,
        settled_seconds: int = 660,
    ):  # fmt: skip
        """`word`: how a reply made of what is owed reads (the door's texts); `history_chars`: the
        most characters of history kept, oldest turns forgotten first (the dialogue's budget)."""
        self.redis = client
        self.word = word
        self.history_chars = history_chars
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.retention = retention_seconds
        # A message answered at once is only asked for again by WeChat's retries (15 s) and by replays
        # of its signed delivery (refused after 10 minutes): its claim need not outlive those.
        self.settled = min(settled_seconds, retention_seconds)
        # An answered question's claim likewise, but long enough that a second run (one that redid
        # the message after its lease) still finds it answered and records nothing twice.
        self.done = min(max(settled_seconds, 2 * int(lease_seconds)), retention_seconds)
        self.idle = idle_seconds
        self.rpm = rpm
        self.handoff_ms = HANDOFF_MS
        self._claim, self._begin, self._finish = ClaimMessage(client), BeginTurn(client), FinishTurn(client)
        self._reply, self._defer, self._collect = DecideReply(client), DeferAnswer(client), CollectOwed(client)
        self._recover, self._release = RecoverMessage(client), ReleaseSlot(client)

    def shown(self, stored: str) -> str:
        """A stored reply as the follower reads it (the same on every delivery)."""
        owed = OwedReply.decode(stored)
        return stored if owed is None else self.word(owed)

    def claim(self, openid: str, msg_id: str, question: str = "", ask: bool = False) -> Claim:
        """Count one delivery; the first claims the message if the follower's rate allows (else
        `refusal` is RATE_LIMITED and nothing is stored), and for a new question (`ask`) checks their
        block and takes their model slot if it is free. One round trip, on any worker."""
        now = now_ms(self.clock)
        claim = self._claim.run(
            msg=keyspace.message(openid, msg_id), outbox=keyspace.outbox(openid), busy=keyspace.busy(openid),
            history=keyspace.history(openid), block=keyspace.follower_blocked(openid),
            rate=keyspace.follower_rate(openid), day=keyspace.follower_day(openid, today(self.clock())),
            now_ms=now, lease_ms=self.lease_ms, retention_s=self.retention, question=question if ask else "",
            ask="1" if ask else "0", rpm=self.rpm, window_ms=WINDOW_MS, member=request_member(now), msg_id=msg_id,
            settled_s=self.settled, idempotent=False,
        )  # fmt: skip
        if claim.reply.startswith(OWED):
            return replace(claim, reply=self.shown(claim.reply))
        return claim

    def begin_turn(self, openid: str, msg_id: str) -> Begun:
        """Take the follower's single model slot for `msg_id` if it is this message's turn (messages
        take it in order of arrival); else queue it: (None, ms the current hold has left)."""
        begun = self._begin(
            busy=keyspace.busy(openid), history=keyspace.history(openid),
            day=keyspace.follower_day(openid, today(self.clock())), waiting=waiting(openid),
            msg=keyspace.message(openid, msg_id), msg_id=msg_id, lease_ms=self.lease_ms, now_ms=now_ms(self.clock),
            handoff_ms=self.handoff_ms, channel=CHANNEL, openid=openid,
        )  # fmt: skip
        return begun if begun.slot is not None or begun.hold_ms > 0 else Begun(None, self.lease_ms)

    def finish_turn(
        self, openid: str, msg_id: str, question: str, answer: str, charge: int | None, parts: list[str],
        sent: Callable[[str], None] = lambda reply: None, keep_slot: bool = False, *, shown: int = 0,
        run: str = "", last: str = "t",
    ) -> Finished:  # fmt: skip
        """Record the answer and, if `charge` is not None, the turn and its tokens; free the slot (for the
        next message waiting, woken); decide the reply unless it was deferred: the first of `parts`,
        the others owed. One round trip; the reply is answered as shown ('' if another run finished).
        `keep_slot`: a deferred answer keeps the slot (for its lease at most) until release(), so what
        is pushed of it reaches the follower before anything the next question is answered.

        `sent(reply)` is called once the script is on its way to Redis, with the reply it decides
        unless the message was deferred, so a delivery waiting for it can answer a round trip
        sooner. Nothing the follower does next needs the script to have run by then: a new question
        waits for the model slot the script frees, and anything else needs the reply read first.

        An answer shown as it was written: `parts` are the answer after its first `shown` characters,
        `run` the call that wrote it, `last` how it ended (t, e: complete, x: cut off); `retry` >= 0 if
        more was shown meanwhile."""
        # What the script stores, as read: a lone part as it is, the first of several as an owed reply.
        kind = {"e": "complete", "x": "cut_off"}.get(last, "part")
        if len(parts) > 1:
            reply = self.word(OwedReply(parts[0], True, writing=False, queued=False))
        else:
            reply = parts[0] if last == "t" else self.word(OwedReply(parts[0], False, False, False, kind))
        finished = self._finish.run(
            *parts, msg=keyspace.message(openid, msg_id), history=keyspace.history(openid),
            busy=keyspace.busy(openid), outbox=keyspace.outbox(openid),
            day=keyspace.follower_day(openid, today(self.clock())), waiting=waiting(openid),
            msg_id=msg_id, ok="1" if charge is not None else "0", question=question, answer=answer,
            budget=self.history_chars, idle_s=self.idle, retention_s=self.retention, charge=charge or 0,
            day_ttl=DAY_TTL, handoff_ms=self.handoff_ms, channel=CHANNEL, openid=openid, done_s=self.done,
            keep_ms=self.lease_ms if keep_slot else 0, shown=shown, run=run, last=last,
            sent=lambda: sent(reply) if not shown else None, **follower_history(openid, today(self.clock())),
        )  # fmt: skip
        if finished.reply.startswith(OWED):
            return replace(finished, reply=self.shown(finished.reply))
        return finished

    def release(self, openid: str, msg_id: str) -> None:
        """Free the slot a deferred answer kept (finish_turn's `keep_slot`) for the next message waiting."""
        self._release(
            busy=keyspace.busy(openid), waiting=waiting(openid), msg_id=msg_id, handoff_ms=self.handoff_ms,
            channel=CHANNEL, openid=openid,
        )  # fmt: skip

    def decided_reply(self, openid: str, msg_id: str) -> str | None:
        """The reply decided for a message, if any (a delivery on another worker polls this)."""
        stored = self.redis.hget(keyspace.message(openid, msg_id), "reply")
        return None if stored is None else self.shown(stored)

    def reply(self, openid: str, msg_id: str, text: str) -> str:
        """Decide the message's reply (the first decision wins) and answer the one decided."""
        return self.shown(self._reply(msg=keyspace.message(openid, msg_id), reply=text))

    def defer(self, openid: str, msg_id: str, text: str) -> Deferred:
        """Reply `text` now and owe the answer: ('deferred', text), or ('reply', decided) if it was ready."""
        kind, stored = self._defer(
            msg=keyspace.message(openid, msg_id), outbox=keyspace.outbox(openid), reply=text, msg_id=msg_id,
            retention_s=self.retention,
        )  # fmt: skip
        return Deferred(kind, self.shown(stored))

    def collect(self, openid: str, msg_id: str, queue_this: bool, peek: bool = False) -> Collected:
        """The message's reply is the oldest thing owed; with `queue_this` its own answer is owed next.
        `peek`: an answer still being written at the head decides nothing (reply '', `writing` set)."""
        collected = self._collect(
            msg=keyspace.message(openid, msg_id), outbox=keyspace.outbox(openid), retention_s=self.retention,
            queue_this="1" if queue_this else "0", msg_id=msg_id, peek="1" if peek else "0",
        )  # fmt: skip
        return collected._replace(reply=self.shown(collected.reply))

    def recover(self, openid: str, msg_id: str) -> str | None:
        """Take over a message whose lease ran out: its question, or None if it is alive or done."""
        return self._recover(msg=keyspace.message(openid, msg_id), now_ms=now_ms(self.clock), lease_ms=self.lease_ms)

    def used_today(self, openid: str) -> int:
        """Tokens the follower's chat has used today (China time)."""
        return int(self.redis.hget(keyspace.follower_day(openid, today(self.clock())), "used") or 0)

    def clear_history(self, openid: str) -> None:
        """Start the follower's dialogue afresh (the menu's RESET_CHAT)."""
        self.redis.delete(keyspace.history(openid))

    def forget(self, openid: str) -> None:
        """Drop the follower's history and everything they are owed (an admin's /reset)."""
        self.redis.delete(keyspace.history(openid), keyspace.outbox(openid))

    def remove_owed(self, openid: str, text: str, entry: str = "t") -> None:
        """An owed part was delivered another way (pushed); `entry`: t, or e/x for an answer's last."""
        self.redis.lrem(keyspace.outbox(openid), 1, f"{entry}:{text}")
