"""The scripts behind a follower's model slot (one model call at a time): take it in order of arrival,
free it for the next message waiting (the turn that held it is recorded by bot/store/turn_lua.py).
Each is atomic over that follower's keys only (one hash slot); its KEYS and ARGV are named on its
first lines and in its type (bot/store/scripts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bot.store.scripts import Script

# A Lua function both CLAIM and BEGIN_TURN embed: take the follower's model slot for message `msg_id`
# (unless another message holds it) and answer {used today, history…}, or nil while it is taken.
TAKE_SLOT_LUA = """
local function take_slot(busy, history, day, msg_id, lease_ms)
  local holder = redis.call('GET', busy)
  if holder and holder ~= msg_id then return nil end
  redis.call('SET', busy, msg_id, 'PX', lease_ms)
  local answer = {tonumber(redis.call('HGET', day, 'used') or 0)}
  for _, item in ipairs(redis.call('LRANGE', history, 0, -1)) do table.insert(answer, item) end
  return answer
end
"""

# A Lua function BEGIN_TURN and FINISH_TURN embed: give a free slot to the first message waiting for
# it (`waiting`: a sorted set of message ids by arrival), reserved for `handoff_ms` until that message
# takes it, and tell the workers on `channel` which message it went to and which one is next. One
# PUBLISH, and only when a message waits. Answers the message it went to, or nil if none waits.
HAND_OVER_LUA = """
local function hand_over(busy, waiting, handoff_ms, channel, openid)
  local head = redis.call('ZPOPMIN', waiting)[1]
  if not head then return nil end
  redis.call('SET', busy, head, 'PX', handoff_ms)
  local after = redis.call('ZRANGE', waiting, 0, 0)[1] or ''
  redis.call('PUBLISH', channel, cjson.encode({openid, head, after, tonumber(handoff_ms)}))
  return head
end
"""

# A Lua function FINISH_TURN and RELEASE_SLOT embed (after HAND_OVER_LUA): message `msg_id` is through
# with the slot; free it, unless another message holds it now, for the first message waiting.
RELEASE_LUA = """
local function release(busy, waiting, msg_id, handoff_ms, channel, openid)
  redis.call('ZREM', waiting, msg_id)
  local holder = redis.call('GET', busy)
  if holder == msg_id then redis.call('DEL', busy) elseif holder then return end
  hand_over(busy, waiting, handoff_ms, channel, openid)
end
"""


@dataclass(frozen=True)
class Slot:
    """A follower's model slot, taken: today's allowance use and the history to ask with (contents,
    oldest first, the follower's at even positions and the bot's at odd ones)."""

    used_today: int
    history: list[str]

    @classmethod
    def decode(cls, taken: list) -> Slot:
        """From take_slot's answer: {used today, history…}."""
        used, *history = taken
        return cls(int(used), history)


class Begun(NamedTuple):
    slot: Slot | None  # None: queued behind the message that holds the slot
    hold_ms: int  # then: how long that hold has left (0 once the slot is taken)


class BeginTurn(Script):
    """Take the follower's model slot for a message that found it taken, in order of arrival: the slot
    is this message's if it was handed to it, or if it is free and no earlier message waits (a free
    slot goes to the first waiting, who was not woken: its worker died, or the holder's lease ran
    out). Otherwise the message is queued, once, by its claim's lease: set when it arrived (or was
    taken over), so the queue keeps the order the messages came in, whichever worker queues first;
    each try renews the queued claim's lease.
    Answers {'taken', used, history…} or {'queued', ms the current holder's lease or reservation has left}."""

    KEYS = ("busy", "history", "day", "waiting", "msg")
    ARGV = ("msg_id", "lease_ms", "now_ms", "handoff_ms", "channel", "openid")
    LUA = (
        TAKE_SLOT_LUA
        + HAND_OVER_LUA
        + """
local busy = KEYS[1]
local history = KEYS[2]
local day = KEYS[3]
local waiting = KEYS[4]
local msg = KEYS[5]
local msg_id = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])
local handoff_ms = ARGV[4]
local channel = ARGV[5]
local openid = ARGV[6]
local holder = redis.call('GET', busy)
if not holder then
  local first = redis.call('ZRANGE', waiting, 0, 0)[1]
  if first and first ~= msg_id then holder = hand_over(busy, waiting, handoff_ms, channel, openid) end
end
if not holder or holder == msg_id then
  redis.call('ZREM', waiting, msg_id)
  local answer = {'taken'}
  for _, item in ipairs(take_slot(busy, history, day, msg_id, lease_ms)) do table.insert(answer, item) end
  return answer
end
local arrived = redis.call('HGET', msg, 'lease') or (now_ms + lease_ms)
redis.call('ZADD', waiting, 'NX', arrived, msg_id)
redis.call('PEXPIRE', waiting, 2 * lease_ms)
-- Queued, its worker alive: its claim's lease is renewed (its place in the queue was set above, once),
-- so no delivery takes it over, and asks the model again, while it waits behind a long answer.
if redis.call('HGET', msg, 'status') == 'running' then redis.call('HSET', msg, 'lease', now_ms + lease_ms) end
return {'queued', redis.call('PTTL', busy)}
"""
    )

    @staticmethod
    def decode(answer: list) -> Begun:
        outcome, *rest = answer
        return Begun(Slot.decode(rest), 0) if outcome == "taken" else Begun(None, int(rest[0]))


class ReleaseSlot(Script):
    """Free the slot a finished message kept while its answer was pushed (FinishTurn's `keep_ms`): for
    the first message waiting, as FinishTurn frees it. Nothing if another message holds it now."""

    KEYS = ("busy", "waiting")
    ARGV = ("msg_id", "handoff_ms", "channel", "openid")
    LUA = (
        HAND_OVER_LUA
        + RELEASE_LUA
        + """
local busy = KEYS[1]
local waiting = KEYS[2]
local msg_id = ARGV[1]
local handoff_ms = ARGV[2]
local channel = ARGV[3]
local openid = ARGV[4]
release(busy, waiting, msg_id, handoff_ms, channel, openid)
"""
    )
