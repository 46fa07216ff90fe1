"""The web portal: pages for followers and developers, signed in through the official account.

`register(app)` adds the sign-in (bot/web/signin_views.py) and the pages (bot/web/pages.py), the
signed cookie session (bot/web/session.py), CSRF on every state-changing request outside the JSON
doors and /wechat, and the security headers (bot/web/guard.py).
"""

from __future__ import annotations

from flask import Flask

from bot.services import Services
from bot.web import doors, guard, redact, session
from bot.web.console_cli import console_cli
from bot.web.signins import SignIns


def register(app: Flask, svc: Services, exempt: list) -> None:
    """Serve the portal on `app`; `exempt`: the blueprints that authenticate otherwise (key, signature)."""
    from bot.web import pages, signin_views

    settings = svc.settings
    doors.configure(app, [blueprint.name for blueprint in exempt])
    session.configure(app, settings.bot_secret, settings.bot_secret_previous)
    app.extensions["signins"] = SignIns(svc.redis)
    app.register_blueprint(signin_views.bp)
    app.register_blueprint(pages.bp)
    guard.register(app, exempt, web=(signin_views.bp.name, pages.bp.name))
    app.wsgi_app = redact.RedactLinks(app.wsgi_app)  # type: ignore[method-assign]
    app.cli.add_command(console_cli)
