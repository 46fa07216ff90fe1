"""What a key's history keeps, written by the scripts that charge it (bot/store/quota_lua.py): no
round trip of its own. Tokens per day go into one hash per key (a field per China-time day, the
fields older than 90 days dropped once the hash holds more than 90); each request's line goes to
the head of a list capped at the last `recent_size`.

A line is `<ms since epoch>|<door>|<latency ms>` from the caller, then `|<outcome>|<tokens>` from the
script: the outcome is 'ok', a refusal of the reserve script ('too_poor', 'key_rate', …) or the name
of the failure the request ended with. Never any content.
"""

from __future__ import annotations

RECENT_LUA = """
local function note(recent, entry, outcome, tokens, size, ttl, answer)
  redis.call('LPUSH', recent, entry .. '|' .. outcome .. '|' .. tokens)
  redis.call('LTRIM', recent, 0, size - 1)
  redis.call('EXPIRE', recent, ttl)
  return answer
end
local function tally_day(days, today, tokens, oldest_day, ttl)
  redis.call('HINCRBY', days, today, tokens)
  redis.call('EXPIRE', days, ttl)
  if redis.call('HLEN', days) > 90 then
    for _, day in ipairs(redis.call('HKEYS', days)) do
      if day < oldest_day then redis.call('HDEL', days, day) end
    end
  end
end
"""
