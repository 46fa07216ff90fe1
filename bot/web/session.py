"""Who is signed in to the web pages: Flask's signed cookie session, checked against Redis on each request.

This is the interface the pages (and the operator console) use: `sign_in`, `signed_in`,
`follower_required`, `sign_out`, `sign_out_everywhere`. The cookie holds the follower's openid and
the session generation it was issued under; it is signed with a key derived from BOT_SECRET (not
the key vault's bytes), HttpOnly, SameSite=Lax, Secure when the request came over https (as the
trusted proxy says), and lasts 7 days. Every request reads the follower's generation and block in one
round trip, so "sign out everywhere" and a block end a session on its next request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, abort, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, SignatureExpired

from bot.ids import valid_openid
from bot.web.doors import is_door
from bot.web.signins import SignIns

SESSION_DAYS = 7
COOKIE_NAME = "xiaoyi_session"


def derive_session_key(secret: str) -> bytes:
    """The cookie's signing key: its own derivation of BOT_SECRET, distinct from the key vault's."""
    return hmac.new(secret.encode(), b"bot/portal-session/v1", hashlib.sha256).digest()


class PortalSession(SecureCookieSession):
    broken: str = ""  # "tampered" or "expired" when the request's cookie could not be read


class PortalSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, except that a cookie that fails its check is reported, not ignored, and
    Secure follows the request's scheme (https as gunicorn's trusted proxies report it)."""

    session_class = PortalSession
    salt = "bot-portal-session"

    def open_session(self, app: Flask, request: Any) -> PortalSession | None:
        if is_door(app, request.environ):  # /wechat, the APIs: never read, so a cookie sent along is not parsed
            return self.session_class()
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:  # WeChat's deliveries and API calls carry no cookie: nothing to build or check
            return self.session_class()
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return self.session_class()
        try:
            max_age = int(app.permanent_session_lifetime.total_seconds())
            return self.session_class(serializer.loads(value, max_age=max_age))
        except SignatureExpired:
            return _broken("expired")
        except BadSignature:
            return _broken("tampered")

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if not session.modified and not session.accessed:
            return  # a request that never looked at the session (WeChat, the API): nothing to write
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def _broken(why: str) -> PortalSession:
    broken = PortalSession()
    broken.broken = why
    broken.modified = True  # the bad cookie is replaced (by an empty one: deleted)
    return broken


def configure(app: Flask, secret: str, previous: str = "") -> None:
    """Sign cookies with the derived key (and accept the previous secret's during a BOT_SECRET rotation)."""
    app.secret_key = derive_session_key(secret)
    if previous:
        app.config["SECRET_KEY_FALLBACKS"] = [derive_session_key(previous)]
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS),
        SESSION_REFRESH_EACH_REQUEST=False,  # 7 days from sign-in, not from the last page
    )
    app.session_interface = PortalSessionInterface()


def signins() -> SignIns:
    return current_app.extensions["signins"]


def sign_in(openid: str) -> None:
    """Start a fresh session for `openid`: nothing of the session before survives (no fixation)."""
    session.clear()
    session.permanent = True
    session.update(openid=openid, gen=signins().generation(openid), since=int(time.time()))


def sign_out() -> None:
    session.clear()


def sign_out_everywhere(openid: str) -> None:
    """End every session of the follower, on every device, this one included."""
    signins().end_all(openid)
    session.clear()


@dataclass(frozen=True)
class Standing:
    openid: str = ""
    problem: str = ""  # "", "tampered", "expired", "ended" (signed out elsewhere) or "blocked"


def standing() -> Standing:
    """Who this request is signed in as, checked against Redis once per request."""
    if "standing" in g:
        return g.standing
    broken = getattr(session, "broken", "")
    openid = session.get("openid", "")
    if broken or not openid:
        g.standing = Standing(problem=broken)
    elif not isinstance(openid, str) or not valid_openid(openid):
        g.standing = Standing(problem="tampered")  # signed by us, so not reachable; kept as a guard
    else:
        generation, blocked = signins().standing(openid)
        problem = "blocked" if blocked else "" if generation == session.get("gen") else "ended"
        g.standing = Standing(openid if not problem else "", problem)
    if g.standing.problem:
        session.clear()  # the cookie is deleted with this response
    return g.standing


def signed_in() -> str | None:
    """The openid of the follower signed in on this request, or None."""
    return standing().openid or None


def follower_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page for a signed-in follower only: 401 (how to sign in) or 403 (blocked) otherwise."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        now = standing()
        if not now.openid:
            abort(403 if now.problem == "blocked" else 401)
        g.openid = now.openid  # the request's log line names the follower
        return view(**kwargs)

    return wrapped
