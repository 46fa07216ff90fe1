"""A follower's messages on WeChat, exactly once across workers: claims, answers, replies, outbox.

Per message (`bot:{u:<openid>}:msg:<MsgId>`, a hash): `status` running|done, `deliveries` (how often
WeChat sent it), `lease` (ms; a claim whose lease has passed may be taken over), `question`,
`answer`, `reply` (what the follower was answered; every later delivery gets the same), `deferred`
(the answer goes to the outbox). Per follower: `busy` (one model call at a time) and `outbox`
(entries `t:<text>` ready to send, or `m:<MsgId>` for an answer still being written, in order).
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
from bot.store.history import APPEND_PAIR_LUA
from bot.store.limits import WINDOW_LUA, WINDOW_MS, now_ms, request_member
from bot.store.quota import DAY_TTL

# KEYS: msg, outbox, busy, history, blocked, rate, day. ARGV: now_ms, lease_ms, retention_s, question,
# ask ('1': a new question for the model), rpm, window_ms, member, msg_id.
# Counts one delivery; the first claims the message. For a new question it also admits the follower
# (block, rate) and, if their model slot is free, takes it and reads their history and today's use.
# Answers {status, deliveries, reply, recovered, owed, refusal (0 | -1 blocked | -2 too fast),
# wait_ms, used (-1: the slot is taken), history…}.
_CLAIM = (
    WINDOW_LUA
    + """
local now = tonumber(ARGV[1])
local owed = redis.call('LLEN', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
  local f = redis.call('HMGET', KEYS[1], 'status', 'reply', 'lease')
  local recovered = 0
  if f[1] == 'running' and not f[2] and tonumber(f[3] or 0) < now then
    redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[2]))
    recovered = 1
  end
  return {f[1] or '', deliveries, f[2] or '', recovered, owed, 0, 0, -1}
