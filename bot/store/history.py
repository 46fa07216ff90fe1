"""A follower's dialogue on WeChat: strictly alternating turns, within the spec's character budget.

Stored as a Redis list of contents (even positions are the follower's, odd ones the bot's). A turn
is added as a whole pair by one script that also forgets the oldest pairs beyond the budget and
renews the idle expiry, so the list can never hold an orphan question or two interleaved answers.
"""

from __future__ import annotations

import redis

from bot.chat.dialogue import MAX_CHARS, ROLES, Turn
from bot.store import keyspace

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
_APPEND = APPEND_PAIR_LUA + "return append_pair(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"


class HistoryStore:
    def __init__(self, client: redis.Redis, idle_seconds: int):
        self.redis = client
        self.idle_seconds = idle_seconds
        self._append = client.register_script(_APPEND)

    def load(self, openid: str) -> list[Turn]:
        items = self.redis.lrange(keyspace.history(openid), 0, -1)
        return [Turn(ROLES[i % 2], content) for i, content in enumerate(items)]

    def append(self, openid: str, question: str, answer: str) -> int:
        """Add one question and its answer; answers how many turns the history now holds."""
        args = [question, answer, MAX_CHARS, self.idle_seconds]
        return int(self._append(keys=[keyspace.history(openid)], args=args))

    def clear(self, openid: str) -> bool:
        return bool(self.redis.delete(keyspace.history(openid)))
