"""The portal's pages: home, API docs, a follower's key and usage (/me), and the playground.

Every page about a follower reads their data by the session's openid on each request, never by an
id in the URL or the form. The key is shown only in answer to a POST with a CSRF token.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from bot.ids import log_id
from bot.services import services
from bot.web import apidocs, guard, messages
from bot.web.account import account_of, china_time, mask
from bot.web.chart import draw
from bot.web.session import follower_required, signed_in, standing
from bot.web.signin_views import console_admin

logger = logging.getLogger(__name__)
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0b5cad"/>'
    '<text x="16" y="23" font-size="18" text-anchor="middle" fill="#fff" font-family="sans-serif">一</text></svg>'
)
FAVICON = "data:image/svg+xml," + quote(ICON)
bp = Blueprint("portal", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")
bp.register_error_handler(HTTPException, guard.problem_page)


@bp.before_request
def refuse_broken_cookie() -> None:
    """A cookie that fails its check, or a session ended elsewhere or blocked: a page saying so (the
    cookie is deleted with it), on every portal page, so the follower knows to sign in again."""
    problem = standing().problem
    if problem and request.endpoint != "portal.static":
        g.problem = problem
        abort({"blocked": 403, "tampered": 400}.get(problem, 401))


@bp.app_context_processor
def page_context() -> dict:
    openid = signed_in() if request.blueprint in ("portal", "signin") else None
    # an admin's portal pages link to the console (the console's own pages say admin themselves)
    return {"signed_in": openid, "admin": console_admin(openid), "outcome": messages.outcome}


def base_url() -> str:
    return (services().settings.public_url or request.url_root).rstrip("/")


@bp.get("/")
def home() -> str:
    return render_template("home.html", base=base_url())


@bp.get("/favicon.ico")
def favicon() -> Response:
    """What browsers ask for whatever the page says (the pages carry the same icon inline)."""
    return Response(ICON, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@bp.get("/docs")
def docs() -> str:
    """The API reference, rendered from the service's own OpenAPI document, with quick starts."""
    openid = signed_in()
    key, _ = services().keys.current_key(openid) if openid else (None, False)
    return render_template("docs.html", base=base_url(), key=mask(key) if key else "sk-你的密钥", doc=apidocs.read())


@bp.get("/me")
@follower_required
def me() -> str:
    account = account_of(g.openid)
    return render_template("me.html", account=account, chart=draw(account.days), when=china_time)


@bp.post("/me/key")
@follower_required
def show_key() -> Response | str:
    """The follower's key in full: JSON for the page's script (copy, playground), else the page with it shown."""
    key, _ = services().keys.current_key(g.openid)
    if key is None:
        abort(404)
    logger.info("portal: key %s shown to %s", log_id(services().keys.fingerprint(key) or ""), g.openid)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(key=key)
    account = account_of(g.openid)
    return render_template("me.html", account=account, chart=draw(account.days), when=china_time, shown=key)


@bp.get("/me/rotate")
@follower_required
def confirm_rotate() -> str:
    return render_template("rotate.html")


@bp.post("/me/rotate")
@follower_required
def rotate() -> str:
    """Revoke the key (it fails at once, on every worker) and show the new one, which keeps the balance."""
    key = services().keys.rotate(g.openid)
    return render_template("key_once.html", key=key, rotated=True)


@bp.post("/me/key/new")
@follower_required
def new_key() -> str | Response:
    """A key for a follower whose key was revoked (or who never asked for one): the balance is kept."""
    key, created = services().keys.issue(g.openid)
    if not created:
        return redirect(url_for("portal.me"), 303)
    return render_template("key_once.html", key=key, rotated=False)


@bp.get("/playground")
@follower_required
def playground() -> str:
    return render_template("playground.html")