end
redis.call('HSET', KEYS[1], 'status', 'running', 'deliveries', 1, 'lease', now + tonumber(ARGV[2]),
  'question', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '1' then return {'new', 1, '', 0, owed, 0, 0, -1} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {'new', 1, '', 0, owed, -1, 0, -1} end
local limit, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local wait = wait_ms(KEYS[6], limit, now, window)
if wait > 0 then return {'new', 1, '', 0, owed, -2, wait, -1} end
admit(KEYS[6], limit, now, window, ARGV[8])
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[9] then return {'new', 1, '', 0, owed, 0, 0, -1} end
redis.call('SET', KEYS[3], ARGV[9], 'PX', ARGV[2])
local answer = {'new', 1, '', 0, owed, 0, 0, tonumber(redis.call('HGET', KEYS[7], 'used') or 0)}
for _, item in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do table.insert(answer, item) end
return answer
"""
)

# KEYS: busy, history, day. ARGV: msg_id, lease_ms. Take the follower's model slot for a message
# that found it taken: {used, history…}, or nil while another message holds it.
_BEGIN_TURN = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local answer = {tonumber(redis.call('HGET', KEYS[3], 'used') or 0)}
for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do table.insert(answer, item) end
return answer
"""

# KEYS: msg, history, busy, outbox, day. ARGV: msg_id, ok, question, answer, budget, idle_s,
# retention_s, charge, day_ttl, more, parts…. Records the answer, the turn and its charge on today's
# allowance (if ok) once, and frees the slot. Then the reply: unless one was decided already (the
# answer was deferred), it is the first part (with `more` if others follow) and the others are owed;
# a deferred answer's parts take its placeholder's place in the outbox instead.
# Answers {reply, newly_owed}; reply '' if another run finished this message first.
_FINISH_TURN = (
    APPEND_PAIR_LUA
    + """
local function release() if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end end
if redis.call('HGET', KEYS[1], 'status') == 'done' then release() return {'', 0} end
if ARGV[2] == '1' then
  append_pair(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
  redis.call('HINCRBY', KEYS[5], 'used', ARGV[8])
  redis.call('HINCRBY', KEYS[5], 'messages', 1)
  redis.call('EXPIRE', KEYS[5], ARGV[9])
end
redis.call('HSET', KEYS[1], 'status', 'done', 'answer', ARGV[4])
release()
local first = 11
if redis.call('HGET', KEYS[1], 'deferred') ~= '1' then
  local reply = ARGV[first]
  if #ARGV > first then
    reply = reply .. ARGV[10]
    for i = first + 1, #ARGV do redis.call('RPUSH', KEYS[4], 't:' .. ARGV[i]) end
    redis.call('EXPIRE', KEYS[4], ARGV[7])
  end
  redis.call('HSET', KEYS[1], 'reply', reply)
  return {reply, #ARGV - first}
end
local placeholder, rebuilt = 'm:' .. ARGV[1], {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  if entry == placeholder then
    for i = first, #ARGV do table.insert(rebuilt, 't:' .. ARGV[i]) end
  else
    table.insert(rebuilt, entry)
  end
end
redis.call('DEL', KEYS[4])
if #rebuilt > 0 then redis.call('RPUSH', KEYS[4], unpack(rebuilt)) redis.call('EXPIRE', KEYS[4], ARGV[7]) end
return {redis.call('HGET', KEYS[1], 'reply') or '', #ARGV - first + 1}
"""
)

# KEYS: msg, outbox. ARGV: reply, retention_s. The first reply decided wins.
_REPLY = """
local existing = redis.call('HGET', KEYS[1], 'reply')
if existing then return existing end
redis.call('HSET', KEYS[1], 'reply', ARGV[1])
return ARGV[1]
"""

# KEYS: msg, outbox. ARGV: reply, msg_id, retention_s. Give up waiting: answer `reply` now and queue
# the answer for later. Answers {'reply', text} (decided before: the answer was ready) or {'deferred', text}.
_DEFER = """
local f = redis.call('HMGET', KEYS[1], 'reply')
if f[1] then return {'reply', f[1]} end
redis.call('HSET', KEYS[1], 'reply', ARGV[1], 'deferred', 1)
redis.call('RPUSH', KEYS[2], 'm:' .. ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'deferred', ARGV[1]}
"""

# KEYS: msg, outbox. ARGV: retention_s, queue_this ('1': the message is a new question whose answer
# goes to the outbox), msg_id, more, waiting, queued_note, nothing. Hands out the oldest thing the
# follower is owed as this message's reply. Answers {reply, head} (head: `m:<id>` still waited on).
_COLLECT = """
local existing = redis.call('HGET', KEYS[1], 'reply')
if existing then return {existing, ''} end
local head = redis.call('LINDEX', KEYS[2], 0)
local reply, waiting = ARGV[7], ''
if head and string.sub(head, 1, 2) == 'm:' then
  reply, waiting = ARGV[5], head
elseif head then
  redis.call('LPOP', KEYS[2])
  reply = string.sub(head, 3)
  if redis.call('LLEN', KEYS[2]) > 0 then reply = reply .. ARGV[4] end
end
if ARGV[2] == '1' then
  reply = reply .. ARGV[6]
  redis.call('HSET', KEYS[1], 'deferred', 1)
  redis.call('RPUSH', KEYS[2], 'm:' .. ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[1], 'reply', reply)
return {reply, waiting}
"""

# KEYS: msg. ARGV: now_ms, lease_ms. Take over a message whose worker died: its question, or nil.
_RECOVER = """
local f = redis.call('HMGET', KEYS[1], 'status', 'lease', 'question')
if f[1] ~= 'running' or tonumber(f[2] or 0) >= tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'lease', tonumber(ARGV[1]) + tonumber(ARGV[2]))
return f[3]
"""


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
        clock: Callable[[], float] = time.time,
    ):  # fmt: skip
        self.redis = client
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.retention = retention_seconds
        self.idle = idle_seconds
        self.rpm = rpm
        scripts = (_CLAIM, _BEGIN_TURN, _FINISH_TURN, _REPLY, _DEFER, _COLLECT, _RECOVER)
        self._claim, self._begin, self._finish, self._reply, self._defer, self._collect, self._recover = (
            client.register_script(s) for s in scripts
        )

    def claim(self, openid: str, msg_id: str, question: str = "", ask: bool = False) -> Claim:
        """Count one delivery; the first claims the message, and for a new question (`ask`) admits the
        follower and takes their model slot if it is free. One round trip, on any worker."""
        now = now_ms(self.clock)
        keys = [
            keyspace.message(openid, msg_id), keyspace.outbox(openid), keyspace.busy(openid),
            keyspace.history(openid), keyspace.follower_blocked(openid), keyspace.follower_rate(openid),
            keyspace.follower_day(openid, today(self.clock())),
        ]  # fmt: skip
        args = [now, self.lease_ms, self.retention, question, "1" if ask else "0", self.rpm, WINDOW_MS]
        status, deliveries, reply, recovered, owed, refusal, wait, used, *history = self._claim(
            keys=keys, args=[*args, request_member(now), msg_id]
        )
        return Claim(
            status, int(deliveries), reply, recovered == 1, int(owed),
            {0: None, -1: Failure.BLOCKED, -2: Failure.RATE_LIMITED}[refusal], int(wait),
            _turn(used, history) if used >= 0 else None,
        )  # fmt: skip

    def begin_turn(self, openid: str, msg_id: str) -> Turn | None:
        """Take the follower's single model slot for `msg_id`, or None while another message has it."""
        keys = [keyspace.busy(openid), keyspace.history(openid), keyspace.follower_day(openid, today())]
        answer = self._begin(keys=keys, args=[msg_id, self.lease_ms])
        return None if answer is None else _turn(answer[0], answer[1:])

    def finish_turn(
        self, openid: str, msg_id: str, question: str, answer: str, charge: int | None, parts: list[str], more: str
    ) -> Finished:
        """Record the answer and, if `charge` is not None, the turn and its tokens; free the slot; decide
        the reply unless it was deferred. One round trip."""
        keys = [
            keyspace.message(openid, msg_id), keyspace.history(openid), keyspace.busy(openid),
            keyspace.outbox(openid), keyspace.follower_day(openid, today(self.clock())),
        ]  # fmt: skip
        ok = charge is not None
        args = [msg_id, "1" if ok else "0", question, answer, MAX_CHARS, self.idle, self.retention, charge or 0]
        reply, owed = self._finish(keys=keys, args=[*args, DAY_TTL, more, *parts])
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
        return int(self.redis.hget(keyspace.follower_day(openid, today()), "used") or 0)

    def forget(self, openid: str) -> None:
        """Drop the follower's history and everything they are owed (an admin's /reset)."""
        self.redis.delete(keyspace.history(openid), keyspace.outbox(openid))

    def remove_owed(self, openid: str, text: str) -> None:
        """An owed part was delivered another way (pushed)."""
        self.redis.lrem(keyspace.outbox(openid), 1, "t:" + text)
