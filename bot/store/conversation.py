"""A follower's messages on WeChat, exactly once across workers: claims, answers, replies, outbox.

Per message (`bot:{u:<openid>}:msg:<MsgId>`, a hash): `status` running|done, `deliveries` (how often
WeChat sent it), `lease` (ms; a claim whose lease has passed may be taken over), `question` (while a
model call may still need redoing), `reply` (what the follower was answered; every later delivery
gets the same), `deferred` (the answer goes to the outbox). A running question's claim is kept for
BOT_REPLY_RETENTION_SECONDS; once answered, and for anything answered at once, only as long as
WeChat's retries and replays of its signed delivery can come (11 minutes).

Per follower: `busy` (one model call at a time), `busy:waiting` (the messages waiting for it, in
order of arrival; bot/store/wakeups.py) and `outbox` (entries `t:<text>` ready to send, or
`m:<MsgId>` for an answer still being written, in order).
Every step is one Lua script over one follower's keys, all in one hash slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.chat.dialogue import MAX_CHARS, ROLES
from bot.chat.dialogue import Turn as DialogueTurn
from bot.errors import Failure
from bot.store import keyspace
from bot.store.apikeys import today
from bot.store.connection import run_script
from bot.store.conversation_lua import BEGIN_TURN, CLAIM, COLLECT, DEFER, FINISH_TURN, RECOVER, REPLY
from bot.store.keyspace import DAY_TTL
from bot.store.limits import WINDOW_MS, now_ms, request_member
from bot.store.wakeups import CHANNEL, waiting

# How long a freed slot stays reserved for the message it was handed to: it takes the slot within
# milliseconds once woken; if its worker is gone, the next message waiting gets it after this.
HANDOFF_MS = 5000


@dataclass(frozen=True)
class Turn:
    """A follower's model slot, taken: today's allowance use and the history to ask with."""

    used_today: int
    history: list[DialogueTurn]


@dataclass(frozen=True)
class Finished:
    reply: str  # the reply decided for the message ('' if another run finished it first)
    owed: int  # parts newly owed: the rest of a long answer, or all of a deferred one


@dataclass(frozen=True)
class Claim:
    status: str  # new | running | done
    deliveries: int
    reply: str  # '' until the reply is decided
    recovered: bool  # the previous claimant's lease ran out: this delivery runs the message again
    owed: int  # entries in the follower's outbox
    refusal: Failure | None = None  # a new question refused: BLOCKED or RATE_LIMITED
    wait_ms: int = 0
    turn: Turn | None = None  # a new question's slot, if it was free


def _turn(used: int, items: list[str]) -> Turn:
    return Turn(int(used), [DialogueTurn(ROLES[i % 2], c) for i, c in enumerate(items)])


class Conversation:
    def __init__(
        self, client: redis.Redis, lease_seconds: float, retention_seconds: int, idle_seconds: int, rpm: int,
        clock: Callable[[], float] = time.time, settled_seconds: int = 660,
    ):  # fmt: skip
        self.redis = client
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
        scripts = (CLAIM, BEGIN_TURN, FINISH_TURN, REPLY, DEFER, COLLECT, RECOVER)
        self._claim, self._begin, self._finish, self._reply, self._defer, self._collect, self._recover = (
            client.register_script(s) for s in scripts
        )

    def claim(self, openid: str, msg_id: str, question: str = "", ask: bool = False) -> Claim:
        """Count one delivery; the first claims the message if the follower's rate allows (else
        `refusal` is RATE_LIMITED and nothing is stored), and for a new question (`ask`) checks their
        block and takes their model slot if it is free. One round trip, on any worker."""
        now = now_ms(self.clock)
        keys = [
            keyspace.message(openid, msg_id), keyspace.outbox(openid), keyspace.busy(openid),
            keyspace.history(openid), keyspace.follower_blocked(openid), keyspace.follower_rate(openid),
            keyspace.follower_day(openid, today(self.clock())),
        ]  # fmt: skip
        args = [now, self.lease_ms, self.retention, question if ask else "", "1" if ask else "0", self.rpm, WINDOW_MS]
        status, deliveries, reply, recovered, owed, refusal, wait, used, *history = run_script(
            self.redis, self._claim, keys, [*args, request_member(now), msg_id, self.settled], idempotent=False
        )
        return Claim(
            status, int(deliveries), reply, recovered == 1, int(owed),
            {0: None, -1: Failure.BLOCKED, -2: Failure.RATE_LIMITED}[refusal], int(wait),
            _turn(used, history) if used >= 0 else None,
        )  # fmt: skip

    def begin_turn(self, openid: str, msg_id: str) -> tuple[Turn | None, int]:
        """Take the follower's single model slot for `msg_id` if it is this message's turn (messages
        take it in order of arrival); else queue it: (None, ms the current hold has left)."""
        keys = [
            keyspace.busy(openid), keyspace.history(openid), keyspace.follower_day(openid, today(self.clock())),
            waiting(openid), keyspace.message(openid, msg_id),
        ]  # fmt: skip
        args = [msg_id, self.lease_ms, now_ms(self.clock), self.handoff_ms, CHANNEL, openid]
        answer = self._begin(keys=keys, args=args)
        if answer[0] == -1:
            return None, answer[1] if answer[1] > 0 else self.lease_ms
        return _turn(answer[0], answer[1:]), 0

    def finish_turn(
        self, openid: str, msg_id: str, question: str, answer: str, charge: int | None, parts: list[str], more: str,
        sent: Callable[[str], None] = lambda reply: None,
    ) -> Finished:  # fmt: skip
        """Record the answer and, if `charge` is not None, the turn and its tokens; free the slot (for the
        next message waiting, woken); decide the reply unless it was deferred. One round trip.

        `sent(reply)` is called once the script is on its way to Redis, with the reply it decides
        unless the message was deferred, so a delivery waiting for it can answer a round trip
        sooner. Nothing the follower does next needs the script to have run by then: a new question
        waits for the model slot the script frees, and anything else needs the reply read first."""
        keys = [
            keyspace.message(openid, msg_id), keyspace.history(openid), keyspace.busy(openid),
            keyspace.outbox(openid), keyspace.follower_day(openid, today(self.clock())), waiting(openid),
        ]  # fmt: skip
        ok = charge is not None
        args = [msg_id, "1" if ok else "0", question, answer, MAX_CHARS, self.idle, self.retention, charge or 0]
        args += [DAY_TTL, more, self.handoff_ms, CHANNEL, openid, self.done]
        decided = parts[0] + more if len(parts) > 1 else parts[0]
        reply, owed = run_script(self.redis, self._finish, keys, [*args, *parts], lambda: sent(decided))
        return Finished(reply, int(owed))

    def decided_reply(self, openid: str, msg_id: str) -> str | None:
        """The reply decided for a message, if any (a delivery on another worker polls this)."""
        return self.redis.hget(keyspace.message(openid, msg_id), "reply")

    def reply(self, openid: str, msg_id: str, text: str) -> str:
        """Decide the message's reply (the first decision wins) and answer the one decided."""
        keys = [keyspace.message(openid, msg_id), keyspace.outbox(openid)]
        return self._reply(keys=keys, args=[text, self.retention])

    def defer(self, openid: str, msg_id: str, text: str) -> tuple[str, str]:
        """Reply `text` now and owe the answer: ('deferred', text), or ('reply', decided) if it was ready."""
        keys = [keyspace.message(openid, msg_id), keyspace.outbox(openid)]
        kind, reply = self._defer(keys=keys, args=[text, msg_id, self.retention])
        return kind, reply

    def collect(self, openid: str, msg_id: str, queue_this: bool, texts: tuple[str, str, str, str]) -> tuple[str, str]:
        """The message's reply is the oldest thing owed (texts: more, waiting, queued note, nothing)."""
        keys = [keyspace.message(openid, msg_id), keyspace.outbox(openid)]
        reply, waiting = self._collect(keys=keys, args=[self.retention, "1" if queue_this else "0", msg_id, *texts])
        return reply, waiting

    def recover(self, openid: str, msg_id: str) -> str | None:
        """Take over a message whose lease ran out: its question, or None if it is alive or done."""
        return self._recover(keys=[keyspace.message(openid, msg_id)], args=[now_ms(self.clock), self.lease_ms])

    def used_today(self, openid: str) -> int:
        """Tokens the follower's chat has used today (China time)."""
        return int(self.redis.hget(keyspace.follower_day(openid, today(self.clock())), "used") or 0)

    def clear_history(self, openid: str) -> None:
        """Start the follower's dialogue afresh (the menu's RESET_CHAT)."""
        self.redis.delete(keyspace.history(openid))

    def forget(self, openid: str) -> None:
        """Drop the follower's history and everything they are owed (an admin's /reset)."""
        self.redis.delete(keyspace.history(openid), keyspace.outbox(openid))

    def remove_owed(self, openid: str, text: str) -> None:
        """An owed part was delivered another way (pushed)."""
        self.redis.lrem(keyspace.outbox(openid), 1, "t:" + text)
