"""What the portal's tests share: a follower asking the account for a sign-in link, and opening it."""

from __future__ import annotations

import re

from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post

LINK = re.compile(r"https?://\S+/login/([A-Za-z0-9_-]+)")


def link_path(reply: str | None) -> str:
    """The path of the sign-in link in the account's reply."""
    assert reply is not None, "the account did not reply"
    found = LINK.search(reply)
    assert found, f"no sign-in link in {reply!r}"
    return f"/login/{found[1]}"


def ask_link(client, openid: str, word: str = "登录") -> str:
    """A follower sends 登录 to the account; the path of the link it replies with."""
    return link_path(Follower(flask_post(client), ACCOUNT, openid).say(word))


def signed_in_client(app, openid: str, lands: str = "/me"):
    """A browser (test client) signed in as `openid` through a link from the account (landing on `lands`)."""
    client = app.test_client()
    response = client.get(ask_link(app.test_client(), openid))
    assert response.status_code == 303 and response.headers["Location"].endswith(lands), response.status_code
    return client


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    assert found, "no CSRF token on the page"
    return found[1]
