"""The doors that authenticate by key or by WeChat's signature (/wechat, /api/v1, /v1, ops) take no part
in the portal's session, CSRF or page headers: a portal cookie sent to them (the playground's own
fetch, a browser on the same host) is neither read nor answered, valid or not."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask

from bot.web.doors import Doors
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.helpers import ask, bearer
from tests.portal import signed_in_client

OPENID = "oDoors0000000000000000000001"
COOKIES = {"tampered": "eyJvcGVuaWQiOiJvWCJ9.AAAA.BBBB", "junk": "a.b.c"}


@pytest.mark.parametrize("cookie", COOKIES.values(), ids=COOKIES.keys())
def test_a_portal_cookie_sent_to_the_doors_is_not_read_or_answered(app, issue_key, cookie):
    key = issue_key(OPENID)
    caller = app.test_client()
    caller.set_cookie("xiaoyi_session", cookie)
    answers = {
        "/api/v1": ask(caller, key),
        "/v1": caller.post("/v1/chat/completions", headers=bearer(key), json={
            "model": "test-model", "messages": [{"role": "user", "content": "hi"}]}),
        "/healthz": caller.get("/healthz"),
        "/api/v1/openapi.json": caller.get("/api/v1/openapi.json"),
    }  # fmt: skip
    follower = Follower(flask_post(caller), ACCOUNT, OPENID)
    assert follower.say("你好")  # answered as ever
    for door, answer in answers.items():
        assert answer.status_code == 200, door
        assert "Set-Cookie" not in answer.headers and "Content-Security-Policy" not in answer.headers, door
    assert caller.get_cookie("xiaoyi_session").value == cookie  # still there: the doors did not touch it


def test_the_playground_can_call_the_api_while_signed_in_and_stays_signed_in(app, issue_key):
    key = issue_key(OPENID)
    browser = signed_in_client(app, OPENID)
    answer = ask(browser, key)  # the playground's fetch carries the session cookie
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert browser.get("/me").status_code == 200


def test_a_page_that_could_take_a_doors_path_keeps_its_csrf_check():
    # A door is told by its path's first segment; a page rule starting with a variable could take any
    # path, so then no path is taken for a door's, and every form post is checked.
    app = Flask(__name__)
    door, pages = Blueprint("door", __name__), Blueprint("pages", __name__)
    door.add_url_rule("/wechat", "hook", lambda: "")
    pages.add_url_rule("/docs", "docs", lambda: "")
    app.register_blueprint(door)
    app.register_blueprint(pages)
    assert Doors(app, ["door"]).is_door({"PATH_INFO": "/wechat"})
    assert not Doors(app, ["door"]).is_door({"PATH_INFO": "/docs"})
    catch_all = Blueprint("catch_all", __name__)
    catch_all.add_url_rule("/<path:anything>", "anything", lambda anything: "")
    app.register_blueprint(catch_all)
    assert not Doors(app, ["door"]).is_door({"PATH_INFO": "/wechat"})
