"""What the doors ask of content safety: may this question go to the model, and what of this answer
may be shown. One per app (bot/services.py); the word list it holds is swapped whole on a change.

Every hit is logged (direction, door, who, matches; the text only with BOT_LOG_CONTENT=1), counted on
/metrics by direction and action, and tallied for the day's /stats (one Redis round trip, on a hit
only: a clean message costs none); the words it matched are counted in the worker's Tally, which the
console's flush writes per day (bot/console/traffic.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import redis

from bot import metrics
from bot.chat.core import Completion
from bot.errors import ChatError, Failure
from bot.observe import CONTENT_LOG_CHARS
from bot.safety.moderation import Moderation, Verdict
from bot.safety.runtime import Refresher, WordStore
from bot.safety.stream import StreamFilter
from bot.safety.words import WordList
from bot.tally import Tally

logger = logging.getLogger(__name__)


class ContentGuard:
    def __init__(
        self, file_words: list[str], store: WordStore, *, action: str, moderation: Moderation | None,
        log_content: bool, tally: Tally | None = None,
    ):  # fmt: skip
        self.store, self.action, self.moderation, self.log_content = store, action, moderation, log_content
        self.tally = tally or Tally()  # hits per word, for the console (bot/console/traffic.py)
        self._file_readings = WordList(file_words).words
        version, runtime = self._first_snapshot()
        self.words = WordList([*self._file_readings, *runtime], read=True)
        logger.info("banned words: %d in use in worker %d", len(self.words), os.getpid())
        self.refresher = Refresher(store, version, self._rebuild)
        self.refresher.start()

    def _first_snapshot(self) -> tuple[int, list[str]]:
        try:
            return self.store.snapshot()
        except redis.RedisError as error:  # start with the files; the refresher reads Redis when it is back
            logger.warning("banned words: run-time list unreadable at start (%s)", type(error).__name__)
            return -1, []

    def _rebuild(self, runtime: list[str]) -> None:
        self.words = WordList([*self._file_readings, *runtime], read=True)  # swapped whole
        logger.info("banned words: %d in use in worker %d", len(self.words), os.getpid())

    def close(self) -> None:
        self.refresher.close()
        if self.moderation is not None:
            self.moderation.close()

    # --- questions ---------------------------------------------------------------------------

    def words_hit(self, texts: list[str], door: str, who: str) -> bool:
        """Whether any of `texts` holds a banned word (in-process); a hit is reported as refused."""
        words = self.words
        hit = next((t for t in texts if words.hits(t)), None)
        if hit is not None:
            self.report("question", "refuse", door, who, words.count(hit), hit, found=words.found(hit))
        return hit is not None

    def moderate(self, texts: list[str], door: str, who: str) -> Verdict:
        """The moderation service's verdict (CLEAN when none is configured); a flag is reported as refused."""
        if self.moderation is None:
            return Verdict.CLEAN
        verdict = self.moderation.judge(texts)
        if verdict is Verdict.FLAGGED:
            self.report("question", "refuse", door, who, 1, texts[-1], source="moderation")
        return verdict

    def check_question(self, texts: list[str], door: str, who: str) -> None:
        """A JSON door's check: ChatError unless every text may go to the model."""
        if self.words_hit(texts, door, who):
            raise ChatError(Failure.CONTENT_REFUSED)
        verdict = self.moderate(texts, door, who)
        if verdict is Verdict.FLAGGED:
            raise ChatError(Failure.CONTENT_REFUSED)
        if verdict is Verdict.UNAVAILABLE:  # BOT_MODERATION_FAIL=closed: nothing unjudged reaches the model
            raise ChatError(Failure.SERVICE_UNAVAILABLE, "内容审核暂不可用")

    # --- answers -----------------------------------------------------------------------------

    def screen_answer(self, text: str, door: str, who: str) -> tuple[str, bool]:
        """The answer as it may be shown, and whether it was blocked (the caller shows its notice)."""
        words = self.words
        if not words.hits(text):
            return text, False
        masked, count = words.mask(text)
        self.report("answer", self.action, door, who, count, text, found=words.found(text))
        return (masked, False) if self.action == "mask" else ("", True)

    def screen_completion(self, completion: Completion, door: str, who: str, notice: str) -> Completion:
        """A whole answer as it may be shown: masked, or `notice` with finish_reason content_filter."""
        shown, blocked = self.screen_answer(completion.content, door, who)
        if blocked:
            return replace(completion, content=notice, finish_reason="content_filter")
        return completion if shown is completion.content else replace(completion, content=shown)

    def stream_screen(self, door: str, who: str, notice: str) -> AnswerScreen:
        """A screen for one streamed answer; `notice` is what a blocked answer ends with."""
        return AnswerScreen(self, door, who, notice)

    def report(
        self, direction: str, action: str, door: str, who: str, matches: int, text: str, source="words",
        found: list[str] | None = None,
    ):  # fmt: skip
        content = f" content={text[:CONTENT_LOG_CHARS]!r}" if self.log_content else ""
        logger.info(
            "content %s %s by %s: door=%s who=%s matches=%d%s", direction, action, source, door, who, matches, content
        )
        metrics.count_sensitive_hit(direction, action)
        if found:
            self.tally.hit(found)
        try:
            self.store.tally(direction)
        except redis.RedisError as error:  # the hit is handled all the same; only /stats misses it
            logger.warning("content %s hit not tallied for /stats: %s", direction, type(error).__name__)


class AnswerScreen:
    """One streamed answer through a StreamFilter, masking or blocking as BOT_SENSITIVE_ANSWER_ACTION says.

    `feed` answers what to send for a piece; once `blocked`, the caller stops asking the model and
    `finish` answers the notice in place of the rest. A hit is reported once, at `finish`."""

    def __init__(self, guard: ContentGuard, door: str, who: str, notice: str):
        self.guard, self.door, self.who, self.notice = guard, door, who, notice
        self.filter = StreamFilter(guard.words)
        self.blocked = False
        self._seen: list[str] = []  # for the log line, only with BOT_LOG_CONTENT=1

    def feed(self, piece: str) -> str:
        if self.guard.log_content:
            self._seen.append(piece)
        shown = self.filter.feed(piece)
        if self.filter.matches and self.guard.action == "block":
            self.blocked = True
            return ""  # what this piece released may hold the masked word: nothing of it is sent
        return shown

    def finish(self) -> str:
        rest = self.notice if self.blocked else self.filter.finish()
        if self.filter.matches:
            action = "block" if self.blocked else "mask"
            seen, found = "".join(self._seen), sorted(self.filter.found)
            self.guard.report("answer", action, self.door, self.who, self.filter.matches, seen, found=found)
        return rest
