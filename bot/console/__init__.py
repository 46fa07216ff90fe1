"""The operator console: /admin pages for the openids in BOT_ADMIN_OPENIDS, on the portal's sign-in.

It shares the portal's session, CSRF, headers, base template and stylesheet (bot/web/). Every page
and action checks, on every request, that the session is valid and its openid is still an admin
(bot/console/access.py); every action is confirmed and written to the audit log
(bot/store/audit.py) before its success is shown.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from bot.console import export, keys, menu, prompt, views, words  # noqa: F401  (their routes join the blueprint)
    from bot.console.access import bp
    from bot.console.traffic import Flusher

    app.register_blueprint(bp)
    # Every worker flushes its counters (bot/console/traffic.py); tests flush by hand instead of
    # leaving a timer behind each of the many apps they build.
    svc = app.extensions["bot"]
    app.extensions["stats_flush"] = flusher = Flusher(svc.redis, svc.tally)
    prompts = prompt.PromptPoller(svc.redis, svc.chat, svc.settings.system_prompt)
    app.extensions["prompt_poll"] = prompts
    if svc.settings.env != "test":
        flusher.start()
        prompts.start()
