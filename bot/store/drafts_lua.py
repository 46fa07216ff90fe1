"""The scripts behind an answer shown while it is written (bot/store/drafts.py): each one step, atomic,
over one follower's keys only (one hash slot). A message being answered keeps, in its claim's hash,
`text` (the answer as far as it was last checkpointed), `run` (which model call writes it: a call that
redoes the message after its lease takes it over) and `shown` (characters of it the follower has been
handed). Every script that hands text out checks `shown` and `run` first, so no text is handed out
twice, and writes the text it hands out into the checkpoint, so a run that takes over after a worker
died finds at least what was shown.
"""

from __future__ import annotations

from typing import NamedTuple

from bot.store.owed import OWED_LUA
from bot.store.scripts import Script


class Saved(NamedTuple):
    state: str  # ok | lost (another run writes this answer now) | gone (the message is answered)
    shown: int  # characters the follower has been handed
    deferred: bool  # the message's reply is decided: what it still owes goes to the outbox


class Checkpoint(Script):
    """The writer's checkpoint: store the text so far and renew its claim's lease and the follower's
    model slot (a long answer outlives the lease a call is claimed with). With `to_shown` != `from_shown`
    it also moves `shown` (text pushed, or a push that failed given back), if it is still `from_shown`.
    Answers {state, shown, deferred}."""

    KEYS = ("msg", "busy")
    ARGV = ("run", "text", "now_ms", "lease_ms", "msg_id", "from_shown", "to_shown")
    LUA = """
local msg = KEYS[1]
local busy = KEYS[2]
local run = ARGV[1]
local text = ARGV[2]
local now_ms = tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[4])
local msg_id = ARGV[5]
local from_shown = tonumber(ARGV[6])
local to_shown = tonumber(ARGV[7])
local f = redis.call('HMGET', msg, 'status', 'run', 'shown', 'deferred')
if f[1] ~= 'running' then return {'gone', 0, 0} end
if f[2] and f[2] ~= run then return {'lost', 0, 0} end
local shown = tonumber(f[3] or 0)
if to_shown ~= from_shown and shown == from_shown then shown = to_shown end
redis.call('HSET', msg, 'run', run, 'text', text, 'shown', shown, 'lease', now_ms + lease_ms)
if redis.call('GET', busy) == msg_id then redis.call('PEXPIRE', busy, lease_ms) end
return {'ok', shown, f[4] == '1' and 1 or 0}
"""

    @staticmethod
    def decode(answer: list) -> Saved:
        state, shown, deferred = answer
        return Saved(state, int(shown), deferred == 1)


class Shown(NamedTuple):
    state: str  # shown (the reply is decided now) | reply (one was decided before) | stale (look again)
    reply: str  # the reply decided, as stored


class ShowPart(Script):
    """Decide a delivery's reply as the next `part` of an answer still being written (message
    `writer_id`, characters `from_shown` to `to_shown` of its `text`), if nothing was handed out of it
    since the caller looked: its own message's deferral (`defer`), or a 继续 while that answer is the
    oldest thing owed. An empty part says the answer is still being written. With `queue` this message's
    own answer is owed after the rest (a new question). Answers {state, reply}."""

    KEYS = ("msg", "writer", "outbox")
    ARGV = ("run", "text", "from_shown", "to_shown", "part", "defer", "queue", "retention_s", "msg_id")
    ARGV += ("writer_id",)
    LUA = (
        OWED_LUA
        + """
local msg = KEYS[1]
local writer = KEYS[2]
local outbox = KEYS[3]
local run = ARGV[1]
local text = ARGV[2]
local from_shown = tonumber(ARGV[3])
local to_shown = ARGV[4]
local part = ARGV[5]
local defer = ARGV[6] == '1'
local queue = ARGV[7] == '1'
local retention_s = ARGV[8]
local msg_id = ARGV[9]
local writer_id = ARGV[10]
local existing = redis.call('HGET', msg, 'reply')
if existing then return {'reply', existing} end
local f = redis.call('HMGET', writer, 'status', 'run', 'shown', 'text')
if f[1] ~= 'running' or (f[2] and f[2] ~= run) or tonumber(f[3] or 0) ~= from_shown then return {'stale', ''} end
if not defer and redis.call('LINDEX', outbox, 0) ~= 'm:' .. writer_id then return {'stale', ''} end
if part ~= '' then
  if not f[4] or #text > #f[4] then redis.call('HSET', writer, 'text', text) end
  redis.call('HSET', writer, 'run', run, 'shown', to_shown)
end
local reply = owed_reply(part ~= '' and 'i' or 'w', '0', queue and '1' or '0', part)
redis.call('HSET', msg, 'reply', reply)
if defer or queue then
  redis.call('HSET', msg, 'deferred', 1)
  redis.call('RPUSH', outbox, 'm:' .. msg_id)
  redis.call('EXPIRE', outbox, retention_s)
end
return {'shown', reply}
"""
    )

    @staticmethod
    def decode(answer: list) -> Shown:
        state, reply = answer
        return Shown(state, reply)


class Adopted(NamedTuple):
    state: str  # fresh (write it again) | resume (finish it from `text`) | gone (answered)
    text: str  # the checkpoint, when text was shown
    shown: int


class Adopt(Script):
    """A run that redoes a message after its lease ran out takes the answer over: if some of it was
    shown, it is finished from the checkpoint (a new answer would repeat what the follower read);
    else it is written afresh. Answers {state, text, shown}."""

    KEYS = ("msg",)
    ARGV = ("run",)
    LUA = """
local msg = KEYS[1]
local run = ARGV[1]
local f = redis.call('HMGET', msg, 'status', 'shown', 'text')
if f[1] ~= 'running' then return {'gone', '', 0} end
redis.call('HSET', msg, 'run', run)
if tonumber(f[2] or 0) > 0 then return {'resume', f[3] or '', tonumber(f[2])} end
redis.call('HDEL', msg, 'text')
return {'fresh', '', 0}
"""

    @staticmethod
    def decode(answer: list) -> Adopted:
        state, text, shown = answer
        return Adopted(state, text, int(shown))
