"""The scripts behind a message's claim and reply (bot/store/conversation.py): each one step, atomic,
over one follower's keys only (one hash slot); its KEYS and ARGV are named on its first lines and in
its type (bot/store/scripts.py). No script words a reply: a reply made of what the follower is owed
is stored as what it was made of (bot/store/owed.py) and worded in Python when read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from bot.errors import Failure
from bot.store.limits import WINDOW_LUA
from bot.store.owed import OWED_LUA, OwedReply
from bot.store.scripts import Script
from bot.store.slot_lua import TAKE_SLOT_LUA, Slot


class ClaimStatus(StrEnum):
    NEW = "new"  # this delivery claimed the message
    RUNNING = "running"
    DONE = "done"


_STATUSES = {status.value: status for status in ClaimStatus}  # a dict: quicker than ClaimStatus(value)
_REFUSALS = {"": None, "blocked": Failure.BLOCKED, "rate_limited": Failure.RATE_LIMITED}


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    deliveries: int
    reply: str  # '' until the reply is decided
    recovered: bool  # the previous claimant's lease ran out: this delivery runs the message again
    owed: int  # entries in the follower's outbox
    refusal: Failure | None = None  # a new question refused: BLOCKED or RATE_LIMITED
    slot: Slot | None = None  # a new question's model slot, if it was free


class ClaimMessage(Script):
    """Count one delivery; the first claims the message. Every new message, whatever it is, counts once
    toward the follower's rate (their retries find the claim); one over the rate is refused and stores
    nothing. A new question (`ask`) also checks the block and, if the follower's model slot is free,
    takes it and reads their history and today's use. Only a question put to the model keeps its text
    (to redo the call) and the long retention; anything else, a blocked follower's question too, is
    answered at once and kept `settled_s`, for retries and replays.
    Answers {status, deliveries, reply, recovered, owed, refusal ('' | 'blocked' | 'rate_limited')},
    followed by {used today, history…} when it took the slot."""

    KEYS = ("msg", "outbox", "busy", "history", "block", "rate", "day")
    ARGV = ("now_ms", "lease_ms", "retention_s", "question", "ask", "rpm", "window_ms", "member", "msg_id")
    ARGV += ("settled_s",)
    LUA = (
        WINDOW_LUA
        + TAKE_SLOT_LUA
        + """
local msg = KEYS[1]
local outbox = KEYS[2]
local busy = KEYS[3]
local history = KEYS[4]
local block = KEYS[5]
local rate = KEYS[6]
local day = KEYS[7]
local now_ms = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local retention_s = ARGV[3]
local question = ARGV[4]
local ask = ARGV[5] == '1'
local rpm = tonumber(ARGV[6])
local window_ms = tonumber(ARGV[7])
local member = ARGV[8]
local msg_id = ARGV[9]
local settled_s = ARGV[10]
local owed = redis.call('LLEN', outbox)
if redis.call('EXISTS', msg) == 1 then
  local deliveries = redis.call('HINCRBY', msg, 'deliveries', 1)
  local f = redis.call('HMGET', msg, 'status', 'reply', 'lease')
  local recovered = 0
  if f[1] == 'running' and not f[2] and tonumber(f[3] or 0) < now_ms then
    redis.call('HSET', msg, 'lease', now_ms + lease_ms)
    recovered = 1
  end
  return {f[1] or 'done', deliveries, f[2] or '', recovered, owed, ''}
end
if wait_ms(rate, rpm, now_ms, window_ms) > 0 then return {'new', 0, '', 0, owed, 'rate_limited'} end
admit(rate, rpm, now_ms, window_ms, member)
local refused = ask and redis.call('EXISTS', block) == 1
local asked = ask and not refused
redis.call('HSET', msg, 'status', 'running', 'deliveries', 1, 'lease', now_ms + lease_ms)
if asked then redis.call('HSET', msg, 'question', question) end
redis.call('EXPIRE', msg, asked and retention_s or settled_s)
if refused then return {'new', 1, '', 0, owed, 'blocked'} end
local answer = {'new', 1, '', 0, owed, ''}
if asked then
  for _, item in ipairs(take_slot(busy, history, day, msg_id, lease_ms) or {}) do table.insert(answer, item) end
end
return answer
"""
    )

    @staticmethod
    def decode(answer: list) -> Claim:
        status, deliveries, reply, recovered, owed, refusal, *slot = answer
        return Claim(
            _STATUSES[status], int(deliveries), reply, recovered == 1, int(owed), _REFUSALS[refusal],
            Slot.decode(slot) if slot else None,
        )  # fmt: skip


class DecideReply(Script):
    """The first reply decided wins: answers the one decided."""

    KEYS = ("msg",)
    ARGV = ("reply",)
    LUA = """
