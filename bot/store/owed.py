"""A reply made of what a follower is owed, kept as what it was made of: its wording is the door's.

A follower is owed the rest of a long answer, and the answers deferred past WeChat's window
(bot/store/conversation.py's outbox). The reply that hands one out (their 继续, a new question while
answers are owed, or a long answer's first part) is stored in the message's claim as an OwedReply's
description, and every read words it the same way (Conversation's `word`): retries and replays of
the message read what its first delivery read, and no wording goes into a script.
"""

from __future__ import annotations

from dataclasses import dataclass

# A stored reply that starts with this is a description: NUL never starts a reply's text (a model's
# answer is stored without NUL, the door's texts have none), so no text can pass for one.
OWED = "\x00owed:"

# The Lua function the scripts that store one embed: state is p (a part), e (the last part of an answer
# shown as it was written), x (the last part of an answer cut off), i (a part of an answer still being
# written), w (an answer still being written, nothing new to show) or n (nothing owed); more and queued
# are '1' or '0'. Built from OWED, so the two cannot differ.
OWED_LUA = f"""
local function owed_reply(state, more, queued, part)
  return '\\0{OWED[1:]}' .. state .. more .. queued .. part
end
"""
_HEAD = len(OWED)


# What a part is, by its state: its note is the door's wording (bot/wechat/texts.py).
PART_STATES = {"p": "part", "e": "complete", "x": "cut_off", "i": "still_writing"}


@dataclass(frozen=True)
class OwedReply:
    part: str | None  # the oldest owed part, handed out now; None if none was ready
    more: bool  # more is owed after that part
    writing: bool  # the oldest thing owed is an answer still being written
    queued: bool  # this message's question was queued: its answer is owed after the rest
    # part: more of an answer; complete: its last part, shown as it was written; cut_off: the last
    # part of an answer the model stopped writing; still_writing: as far as the answer has come
    kind: str = "part"

    @classmethod
    def decode(cls, stored: str) -> OwedReply | None:
        """The description a stored reply holds, or None for a reply stored as text."""
        if not stored.startswith(OWED):
            return None
        state, more, queued, part = *stored[_HEAD : _HEAD + 3], stored[_HEAD + 3 :]
        kind = PART_STATES.get(state)
        return cls(part if kind else None, more == "1", state == "w", queued == "1", kind or "part")
