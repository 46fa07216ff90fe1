"""What the portal's per-request hooks cost the doors: microseconds per request, in process.

    .venv/bin/python -m bench.portal_hooks

For a WeChat delivery (POST /wechat), a spec API call and an OpenAI-door call, each with no cookie and
with the portal's session cookie (the playground's calls carry it), times the work the portal adds to
a request: opening and saving the session, the portal's before-request hooks (CSRF) and its
after-request hooks (headers), timed around just that work in a pushed request context. No view runs
and no Redis is asked. To compare with another checkout, copy this file into its bench/ and run it
there as well.
"""

from __future__ import annotations

import statistics
import time

from flask import Flask, Response
from werkzeug.test import EnvironBuilder

from bot import create_app

ROUNDS, COUNT = 7, 5000
COOKIE = "xiaoyi_session=eyJvcGVuaWQiOiJvQUIifQ.Z0000A.signaturesignaturesignature00"
REQUESTS = {
    "POST /wechat": ("/wechat?signature=x&timestamp=1&nonce=2", "<xml></xml>"),
    "POST /api/v1/chat/completions": ("/api/v1/chat/completions", "{}"),
    "POST /v1/chat/completions": ("/v1/chat/completions", "{}"),
}


def portal_hooks(app: Flask) -> tuple[list, list]:
    """The app's before/after-request hooks that belong to the portal (bot.web) or to Flask-WTF."""

    def ours(hook) -> bool:
        return hook.__module__.startswith(("bot.web", "flask_wtf"))

    return [h for h in app.before_request_funcs[None] if ours(h)], [h for h in app.after_request_funcs[None] if ours(h)]


def per_request(app: Flask, environ: dict) -> float:
    """Median over ROUNDS of the microseconds the portal's work takes in one request context."""
    before, after = portal_hooks(app)
    interface = app.session_interface
    rounds = []
    for _ in range(ROUNDS):
        spent = 0.0
        for _ in range(COUNT):
            ctx = app.request_context(dict(environ))
            ctx._session = interface.session_class()  # push() then opens none: it is timed below
            ctx.push()
            response = Response("")
            started = time.perf_counter()
            ctx._session = interface.open_session(app, ctx.request)
            for hook in before:
                hook()
            for hook in after:
                response = hook(response)
            interface.save_session(app, ctx._session, response)
            spent += time.perf_counter() - started
            ctx.pop()
        rounds.append(spent / COUNT * 1e6)
    return statistics.median(rounds)


def main() -> None:
    app = create_app({"REDIS_URL": "redis://127.0.0.1:1/0", "BOT_SECRET": "p" * 40, "REDIS_CLUSTER": "no"})
    print(f"{'request':34} {'cookie':7} portal work per request (µs, median of {ROUNDS} rounds of {COUNT})")
    for name, (path, body) in REQUESTS.items():
        for cookie in (None, COOKIE):
            headers = {"Cookie": cookie} if cookie else {}
            environ = EnvironBuilder(path=path.split("?")[0], query_string=path.partition("?")[2], method="POST",
                                     data=body, headers=headers).get_environ()  # fmt: skip
            print(f"{name:34} {'yes' if cookie else 'no':7} {per_request(app, environ):6.1f}")


if __name__ == "__main__":
    main()
