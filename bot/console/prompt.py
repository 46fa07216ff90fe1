"""The system prompt set from /admin/content: kept in Redis, it overrides BOT_SYSTEM_PROMPT.

Each worker polls the key every POLL_SECONDS (a greenlet, or a thread outside gevent) and sets the
chat service's prompt when it changed, so every worker uses a new prompt within 5 s and a question
does no Redis work for it. Removing the override returns every worker to BOT_SYSTEM_PROMPT.
"""

from __future__ import annotations

import logging

import redis
from flask import abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bot.background import Loop
from bot.chat.dialogue import MAX_CHARS
from bot.console.access import audit, bp, tell_done, told_done
from bot.services import services
from bot.store.keyspace import PREFIX

logger = logging.getLogger(__name__)
PROMPT_KEY = f"{PREFIX}:system_prompt"
POLLER_NAME = "prompt-poll"  # the thread's name: bench.redis_round_trips leaves its polls out
POLL_SECONDS = 2  # "every worker within 5 s": two polls fit, with room for a slow one
BUDGET = MAX_CHARS  # the dialogue's 2000-character budget, which the prompt shares


class PromptPoller:
    """Keeps `chat.system_prompt` equal to the override in Redis, or to the configured default."""

    def __init__(self, client: redis.Redis, chat: object, default: str):
        self.redis, self.chat, self.default = client, chat, default
        self.loop = Loop(POLLER_NAME, POLL_SECONDS, self.poll, at_once=True)
        self.start, self.close = self.loop.start, self.loop.close

    def poll(self) -> None:
        """One read; Redis down keeps the prompt in use (logged, not raised)."""
        try:
            wanted = self.redis.get(PROMPT_KEY) or self.default
        except redis.RedisError as error:
            logger.warning(
                "system prompt: cannot read the override (%s); keeping the current one", type(error).__name__
            )
            return
        if wanted != self.chat.system_prompt:  # type: ignore[attr-defined]
            self.chat.system_prompt = wanted  # type: ignore[attr-defined]
            logger.info("system prompt now %s (%d characters)", "the override" if wanted != self.default else
                        "BOT_SYSTEM_PROMPT", len(wanted))  # fmt: skip


def _state() -> tuple[str | None, str]:
    svc = services()
    return svc.redis.get(PROMPT_KEY), svc.settings.system_prompt


@bp.get("/content")
def content() -> str:
    override, default = _state()
    return render_template("console/content.html", override=override, default=default, text=override or default,
                           budget=BUDGET, done=told_done() in ("saved", "reset"))  # fmt: skip


@bp.post("/content/prompt")
def prompt_preview() -> str:
    """The confirmation: the new prompt, its length against the budget; nothing is saved yet."""
    text = request.form.get("prompt", "").replace("\r\n", "\n").strip()
    problem = "系统提示不能为空（要恢复默认，请用「恢复默认」）" if not text else (
        f"系统提示有 {len(text)} 个字符，超过 {BUDGET}" if len(text) > BUDGET else "")  # fmt: skip
    override, default = _state()
    return render_template("console/content.html", override=override, default=default, text=text, budget=BUDGET,
                           problem=problem, confirm=not problem)  # fmt: skip


@bp.post("/content/prompt/save")
def prompt_save() -> Response:
    text = request.form.get("prompt", "").replace("\r\n", "\n").strip()
    if not text or len(text) > BUDGET:
        abort(400)
    services().redis.set(PROMPT_KEY, text)
    audit("system prompt", "", f"{len(text)} characters")
    tell_done("saved")
    return redirect(url_for("console.content"), 303)


@bp.get("/content/prompt/reset")
def prompt_reset_confirm() -> str:
    """The confirmation of a reset (every action is confirmed before it runs); nothing changes yet."""
    override, default = _state()
    return render_template("console/content.html", override=override, default=default, text=override or default,
                           budget=BUDGET, confirm_reset=True)  # fmt: skip


@bp.post("/content/prompt/reset")
def prompt_reset() -> Response:
    services().redis.delete(PROMPT_KEY)
    audit("system prompt reset", "", "BOT_SYSTEM_PROMPT")
    tell_done("reset")
    return redirect(url_for("console.content"), 303)
