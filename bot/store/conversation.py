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
from dataclasses import dataclass

import redis

from bot.chat.dialogue import MAX_CHARS, ROLES, Turn
from bot.store import keyspace
from bot.store.history import APPEND_PAIR_LUA

# KEYS: msg, outbox. ARGV: now_ms, lease_ms, retention_s, question.
# Answers {status, deliveries, reply, recovered, outbox_length}.
_CLAIM = """
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local deliveries = redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
  local f = redis.call('HMGET', KEYS[1], 'status', 'reply', 'lease')
  local recovered = 0
  if f[1] == 'running' and not f[2] and tonumber(f[3] or 0) < now then
    redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[2]))
    recovered = 1
  end
  return {f[1] or '', deliveries, f[2] or '', recovered, redis.call('LLEN', KEYS[2])}
end
redis.call('HSET', KEYS[1], 'status', 'running', 'deliveries', 1, 'lease', now + tonumber(ARGV[2]),
  'question', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'new', 1, '', 0, redis.call('LLEN', KEYS[2])}
"""

# KEYS: busy, history. ARGV: msg_id, lease_ms. The history if the follower's turn is ours, else nil.
_BEGIN_TURN = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('LRANGE', KEYS[2], 0, -1)
"""

# KEYS: msg, history, busy, outbox. ARGV: msg_id, ok, question, answer, budget, idle_s, retention_s,
# parts…. Records the answer (and the turn, if ok) once; a deferred answer takes its place in the
# outbox. Answers 1 if deferred, 0 if not, -1 if another run finished this message first.
_FINISH_TURN = (
    APPEND_PAIR_LUA
    + """
local function release() if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end end
if redis.call('HGET', KEYS[1], 'status') == 'done' then release() return -1 end
if ARGV[2] == '1' then append_pair(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) end
redis.call('HSET', KEYS[1], 'status', 'done', 'answer', ARGV[4])
release()
if redis.call('HGET', KEYS[1], 'deferred') ~= '1' then return 0 end
local placeholder, rebuilt = 'm:' .. ARGV[1], {}
for _, entry in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  if entry == placeholder then
    for i = 8, #ARGV do table.insert(rebuilt, 't:' .. ARGV[i]) end
  else
    table.insert(rebuilt, entry)
  end
end
redis.call('DEL', KEYS[4])
if #rebuilt > 0 then redis.call('RPUSH', KEYS[4], unpack(rebuilt)) redis.call('EXPIRE', KEYS[4], ARGV[7]) end
return 1
"""
)

# KEYS: msg, outbox. ARGV: reply, retention_s, rest…. The first reply decided wins; the rest of a
# long answer waits in the outbox.
_REPLY = """
local existing = redis.call('HGET', KEYS[1], 'reply')
if existing then return existing end
redis.call('HSET', KEYS[1], 'reply', ARGV[1])
if #ARGV > 2 then
  for i = 3, #ARGV do redis.call('RPUSH', KEYS[2], 't:' .. ARGV[i]) end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return ARGV[1]
"""

# KEYS: msg, outbox. ARGV: reply, msg_id, retention_s. Give up waiting: answer `reply` now and queue
# the answer for later. Answers {'reply', text} (decided before), {'ready', ''} or {'deferred', text}.
_DEFER = """
local f = redis.call('HMGET', KEYS[1], 'reply', 'status')
if f[1] then return {'reply', f[1]} end
if f[2] == 'done' then return {'ready', ''} end
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
class Claim:
    status: str  # new | running | done
    deliveries: int
    reply: str  # '' until the reply is decided
    recovered: bool  # the previous claimant's lease ran out: this delivery runs the message again
    owed: int  # entries in the follower's outbox


@dataclass(frozen=True)
class Progress:
    status: str
    answer: str | None
    reply: str | None


def _now_ms() -> int:
    return int(time.time() * 1000)


class Conversation:
    def __init__(self, client: redis.Redis, lease_seconds: float, retention_seconds: int, idle_seconds: int):
        self.redis = client
        self.lease_ms = int(lease_seconds * 1000)
        self.retention = retention_seconds
        self.idle = idle_seconds
        scripts = (_CLAIM, _BEGIN_TURN, _FINISH_TURN, _REPLY, _DEFER, _COLLECT, _RECOVER)
        self._claim, self._begin, self._finish, self._reply, self._defer, self._collect, self._recover = (
            client.register_script(s) for s in scripts
        )

    def claim(self, openid: str, msg_id: str, question: str = "") -> Claim:
        """Count one delivery of a message; the first delivery claims it (atomically, on any worker)."""
        keys = [keyspace.message(openid, msg_id), keyspace.outbox(openid)]
        status, deliveries, reply, recovered, owed = self._claim(
            keys=keys, args=[_now_ms(), self.lease_ms, self.retention, question]
        )
        return Claim(status, int(deliveries), reply, recovered == 1, int(owed))

    def begin_turn(self, openid: str, msg_id: str) -> list[Turn] | None:
        """Take the follower's single model slot for `msg_id`: their history, or None if it is taken."""
        items = self._begin(keys=[keyspace.busy(openid), keyspace.history(openid)], args=[msg_id, self.lease_ms])
        return None if items is None else [Turn(ROLES[i % 2], c) for i, c in enumerate(items)]

    def finish_turn(self, openid: str, msg_id: str, question: str, answer: str, ok: bool, parts: list[str]) -> int:
        """Record the answer (and the turn, if ok) once and free the slot: 1 deferred, 0 not, -1 duplicate."""
        keys = [
            keyspace.message(openid, msg_id),
            keyspace.history(openid),
            keyspace.busy(openid),
            keyspace.outbox(openid),
        ]
        args = [msg_id, "1" if ok else "0", question, answer, MAX_CHARS, self.idle, self.retention, *parts]
        return int(self._finish(keys=keys, args=args))

    def reply(self, openid: str, msg_id: str, text: str, rest: list[str] = ()) -> str:
        """Decide the message's reply (first decision wins); `rest` of a long answer goes to the outbox."""
        keys = [keyspace.message(openid, msg_id), keyspace.outbox(openid)]
        return self._reply(keys=keys, args=[text, self.retention, *rest])

    def defer(self, openid: str, msg_id: str, text: str) -> tuple[str, str]:
        """Reply `text` now and owe the answer: ('deferred', text), ('reply', decided) or ('ready', '')."""
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
        return self._recover(keys=[keyspace.message(openid, msg_id)], args=[_now_ms(), self.lease_ms])

    def progress(self, openid: str, msg_id: str) -> Progress:
        status, answer, reply = self.redis.hmget(keyspace.message(openid, msg_id), "status", "answer", "reply")
        return Progress(status or "", answer, reply)

    def remove_owed(self, openid: str, text: str) -> None:
        """An owed part was delivered another way (pushed)."""
        self.redis.lrem(keyspace.outbox(openid), 1, "t:" + text)

    def forget(self, openid: str) -> None:
        """Drop what the follower is owed (an admin's /reset)."""
        self.redis.delete(keyspace.outbox(openid))
