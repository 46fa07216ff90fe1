"""The operator console: /admin pages for the openids in BOT_ADMIN_OPENIDS, on the portal's sign-in.

It shares the portal's session, CSRF, headers, base template and stylesheet (bot/web/). Every page
and action checks, on every request, that the session is valid and its openid is still an admin
(bot/console/access.py); every action is confirmed and written to the audit log
(bot/store/audit.py) before its success is shown.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from bot.console import export, keys, views  # noqa: F401  (their routes join the blueprint)
    from bot.console.access import bp

    app.register_blueprint(bp)
