"""Signing in to the web portal through the official account: one-time links, the session cookie,
signing out, blocks and revoked keys, WeChat's silent sign-in, and what a hostile visitor can try."""

from __future__ import annotations

import hashlib
import logging
import time

import pytest

from bot.services import services
from bot.store import keyspace
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post
from tests.portal import ask_link, csrf_of, signed_in_client
from tests.procs import wait_for

OPENID = "oPortal000000000000000000001"


def test_a_follower_who_sends_the_keyword_gets_a_link_that_signs_them_in_once(app, client, redis):
    path = ask_link(client, OPENID)
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 22  # ≥ 128 bits of url-safe base64
    assert not [k for k in redis.keys("*") if token in k or token in str(redis.dump(k))]  # only its hash
    assert redis.get(keyspace.login_link(hashlib.sha256(token.encode()).hexdigest())) == OPENID
    browser = app.test_client()
    opened = browser.get(path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/me")
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert 6.9 * 86400 < _max_age(cookie) <= 7 * 86400
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    me = browser.get("/me")
    assert me.status_code == 200 and "我的密钥" in me.text
    again = app.test_client().get(path)  # the same link, a second time
    assert again.status_code == 410 and "发送「登录」" in again.text


def _max_age(cookie: str) -> float:
    from email.utils import parsedate_to_datetime

    expires = next(p.split("=", 1)[1] for p in cookie.split("; ") if p.startswith("Expires="))
    return parsedate_to_datetime(expires).timestamp() - time.time()


def test_the_console_menu_key_and_every_keyword_give_a_link(app, client):
    follower = Follower(flask_post(client), ACCOUNT, OPENID)
    assert "/login/" in follower.click("CONSOLE")
    for word in ("LOGIN", "控制台"):
        assert "/login/" in follower.say(word)


def test_an_expired_link_and_a_forged_one_get_a_page_saying_to_send_the_keyword_again(app, client, redis):
    path = ask_link(client, OPENID)
    token = path.rsplit("/", 1)[1]
    redis.pexpire(keyspace.login_link(hashlib.sha256(token.encode()).hexdigest()), 1)
    assert wait_for(lambda: not redis.exists(keyspace.login_link(hashlib.sha256(token.encode()).hexdigest())), 2)
    for bad in (path, "/login/" + "A" * 32, "/login/x", "/login/%00%0a" + "a" * 30):
        page = client.get(bad)
        assert page.status_code in (404, 410), (bad, page.status_code)
        assert "登录链接无效" in page.text and "发送「登录」" in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"


def test_guessing_links_from_one_address_is_stopped_and_other_addresses_are_not(app, client):
    guesser = app.test_client()
    for i in range(20):
        assert guesser.get(f"/login/{'G' * 31}{i % 10}", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 410
    path = ask_link(client, OPENID)
    refused = guesser.get(path, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert refused.status_code == 429 and "尝试次数过多" in refused.text
    assert app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.0.0.10"}).status_code == 303  # not used up


def test_a_tampered_cookie_gets_a_page_and_is_signed_out(app):
    browser = signed_in_client(app, OPENID)
    cookie = browser.get_cookie("xiaoyi_session")
    forged = cookie.value[:-3] + ("AAA" if not cookie.value.endswith("AAA") else "BBB")
    browser.set_cookie("xiaoyi_session", forged)
    page = browser.get("/me")
    assert page.status_code == 400 and "登录状态无效" in page.text and "发送「登录」" in page.text
    assert browser.get_cookie("xiaoyi_session") is None  # deleted: the follower is signed out
    assert browser.get("/me").status_code == 401


def test_a_cookie_signed_with_another_secret_is_refused(app, make_app, config):
    other = make_app({**config, "BOT_SECRET": "another-secret-" + "y" * 40})
    intruder = signed_in_client(other, OPENID)  # a valid cookie of another deployment
    browser = app.test_client()
    browser.set_cookie("xiaoyi_session", intruder.get_cookie("xiaoyi_session").value)
    assert browser.get("/me").status_code == 400


def test_sign_out_ends_this_session_and_sign_out_everywhere_ends_all(app):
    phone, desktop, laptop = (signed_in_client(app, OPENID) for _ in range(3))
    page = phone.get("/me").text
    assert phone.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert phone.get("/me").status_code == 401
    assert desktop.get("/me").status_code == 200
    page = desktop.get("/me").text
    assert desktop.post("/logout/everywhere", data={"csrf_token": csrf_of(page)}).status_code == 303
    ended = laptop.get("/me")
    assert ended.status_code == 401 and "所有设备上退出" in ended.text
    assert signed_in_client(app, OPENID).get("/me").status_code == 200  # a new sign-in works


def test_a_blocked_follower_is_signed_out_on_the_next_request(app, redis):
    browser = signed_in_client(app, OPENID)
    with app.app_context():
        services().blocks.block_openid(OPENID)
    page = browser.get("/me")
    assert page.status_code == 403 and "账号已暂停" in page.text


def test_a_follower_whose_key_was_revoked_signs_in_and_gets_a_new_key_with_the_balance(app, issue_key):
    key = issue_key(OPENID)
    with app.app_context():
        services().keys.grant(services().keys.fingerprint(key), 500)
        services().keys.revoke(OPENID)
    browser = signed_in_client(app, OPENID)
    page = browser.get("/me").text
    assert "已撤销" in page and "10500 tokens" in page and key not in page
    new = browser.post("/me/key/new", data={"csrf_token": csrf_of(page)})
    assert new.status_code == 200
    fresh = new.text.split('id="new-key" class="key">')[1].split("<")[0]
    assert fresh.startswith("sk-") and fresh != key
    assert "10500 tokens" in browser.get("/me").text


def test_sign_in_starts_a_fresh_session(app):
    browser = app.test_client()
    with browser.session_transaction() as planted:  # what a visitor had before signing in
        planted["openid"] = "oSomeoneElse"
        planted["oauth_state"] = "planted"
    with app.app_context():
        token = app.extensions["signins"].issue_link(OPENID)
    browser.get(f"/login/{token}")
    with browser.session_transaction() as now:
        assert now["openid"] == OPENID and "oauth_state" not in now


def test_the_cookie_is_secure_over_https_and_a_forged_forwarded_proto_does_not_make_it_so(app):
    with app.app_context():
        tokens = [app.extensions["signins"].issue_link(OPENID) for _ in range(2)]
    over_https = app.test_client().get(f"/login/{tokens[0]}", base_url="https://portal.example")
    assert "Secure" in over_https.headers["Set-Cookie"]
    claimed = app.test_client().get(f"/login/{tokens[1]}", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in claimed.headers["Set-Cookie"]  # only gunicorn's trusted proxies say so


def test_the_token_never_reaches_a_log_line(app, client, caplog):
    caplog.set_level(logging.INFO)
    path = ask_link(client, OPENID)
    app.test_client().get(path)
    app.test_client().get(path)
    token = path.rsplit("/", 1)[1]
    assert "/login/…" in caplog.text and token not in caplog.text


def test_the_cli_prints_a_link_that_signs_in(app):
    result = app.test_cli_runner().invoke(args=["console", "link", OPENID, "--base", "https://bot.example"])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert link.startswith("https://bot.example/login/")
    assert app.test_client().get(link.removeprefix("https://bot.example")).status_code == 303
    refused = app.test_cli_runner().invoke(args=["console", "link", "o\nbad"])
    assert refused.exit_code != 0 and "not an openid" in refused.output


@pytest.fixture
def oauth_app(config, make_app, wechat_api):
    return make_app({**config, "WECHAT_OAUTH": "1", "WECHAT_OAUTH_BASE_URL": wechat_api.url + "/connect/"})


def _through_wechat(browser, wechat_api) -> str:
    """The browser opens /login/wechat; WeChat's authorize page sends it back; answers the return path."""
    import requests

    start = browser.get("/login/wechat")
    assert start.status_code == 302 and start.headers["Location"].startswith(wechat_api.url + "/connect/oauth2/")
    assert "scope=snsapi_base" in start.headers["Location"]
    back = requests.get(start.headers["Location"], allow_redirects=False, timeout=5).headers["Location"]
    return back.removeprefix("http://localhost")


def test_wechat_oauth_signs_a_follower_in_silently(oauth_app, wechat_api):
    wechat_api.sign_in_as(OPENID)
    browser = oauth_app.test_client()
    done = browser.get(_through_wechat(browser, wechat_api))
    assert done.status_code == 303 and done.headers["Location"].endswith("/me")
    assert browser.get("/me").status_code == 200
    assert wechat_api.calls_to("/sns/oauth2/access_token")[0].query["code"].startswith("CODE-")


def test_an_admin_signing_in_through_wechat_lands_on_the_console_as_a_link_does(oauth_app, wechat_api):
    wechat_api.sign_in_as(ADMIN)
    browser = oauth_app.test_client()
    done = browser.get(_through_wechat(browser, wechat_api))
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin")
    assert "运营控制台" in browser.get("/admin").text


def test_an_admins_portal_pages_link_to_the_console_and_a_followers_never_do(app):
    console = '<a href="/admin">控制台</a>'
    admin, follower = signed_in_client(app, ADMIN, lands="/admin"), signed_in_client(app, OPENID)
    for path in ("/me", "/docs", "/playground", "/"):
        assert console in admin.get(path).text, path
        assert console not in follower.get(path).text, path
    assert console not in app.test_client().get("/").text  # signed out
    assert follower.get("/admin").status_code == 403  # the link's absence is not the lock


def test_wechat_oauth_refuses_a_wrong_state_a_reused_code_and_is_off_by_default(oauth_app, wechat_api, client):
    wechat_api.sign_in_as(OPENID)
    browser = oauth_app.test_client()
    back = _through_wechat(browser, wechat_api)
    forged = back.replace("state=", "state=x")
    assert browser.get(forged).status_code == 400  # the state does not match: a CSRF'd sign-in
    other = oauth_app.test_client()  # another browser, with a code it did not ask for
    assert other.get(back).status_code == 400
    retry = oauth_app.test_client()
    again = _through_wechat(retry, wechat_api).split("code=")[0] + "code=" + back.split("code=")[1]
    assert retry.get(again).status_code == 400  # a code is good once (the state is this browser's)
    assert retry.get("/me").status_code == 401
    assert client.get("/login/wechat").status_code == 404  # WECHAT_OAUTH unset


@pytest.mark.slow
def test_gunicorns_access_log_shows_no_token(redis_server, upstream_server, tmp_path, redis):
    import redis as redis_py
    import requests

    from bot.web.signins import SignIns
    from tests.servers import Gunicorn

    server = Gunicorn(tmp_path, redis_server.url, upstream_server.url, WEB_CONCURRENCY="1").start()
    try:
        with redis_py.Redis.from_url(redis_server.url, decode_responses=True) as client:
            token = SignIns(client).issue_link(OPENID)
        assert requests.get(f"{server.url}/login/{token}", allow_redirects=False, timeout=5).status_code == 303
        assert wait_for(lambda: any(path == "/login/…" for _, _, path in server.served()), 5)
        assert token not in server.logs()
    finally:
        server.stop()
