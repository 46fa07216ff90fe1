"""The script that ends a follower's turn with the model (bot/store/conversation.py's finish_turn): the
turn recorded in their history and on today's allowance, the reply decided or the answer owed, and the
model slot freed for the next message waiting (bot/store/slot_lua.py). Atomic over one follower's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.owed import OWED_LUA
from bot.store.scripts import Script
from bot.store.slot_lua import HAND_OVER_LUA, RELEASE_LUA
from bot.store.usage_lua import RECENT_LUA

# A follower's history is a Redis list of contents: even positions are theirs, odd ones the bot's.
# A turn is added as a whole pair, and the oldest pairs beyond the spec's budget are forgotten in the
# same step, so the list never holds an orphan question or two interleaved answers.
# A Lua function other scripts embed to add a turn in the same atomic step as their own work.
# Characters, not bytes: count the bytes that start a UTF-8 sequence (Python's len of the text).
APPEND_PAIR_LUA = """
local function chars(s) local _, n = string.gsub(s, '[^\\128-\\191]', '') return n end
local function append_pair(key, question, answer, budget, ttl)
  redis.call('RPUSH', key, question, answer)
  local items = redis.call('LRANGE', key, 0, -1)
  local total = 0
  for i = 1, #items do total = total + chars(items[i]) end
  local drop = 0
  while total > tonumber(budget) and drop < #items do
    total = total - chars(items[drop + 1]) - chars(items[drop + 2])
    drop = drop + 2
  end
  if drop >= #items then redis.call('DEL', key) return 0 end
  if drop > 0 then redis.call('LTRIM', key, drop, -1) end
  redis.call('EXPIRE', key, ttl)
  return #items - drop
end
"""


@dataclass(frozen=True)
class Finished:
    reply: str  # the reply decided for the message, as stored ('' if another run finished it first)
    owed: int  # parts newly owed: the rest of a long answer, or all of a deferred one
    retry: int = -1  # >= 0: nothing recorded, this many characters were handed out meanwhile: cut again


class FinishTurn(Script):
    """Record the turn and its charge on today's allowance (if `ok`) once, and free the slot: it goes
    to the next message waiting, if any. Then the reply: unless one was decided already (the answer
    was deferred), it is the first part (an owed reply if more follow) and the others are owed; a deferred
    answer's parts take its placeholder's place in the outbox instead, and with `keep_ms` > 0 the slot
    stays held that long more (until ReleaseSlot), so the answers it is about to push reach the
    follower before the next question's. The claim drops its question
    (no run will redo it now) and is kept `done_s` more, for retries, replays and a late second run.
    Answers {reply as stored, newly owed}; reply '' if another run finished this message first (its
    claim may be gone by now: a run outlived by done_s records nothing either) or writes it now (`run`
    is not the claim's), and {'retry', shown} if text was handed out since `shown` (the parts are the
    answer from there on; the last one's entry is `last`: t, or e/x for an answer shown as it was
    written / cut off)."""

    KEYS = ("msg", "history", "busy", "outbox", "day", "waiting", "days")
    ARGV = ("msg_id", "ok", "question", "answer", "budget", "idle_s", "retention_s", "charge", "day_ttl")
    ARGV += ("handoff_ms", "channel", "openid", "done_s", "keep_ms", "shown", "run", "last", "today", "oldest_day")
    ARGV += ("history_ttl",)
    TAIL = "parts"
    LUA = (
        APPEND_PAIR_LUA
        + HAND_OVER_LUA
        + RELEASE_LUA
        + OWED_LUA
        + RECENT_LUA
        + """
local msg = KEYS[1]
local history = KEYS[2]
local busy = KEYS[3]
local outbox = KEYS[4]
local day = KEYS[5]
local waiting = KEYS[6]
local days = KEYS[7]
local msg_id = ARGV[1]
local ok = ARGV[2] == '1'
local question = ARGV[3]
local answer = ARGV[4]
local budget = ARGV[5]
local idle_s = ARGV[6]
local retention_s = ARGV[7]
local charge = ARGV[8]
local day_ttl = ARGV[9]
local handoff_ms = ARGV[10]
local channel = ARGV[11]
local openid = ARGV[12]
local done_s = ARGV[13]
local keep_ms = tonumber(ARGV[14])
local shown = tonumber(ARGV[15])
local run = ARGV[16]
local last = ARGV[17]
local today = ARGV[18]
local oldest_day = ARGV[19]
local history_ttl = ARGV[20]
local parts = {unpack(ARGV, 21)}
-- No claim: it was answered (by a run that redid it) long enough ago to have expired.
local f = redis.call('HMGET', msg, 'status', 'run', 'shown')
if not f[1] or f[1] == 'done' then
  release(busy, waiting, msg_id, handoff_ms, channel, openid)
  return {'', 0}
end
-- Another run writes this answer now (this one's lease ran out): it records it, and holds the slot.
if f[2] and f[2] ~= run then return {'', 0} end
-- Text was handed out since the caller cut its parts: it cuts them again from there.
if tonumber(f[3] or 0) ~= shown then return {'retry', tonumber(f[3] or 0)} end
if ok then
  append_pair(history, question, answer, budget, idle_s)
  redis.call('HINCRBY', day, 'used', charge)
  redis.call('HINCRBY', day, 'messages', 1)
  redis.call('EXPIRE', day, day_ttl)
  tally_day(days, today, tonumber(charge), oldest_day, history_ttl)  -- the portal's 30-day chart
end
redis.call('HSET', msg, 'status', 'done')
redis.call('HDEL', msg, 'question', 'text')
redis.call('EXPIRE', msg, done_s)
local deferred = redis.call('HGET', msg, 'deferred') == '1'
if deferred and keep_ms > 0 and redis.call('GET', busy) == msg_id then
  redis.call('PEXPIRE', busy, keep_ms)
else
  release(busy, waiting, msg_id, handoff_ms, channel, openid)
end
-- Each owed part is t:<text>; the last one says how the answer ended (last: t, or e shown as it was
-- written, or x cut off), and a lone part is the reply in that state.
local function entry(i) return ((i == #parts) and last or 't') .. ':' .. parts[i] end
if not deferred then
  local reply = parts[1]
  if #parts > 1 then
    reply = owed_reply('p', '1', '0', parts[1])
    for i = 2, #parts do redis.call('RPUSH', outbox, entry(i)) end
    redis.call('EXPIRE', outbox, retention_s)
  elseif last ~= 't' then
    reply = owed_reply(last, '0', '0', parts[1])
  end
  redis.call('HSET', msg, 'reply', reply)
  return {reply, #parts - 1}
end
local placeholder, rebuilt = 'm:' .. msg_id, {}
for _, item in ipairs(redis.call('LRANGE', outbox, 0, -1)) do
  if item == placeholder then
    for i = 1, #parts do table.insert(rebuilt, entry(i)) end
  else
    table.insert(rebuilt, item)
  end
end
redis.call('DEL', outbox)
if #rebuilt > 0 then redis.call('RPUSH', outbox, unpack(rebuilt)) redis.call('EXPIRE', outbox, retention_s) end
return {redis.call('HGET', msg, 'reply') or '', #parts}
"""
    )

    @staticmethod
    def decode(answer: list) -> Finished:
        reply, owed = answer
        return Finished("", 0, int(owed)) if reply == "retry" else Finished(reply, int(owed))
