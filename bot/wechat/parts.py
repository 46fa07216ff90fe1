"""An answer cut into replies: each part an exact slice of the answer, so the parts, joined without
their notes, are the answer itself (no character lost, repeated or reordered), and each fits in one
passive reply with room for its note.

A part ends at a sentence or line end where there is one: followers read whole sentences, both when
a long answer is split and when an answer still being written is shown as far as it has come.
"""

from __future__ import annotations

from bot.wechat.protocol import PASSIVE_LIMIT_BYTES, fit_bytes, xml_text

# Room left in each part for a marker and its notes, so every reply stays within the passive limit.
PART_BYTES = PASSIVE_LIMIT_BYTES - 400
# Characters that end a sentence or a line. An ASCII '.' counts only before a space ("3.14" does not).
ENDS = frozenset("。！？；!?;…\n")
# Closing quotes and brackets stay with the sentence they close: 他说：“好。” is cut after ”.
CLOSERS = frozenset("”’」』）)]】\"'")


def showable(written: str) -> str:
    """What of the model's text so far may be checkpointed and shown to the follower: the one place
    text goes from the model towards a follower while it is written. Characters XML cannot carry are
    dropped here, so what is shown, stored and recorded is the same text."""
    return xml_text(written)


def sentence_end(text: str, limit: int = PART_BYTES, min_chars: int = 0) -> int:
    """How many characters of `text` run to its last sentence or line end within `limit` UTF-8 bytes,
    ending at or after `min_chars`; 0 if there is none."""
    window = fit_bytes(text, limit)
    for i in range(len(window) - 1, max(min_chars, 1) - 2, -1):
        char = window[i]
        if char in ENDS or (char == "." and i + 1 < len(text) and text[i + 1].isspace()):
            end = i + 1
            while end < len(window) and window[end] in CLOSERS:
                end += 1
            return end
    return 0


def next_part(text: str, *, final: bool, whole_sentences: bool = True, min_chars: int = 0) -> str:
    """The next part of `text` (what is not shown yet) to show, '' if none is ready.

    `final`: the answer is complete, so all of it may go (cut at a sentence end in the second half of
    a full part, else at the byte limit). Not final: up to the last sentence end (of at least
    `min_chars`); with none, nothing if `whole_sentences`, else all there is, up to the limit."""
    if final and len(text.encode()) <= PART_BYTES:
        return text
    window = fit_bytes(text, PART_BYTES)
    end = sentence_end(text, PART_BYTES, max(min_chars, len(window) // 2 if final else 0))
    if end:
        return text[:end]
    if final or len(window) < len(text) or not whole_sentences:
        return window  # a whole part's worth without a sentence end: it cannot wait for one
    return ""


def split_parts(text: str) -> list[str]:
    """All of a complete `text` in parts (one, possibly empty, for a short text)."""
    parts = []
    while text or not parts:
        part = next_part(text, final=True)
        parts.append(part)
        text = text[len(part) :]
    return parts
