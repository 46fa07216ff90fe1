"""Signing in and out: the one-time link, WeChat's silent sign-in, /logout and signing out everywhere.

The link's URL holds its token, so its pages send no Referer, and the request log names the path
`/login/…` (bot/web/redact.py), never the token.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from bot.services import services
from bot.web import guard, oauth, peers, redact
from bot.web.session import sign_in, sign_out, sign_out_everywhere, signed_in, signins, standing
from bot.web.signins import Redeemed

logger = logging.getLogger(__name__)
bp = Blueprint("signin", __name__)
bp.before_request(redact.note_path)
bp.register_error_handler(HTTPException, guard.problem_page)


def _refused(problem: str, status: int) -> Response:
    g.problem = problem
    abort(status)


@bp.after_request
def no_referrer(response: Response) -> Response:
    """No page of signing in tells another site where it came from (the URL may hold a token)."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/login")
def how_to() -> str:
    """How to sign in: send 登录 to the account (or, inside WeChat, sign in with one tap)."""
    return render_template("login.html", oauth=services().settings.portal.oauth, problem=standing().problem)


@bp.get("/login/<token>")
def redeem(token: str) -> Response:
    """Use a one-time link: sign in and go to /me, or a 4xx page that says to send 登录 again."""
    redeemed = signins().redeem(token, client_address())
    if redeemed.outcome is Redeemed.TOO_MANY:
        logger.warning("sign-in links refused for %s: too many bad ones", client_address())
        _refused("too_many", 429)
    if redeemed.outcome is not Redeemed.OK:
        _refused("link", 404 if redeemed.outcome is Redeemed.MALFORMED else 410)
    sign_in(redeemed.openid)
    g.openid = redeemed.openid
    logger.info("signed in %s by link", redeemed.openid)
    return redirect(url_for(landing(redeemed.openid)), 303)


@bp.get("/login/wechat")
def wechat_start() -> Response:
    """WeChat's 网页授权 (snsapi_base): WeChat sends the follower back with a code, silently."""
    if not services().settings.portal.oauth:
        abort(404)
    state = secrets.token_urlsafe(16)
    session["oauth_state"] = state  # checked on the way back: a code we did not ask for is refused
    return redirect(oauth.client(url_for("signin.wechat_back", _external=True), state).authorize_url, 302)


@bp.get("/login/wechat/back")
def wechat_back() -> Response:
    if not services().settings.portal.oauth:
        abort(404)
    expected, state = session.pop("oauth_state", ""), request.args.get("state", "")
    code = request.args.get("code", "")
    if not expected or not secrets.compare_digest(expected.encode(), state.encode()) or not code:
        _refused("oauth", 400)
    openid = oauth.openid_of(code)
    if openid is None:
        _refused("oauth", 400)
    sign_in(openid)
    g.openid = openid
    logger.info("signed in %s by WeChat OAuth", openid)
    return redirect(url_for(landing(openid)), 303)  # as a link does: an admin on the console


@bp.post("/logout")
def logout() -> Response:
    sign_out()
    return redirect(url_for("portal.home"), 303)


@bp.post("/logout/everywhere")
def logout_everywhere() -> Response:
    openid = signed_in()
    if openid is None:
        abort(401)
    sign_out_everywhere(openid)
    logger.info("%s signed out everywhere", openid)
    return redirect(url_for("portal.home"), 303)


def landing(openid: str) -> str:
    """Where signing in lands (a link, WeChat's OAuth): the operator console for an admin, else /me."""
    return "console.dashboard" if console_admin(openid) else "portal.me"


def console_admin(openid: str | None) -> bool:
    """Whether `openid` may use the operator console, and it is served: its pages then link to it."""
    served = "console.dashboard" in current_app.view_functions
    return bool(openid) and openid in services().settings.admin_openids and served


def client_address() -> str:
    """The client's address: the peer's, or the last X-Forwarded-For hop a trusted proxy added."""
    peer = request.remote_addr or "-"
    if peers.is_trusted(peer, services().settings.portal.proxies):  # a network (10.0.0.0/8) as gunicorn reads it
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        return hops[-1] if hops else peer
    return peer
