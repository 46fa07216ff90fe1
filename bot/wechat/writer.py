"""A WeChat answer read from the model as it is written (`stream: true`), so a follower can be shown
it before it is complete: held in this worker for the deliveries here, checkpointed in Redis for the
ones elsewhere, and in customer-service mode pushed in stretches as it grows.

Checkpoints start when the first delivery's window closes (an answer ready within it costs no round
trip) and come at most once a second after that, each renewing the claim's lease: a long answer
outlives the lease its call was claimed with, and a worker that dies stops renewing it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat.core import AnswerStream
from bot.errors import ChatError
from bot.safety.guard import AnswerScreen
from bot.store.drafts import Drafts, Saved
from bot.wechat.parts import next_part, showable

CHECKPOINT_SECONDS = 1.0  # at most one checkpoint a second per answer being written
PUSH_MIN_CHARS = 300  # a customer-service push carries at least this much, or the answer's rest


class Lost(Exception):
    """Another run writes this answer now (this one's lease ran out): this one records nothing."""


class Writing:
    """One answer as it arrives, in the worker writing it: deliveries here read and wait on it."""

    def __init__(self, run: str):
        self.run = run  # names this model call in the checkpoint
        self._pieces: list[str] = []
        self.changed = threading.Condition()
        self.ended = False

    @property
    def text(self) -> str:
        """The text written so far, as it may be shown."""
        return showable("".join(self._pieces))

    def add(self, piece: str) -> None:
        with self.changed:
            self._pieces.append(piece)
            self.changed.notify_all()

    def end(self) -> None:
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait(self, timeout: float) -> None:
        """Until more text arrives, the answer ends, or `timeout` seconds pass."""
        with self.changed:
            if not self.ended and timeout > 0:
                self.changed.wait(timeout)


@dataclass
class Written:
    text: str
    cut_off: bool  # the model failed or timed out after writing `text`
    shown: int  # characters handed out, as of the last checkpoint
    pushes: int  # customer-service pushes sent while writing
    withheld: bool = False  # a banned word with BOT_SENSITIVE_ANSWER_ACTION=block: `text` stops before it


class Writer:
    """Reads one message's stream into its Writing; checkpoints it; pushes it (customer_service)."""

    def __init__(
        self, drafts: Drafts, openid: str, msg_id: str, writing: Writing, first_checkpoint: float,
        push: Callable[[str], bool] | None = None, pushes_allowed: int = 0, screen: AnswerScreen | None = None,
    ):  # fmt: skip
        self.drafts, self.openid, self.msg_id, self.writing = drafts, openid, msg_id, writing
        self.screen = screen  # banned words (bot/safety/guard.py): masked, or the rest withheld
        self.due = first_checkpoint  # monotonic time of the next checkpoint
        self.push = push  # sends one stretch; False if WeChat refused it (None: passive mode)
        self.pushes_left = pushes_allowed
        self.shown, self.deferred, self.pushes = 0, False, 0

    def write(self, stream: AnswerStream) -> Written:
        """Read the whole answer; a failure after some text ends it cut off (ChatError before any)."""
        cut_off = False
        try:
            for piece in stream:
                self._add(self.screen.feed(piece) if self.screen else piece)
                if self.screen is not None and self.screen.blocked:
                    break  # the rest is withheld: the model is not read further (close() hangs up)
                if time.monotonic() >= self.due:
                    self.checkpoint()
            self._release_rest()
        except ChatError:
            # What the screen held back (a word's possible start) was written too: released first, so
            # an answer cut off after a few characters is shown as written, not lost as a failure.
            self._release_rest()
            if not self.writing.text:
                raise
            cut_off = True
        finally:
            stream.close()  # settles the charge: the prompt and the text produced
            self.writing.end()
        withheld = self.screen is not None and self.screen.blocked
        return Written(self.writing.text, cut_off, self.shown, self.pushes, withheld)

    def alive(self) -> None:
        """The model sent something, perhaps only reasoning that is never shown: checkpoint when due, so
        the claim's lease is renewed while it thinks as while it writes."""
        if time.monotonic() >= self.due:
            self.checkpoint()

    def _add(self, text: str) -> None:
        if text:
            self.writing.add(text)

    def _release_rest(self) -> None:
        """What the screen held back, masked: nothing more can complete a word (a blocked answer's notice
        is the courier's, after what was handed out)."""
        if self.screen is not None:
            rest = self.screen.finish()  # reports the hits
            if not self.screen.blocked:
                self._add(rest)

    def checkpoint(self) -> None:
        text = self.writing.text
        part = self._stretch(text)
        saved = self._save(text, self.shown + len(part))
        if part and saved.shown == self.shown + len(part) and saved.state == "ok":
            self._send(text, part, saved)
        else:
            self.shown, self.deferred = saved.shown, saved.deferred
        self.due = time.monotonic() + CHECKPOINT_SECONDS

    def _save(self, text: str, to_shown: int) -> Saved:
        saved = self.drafts.checkpoint(self.openid, self.msg_id, self.writing.run, text, self.shown, to_shown)
        if saved.state == "lost":
            raise Lost(self.msg_id)
        return saved

    def _stretch(self, text: str) -> str:
        """The next stretch to push: a deferred answer in customer-service mode, while pushes remain
        (the last one is kept for the answer's rest), whole sentences of PUSH_MIN_CHARS or more."""
        if self.push is None or not self.deferred or self.pushes_left <= 1:
            return ""
        return next_part(text[self.shown :], final=False, min_chars=PUSH_MIN_CHARS)

    def _send(self, text: str, part: str, saved: Saved) -> None:
        """Push a stretch already marked shown; a refused one is given back (owed for 继续) and the rest
        of the answer is then left for the finish, which pushes or owes it as before."""
        assert self.push is not None
        before = self.shown
        self.shown, self.deferred = saved.shown, saved.deferred
        if self.push(part):
            self.pushes, self.pushes_left = self.pushes + 1, self.pushes_left - 1
            return
        self.pushes_left = 0
        self.shown = self._save(text, before).shown
