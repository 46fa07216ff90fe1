"""What a hostile visitor sends the portal's routes: junk paths, methods, cookies, forms and headers
get a 4xx page (never a 500, never a Python error), and nothing changes."""

from __future__ import annotations

import pytest

from tests.helpers import key_info
from tests.portal import ask_link, signed_in_client

OPENID = "oHostile00000000000000000001"
JUNK_TOKENS = ["%00" * 40, "..%2f..%2fetc%2fpasswd", "a" * 5000, "%E4%BD%A0" * 11, "%0d%0aSet-Cookie:x=1", "*" * 32]


@pytest.mark.parametrize("token", JUNK_TOKENS)
def test_junk_links_get_a_4xx_page(client, token):
    page = client.get(f"/login/{token}")
    assert 400 <= page.status_code < 500 and "Set-Cookie: x" not in str(page.headers)
    # A path with a slash after /login/ matches no route (a rule that took it would cost every request
    # of every door a regex; bot/web/signin_views.py): the plain 404. Anything else gets the page.
    assert "登录" in page.text or "%2f" in token


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/"), ("PUT", "/me"), ("DELETE", "/me/key"), ("GET", "/logout"), ("GET", "/me/key")],
)
def test_wrong_methods_get_405(client, method, path):
    assert client.open(path, method=method).status_code == 405


@pytest.mark.parametrize("cookie", ["", "x", "a.b.c", "\x00\x01", "e30." * 500, "eyJvcGVuaWQiOiJvWCJ9.AAAA.BBBB"])
def test_junk_cookies_get_a_page_and_are_dropped(client, cookie):
    client.set_cookie("xiaoyi_session", cookie)
    page = client.get("/me")
    assert page.status_code in (400, 401) and "登录" in page.text


def test_forms_posted_with_junk_change_nothing(app, issue_key):
    key = issue_key(OPENID)
    browser = signed_in_client(app, OPENID)
    for data in ({"csrf_token": "x" * 10_000}, {"csrf_token": "\x00"}, {"csrf_token": ["a", "b"]}, {}):
        assert browser.post("/me/rotate", data=data).status_code == 400
    assert (
        browser.post("/me/rotate", data=b"\xff\xfe", content_type="application/x-www-form-urlencoded").status_code
        == 400
    )
    assert key_info(app, key) is not None  # not rotated


def test_a_signed_in_page_ignores_a_forwarded_for_from_an_untrusted_peer(app, client):
    # X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS: a guesser cannot rotate its address by header.
    for i in range(20):
        client.get(f"/login/{'H' * 31}{i % 10}", headers={"X-Forwarded-For": f"10.1.0.{i}"},
                   environ_base={"REMOTE_ADDR": "10.9.9.9"})  # fmt: skip
    assert client.get(f"/login/{'H' * 32}", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 429


def test_the_guessing_limit_counts_each_client_behind_a_proxy_named_by_its_network(make_app, config):
    # FORWARDED_ALLOW_IPS is read as gunicorn reads it: a network trusts every proxy in it, so the clients
    # it forwards are counted each on its own address, not all together as the proxy's (one guesser
    # behind it would otherwise lock every follower out of signing in).
    app = make_app({**config, "FORWARDED_ALLOW_IPS": "10.0.0.0/8, ::1"})
    proxy = {"REMOTE_ADDR": "10.2.3.4"}
    guesser = app.test_client()
    for i in range(20):
        guesser.get(f"/login/{'P' * 31}{i % 10}", headers={"X-Forwarded-For": "203.0.113.5"}, environ_base=proxy)
    assert (
        guesser.get(f"/login/{'P' * 32}", headers={"X-Forwarded-For": "203.0.113.5"}, environ_base=proxy).status_code
        == 429
    )
    path = ask_link(app.test_client(), OPENID)
    follower = app.test_client().get(path, headers={"X-Forwarded-For": "198.51.100.7"}, environ_base=proxy)
    assert follower.status_code == 303  # another client behind the same proxy signs in
