"""What every portal response carries: CSRF checks, security headers, and clear pages for problems.

CSRF: Flask-WTF's CSRFProtect checks every POST/PUT/PATCH/DELETE of the app except the blueprints
that authenticate by key or by WeChat's signature (the JSON doors, /wechat, ops). The headers: a CSP
with scripts and styles from this origin only (no inline script, no eval) and `frame-ancestors
'none'`, nosniff, and no Referer at all from the sign-in pages (their URL holds the token).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from bot.web import messages
from bot.web.doors import is_door

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
csrf = CSRFProtect()


def register(app: Flask, exempt: list[Blueprint], web: tuple[str, ...]) -> None:
    # The token lives as long as the session. No Referer check on https: the token and SameSite=Lax
    # suffice, and a browser that sends no Referer (privacy settings, in-app browsers) must still work.
    # The check runs from our own hook, which lets the doors' requests (WeChat, the APIs) skip it unasked.
    app.config.update(WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=False, WTF_CSRF_CHECK_DEFAULT=False)
    csrf.init_app(app)
    for blueprint in exempt:
        csrf.exempt(blueprint)

    @app.before_request
    def check_csrf() -> None:
        if app.config["WTF_CSRF_ENABLED"] and not is_door(app, request.environ):
            csrf.protect(apply_exemptions=True)

    @app.after_request
    def headers(response: Response) -> Response:
        if not is_door(app, request.environ) and (request.blueprint in web or g.get("portal_page")):
            secure(response)
        return response


def secure(response: Response) -> None:
    """The portal's headers; pages about a follower are never cached or sent a Referer."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


def problem_page(error: HTTPException) -> tuple[str, int]:
    """A 4xx/5xx as a page in Chinese that says what happened and what to do next."""
    g.portal_page = True
    code = error.code or 500
    problem = g.get("problem") or ("csrf" if isinstance(error, CSRFError) else str(code))
    title, detail = messages.PROBLEMS.get(problem) or messages.PROBLEMS.get(str(code)) or messages.PROBLEMS["500"]
    return render_template("problem.html", title=title, detail=detail, code=code), code
