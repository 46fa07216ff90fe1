"""The Lua scripts behind bot/store/conversation.py: each one step of a follower's conversation,
atomic, over that follower's keys only (one hash slot). Keys and arguments are listed above each."""

from bot.store.limits import WINDOW_LUA

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

# KEYS: msg, outbox, busy, history, blocked, rate, day. ARGV: now_ms, lease_ms, retention_s, question,
# ask ('1': a new question for the model), rpm, window_ms, member, msg_id, settled_s.
# Counts one delivery; the first claims the message. Every new message, whatever it is, counts once
# toward the follower's rate (their retries find the claim); one over the rate is refused and stores
# nothing. A new question also checks the block and, if the follower's model slot is free, takes it
# and reads their history and today's use. Only a question put to the model keeps its text (to redo
# the call) and the long retention; anything else, a blocked follower's question too, is answered at
# once and kept `settled_s`, for retries and replays.
# Answers {status, deliveries, reply, recovered, owed, refusal (0 | -1 blocked | -2 too fast),
# wait_ms, used (-1: the slot is taken), history…}.
CLAIM = (
    WINDOW_LUA
    + TAKE_SLOT_LUA
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
local ask = ARGV[5] == '1'
local limit, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local wait = wait_ms(KEYS[6], limit, now, window)
if wait > 0 then return {'new', 0, '', 0, owed, -2, wait, -1} end
admit(KEYS[6], limit, now, window, ARGV[8])
local blocked = ask and redis.call('EXISTS', KEYS[5]) == 1
local asked = ask and not blocked
redis.call('HSET', KEYS[1], 'status', 'running', 'deliveries', 1, 'lease', now + tonumber(ARGV[2]))
if asked then redis.call('HSET', KEYS[1], 'question', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], asked and ARGV[3] or ARGV[10])
if blocked then return {'new', 1, '', 0, owed, -1, 0, -1} end
if not ask then return {'new', 1, '', 0, owed, 0, 0, -1} end
local slot = take_slot(KEYS[3], KEYS[4], KEYS[7], ARGV[9], ARGV[2])
if not slot then return {'new', 1, '', 0, owed, 0, 0, -1} end
local answer = {'new', 1, '', 0, owed, 0, 0}
for _, item in ipairs(slot) do table.insert(answer, item) end
return answer
"""
)

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

# KEYS: busy, history, day, waiting, msg. ARGV: msg_id, lease_ms, now_ms, handoff_ms, channel, openid.
# Take the follower's model slot for a message that found it taken, in order of arrival: the slot is
# this message's if it was handed to it, or if it is free and no earlier message waits (a free slot
# goes to the first waiting, who was not woken: its worker died, or the holder's lease ran out).
# Answers {used, history…}, or {-1, ms the current holder's lease or reservation has left} after
# queuing the message, once, by its claim's lease: set when it arrived (or was taken over), so the
# queue keeps the order the messages came in, whichever worker gets to queue its message first.
BEGIN_TURN = (
    TAKE_SLOT_LUA
    + HAND_OVER_LUA
    + """
local holder = redis.call('GET', KEYS[1])
if not holder then
  local first = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
  if first and first ~= ARGV[1] then holder = hand_over(KEYS[1], KEYS[4], ARGV[4], ARGV[5], ARGV[6]) end
end
if not holder or holder == ARGV[1] then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return take_slot(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
end
local arrived = redis.call('HGET', KEYS[5], 'lease') or (tonumber(ARGV[3]) + tonumber(ARGV[2]))
redis.call('ZADD', KEYS[4], 'NX', arrived, ARGV[1])
redis.call('PEXPIRE', KEYS[4], 2 * tonumber(ARGV[2]))
return {-1, redis.call('PTTL', KEYS[1])}
"""
)

# KEYS: msg, history, busy, outbox, day, waiting. ARGV: msg_id, ok, question, answer, budget, idle_s,
# retention_s, charge, day_ttl, more, handoff_ms, channel, openid, done_s, parts…. Records the turn
# and its charge on today's allowance (if ok) once, and frees the slot: it goes to the next
# message waiting, if any. Then the reply: unless one was decided already (the answer was deferred),
# it is the first part (with `more` if others follow) and the others are owed; a deferred answer's
# parts take its placeholder's place in the outbox instead. The claim drops its question (no run
# will redo it now) and is kept `done_s` more, for retries, replays and a late second run.
# Answers {reply, newly_owed}; reply '' if another run finished this message first (its claim may be
# gone by now: a run outlived by done_s records nothing either).
FINISH_TURN = (
    APPEND_PAIR_LUA
    + HAND_OVER_LUA
    + """
local function release()
  redis.call('ZREM', KEYS[6], ARGV[1])
  local holder = redis.call('GET', KEYS[3])
  if holder == ARGV[1] then redis.call('DEL', KEYS[3]) elseif holder then return end
  hand_over(KEYS[3], KEYS[6], ARGV[11], ARGV[12], ARGV[13])
end
-- No claim: it was answered (by a run that redid it) long enough ago to have expired.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'done' then release() return {'', 0} end
if ARGV[2] == '1' then
  append_pair(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
  redis.call('HINCRBY', KEYS[5], 'used', ARGV[8])
  redis.call('HINCRBY', KEYS[5], 'messages', 1)
  redis.call('EXPIRE', KEYS[5], ARGV[9])
end
redis.call('HSET', KEYS[1], 'status', 'done')
redis.call('HDEL', KEYS[1], 'question')
redis.call('EXPIRE', KEYS[1], ARGV[14])
release()
local first = 15
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
REPLY = """
local existing = redis.call('HGET', KEYS[1], 'reply')
if existing then return existing end
redis.call('HSET', KEYS[1], 'reply', ARGV[1])
return ARGV[1]
"""

# KEYS: msg, outbox. ARGV: reply, msg_id, retention_s. Give up waiting: answer `reply` now and queue
# the answer for later. Answers {'reply', text} (decided before: the answer was ready) or {'deferred', text}.
DEFER = """
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
COLLECT = """
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
RECOVER = """
local f = redis.call('HMGET', KEYS[1], 'status', 'lease', 'question')
if f[1] ~= 'running' or tonumber(f[2] or 0) >= tonumber(ARGV[1]) then return false end
redis.call('HSET', KEYS[1], 'lease', tonumber(ARGV[1]) + tonumber(ARGV[2]))
return f[3]
"""