local msg = KEYS[1]
local reply = ARGV[1]
local existing = redis.call('HGET', msg, 'reply')
if existing then return existing end
redis.call('HSET', msg, 'reply', reply)
return reply
"""


class Deferral(StrEnum):
    DEFERRED = "deferred"  # `reply` now, the answer owed for later
    READY = "reply"  # a reply was decided before: the answer was ready


class Deferred(NamedTuple):
    kind: Deferral
    reply: str  # the reply decided for the message, as stored


class DeferAnswer(Script):
    """Give up waiting: answer `reply` now and owe the answer (a placeholder in the outbox), unless a
    reply was decided before. Answers {kind, the reply decided}."""

    KEYS = ("msg", "outbox")
    ARGV = ("reply", "msg_id", "retention_s")
    LUA = """
local msg = KEYS[1]
local outbox = KEYS[2]
local reply = ARGV[1]
local msg_id = ARGV[2]
local retention_s = ARGV[3]
local existing = redis.call('HGET', msg, 'reply')
if existing then return {'reply', existing} end
redis.call('HSET', msg, 'reply', reply, 'deferred', 1)
redis.call('RPUSH', outbox, 'm:' .. msg_id)
redis.call('EXPIRE', outbox, retention_s)
return {'deferred', reply}
"""

    @staticmethod
    def decode(answer: list) -> Deferred:
        kind, reply = answer
        return Deferred(Deferral(kind), reply)


class Collected(NamedTuple):
    reply: str  # the message's reply: as stored (CollectOwed), as shown (Conversation.collect)
    owed: OwedReply | None  # what the reply is made of, if it is made of what is owed
    writing: str  # the MsgId of the answer still being written at the head of the outbox, or ''


class CollectOwed(Script):
    """Hand out the oldest thing the follower is owed as this message's reply, and with `queue_this`
    (a new question whose answer goes to the outbox) owe this message's answer after the rest.
    With `peek`, an answer still being written at the outbox's head decides nothing: the caller shows
    as much of it as has been written (bot/store/drafts.py). Answers {the reply as stored ('' when it
    peeked), the MsgId still being written at the outbox's head or ''}."""

    KEYS = ("msg", "outbox")
    ARGV = ("retention_s", "queue_this", "msg_id", "peek")
    LUA = (
        OWED_LUA
        + """
local msg = KEYS[1]
local outbox = KEYS[2]
local retention_s = ARGV[1]
local queue_this = ARGV[2] == '1'
local msg_id = ARGV[3]
local peek = ARGV[4] == '1'
local existing = redis.call('HGET', msg, 'reply')
if existing then return {existing, ''} end
local head = redis.call('LINDEX', outbox, 0)
local state, more, part, writing = 'n', '0', '', ''
if head and string.sub(head, 1, 2) == 'm:' then
  if peek then return {'', string.sub(head, 3)} end
  state, writing = 'w', string.sub(head, 3)
elseif head then
  redis.call('LPOP', outbox)
  -- t: a part; e: the last part of an answer shown as it was written; x: of one cut off
  state, part = string.sub(head, 1, 1), string.sub(head, 3)
  if state == 't' then state = 'p' end
  if redis.call('LLEN', outbox) > 0 then more = '1' end
end
if queue_this then
  redis.call('HSET', msg, 'deferred', 1)
  redis.call('RPUSH', outbox, 'm:' .. msg_id)
  redis.call('EXPIRE', outbox, retention_s)
end
local reply = owed_reply(state, more, queue_this and '1' or '0', part)
redis.call('HSET', msg, 'reply', reply)
return {reply, writing}
"""
    )

    @staticmethod
    def decode(answer: list) -> Collected:
        stored, writing = answer
        return Collected(stored, OwedReply.decode(stored), writing)


class RecoverMessage(Script):
    """Take over a message whose worker died (its lease has passed): answers its question, or nil."""

    KEYS = ("msg",)
    ARGV = ("now_ms", "lease_ms")
    LUA = """
local msg = KEYS[1]
local now_ms = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local f = redis.call('HMGET', msg, 'status', 'lease', 'question')
if f[1] ~= 'running' or tonumber(f[2] or 0) >= now_ms then return false end
redis.call('HSET', msg, 'lease', now_ms + lease_ms)
return f[3]
"""
