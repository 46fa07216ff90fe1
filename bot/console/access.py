"""Who may use the console: a valid portal session whose openid is in BOT_ADMIN_OPENIDS, now.

The list is read from the settings on every request, so an openid taken off it (and the service
restarted with the new list) is refused on its next request, whatever cookie it holds.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, g, get_flashed_messages, request
from werkzeug.exceptions import HTTPException

from bot.services import services
from bot.store.audit import AuditLog
from bot.web import guard
from bot.web.session import standing

logger = logging.getLogger(__name__)
bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
bp.register_error_handler(HTTPException, guard.problem_page)


def is_admin(openid: str | None) -> bool:
    return bool(openid) and openid in services().settings.admin_openids


@bp.before_request
def admins_only() -> None:
    """401 without a session (how to sign in), 403 for anyone not an admin now, on every /admin URL."""
    g.portal_page = True  # the portal's headers (CSP, frame-ancestors, no-store) on every answer
    now = standing()
    if now.problem:
        g.problem = now.problem
        abort({"blocked": 403, "tampered": 400}.get(now.problem, 401))
    if not now.openid:
        abort(401)
    if not is_admin(now.openid):
        logger.warning("console refused to %s: not an admin (%s %s)", now.openid, request.method, request.path)
        abort(403)
    g.openid = now.openid


@bp.context_processor
def console_context() -> dict:
    return {"signed_in": g.get("openid"), "admin": True}


def tell_done(what: str) -> None:
    """Say on the next page that `what` was done: kept in the signed session, never in the URL, so a
    crafted link cannot show 已完成 for an action that never ran."""
    flash(what, "done")


def told_done() -> str | None:
    """What the last action said it did (once), or None."""
    return next(iter(get_flashed_messages(category_filter=["done"])), None)


def audit(action: str, target: str = "", detail: str = "") -> None:
    """Write the signed-in admin's action to the audit log; raises (a 500, no success shown) if it cannot."""
    AuditLog(services().redis).record(g.openid, "console", action, target, detail)
