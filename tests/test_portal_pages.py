"""The portal's pages as a follower and a stranger see them: content, the key shown only on a POST
with a CSRF token, rotation, another follower's data, and the headers every page carries."""

from __future__ import annotations

import re

import pytest

from bot.api.openapi import openapi_document
from tests.helpers import ask, key_info
from tests.portal import csrf_of, signed_in_client

OPENID = "oPages0000000000000000000001"
OTHER = "oPages0000000000000000000002"


@pytest.fixture
def follower(app, issue_key):
    key = issue_key(OPENID)
    return key, signed_in_client(app, OPENID)


@pytest.mark.parametrize("path", ["/", "/docs", "/login"])
def test_public_pages_are_chinese_and_carry_the_security_headers(client, path):
    page = client.get(path)
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
    assert not re.search(r"\son\w+=", page.text)  # no inline event handler
    assert "http://" not in re.sub(r"http://localhost", "", page.text).split("<main")[0]  # nothing from elsewhere


def test_docs_list_every_operation_of_the_openapi_document(client):
    page = client.get("/docs").text
    for path in openapi_document()["paths"]:
        assert path.replace("{", "").replace("}", "") in page.replace("{", "").replace("}", "")
    assert "api_secret_key" in page and "from openai import OpenAI" in page and "fetch(" in page


def test_docs_fill_in_a_signed_in_followers_masked_key_never_the_key(follower):
    key, browser = follower
    page = browser.get("/docs").text
    assert key[-4:] in page and key not in page


def test_me_shows_the_masked_key_balance_and_use_and_the_key_only_on_a_post_with_csrf(app, follower):
    key, browser = follower
    assert ask(app.test_client(), key).status_code == 200
    page = browser.get("/me")
    assert page.headers["Cache-Control"] == "no-store"
    assert key not in page.text and key[-4:] in page.text
    info = key_info(app, key)
    assert f"{info.balance} tokens" in page.text and f"{info.used} tokens" in page.text
    assert "<svg" in page.text and "以表格查看每天用量" in page.text and "/api/v1" in page.text
    assert browser.post("/me/key").status_code == 400  # no CSRF token
    assert browser.post("/me/key", headers={"X-CSRFToken": "forged"}).status_code == 400
    token = csrf_of(page.text)
    shown = browser.post("/me/key", headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert shown.json == {"key": key} and shown.headers["Cache-Control"] == "no-store"
    assert key in browser.post("/me/key", data={"csrf_token": token}).text  # the form, without script


def test_rotating_keeps_the_balance_and_the_old_key_fails_at_once(app, follower):
    key, browser = follower
    balance = key_info(app, key).balance
    assert "确认更换" in browser.get("/me/rotate").text
    assert browser.post("/me/rotate").status_code == 400  # a cross-site post carries no token
    assert key_info(app, key) is not None
    done = browser.post("/me/rotate", data={"csrf_token": csrf_of(browser.get("/me/rotate").text)})
    new = re.search(r'id="new-key" class="key">(sk-\w+)<', done.text)[1]
    assert new != key and ask(app.test_client(), key).status_code == 401
    assert key_info(app, new).balance == balance
    assert ask(app.test_client(), new).status_code == 200


def test_pages_about_a_follower_need_a_session_and_show_only_the_sessions_own(app, issue_key, follower):
    other_key = issue_key(OTHER)
    stranger = app.test_client()
    for path in ("/me", "/playground", "/me/rotate"):
        page = stranger.get(path)
        assert page.status_code == 401 and "发送「登录」" in page.text
    _, browser = follower
    page = browser.get(f"/me?openid={OTHER}").text  # no page takes an id: the session says whose
    assert other_key[-4:] not in page
    token = csrf_of(page)
    shown = browser.post("/me/key", data={"csrf_token": token, "openid": OTHER}, headers={"Accept": "application/json"})
    assert shown.json["key"] != other_key


def test_the_playground_page_loads_its_script_from_this_origin(follower):
    _, browser = follower
    page = browser.get("/playground")
    assert page.status_code == 200 and 'src="/assets/playground.js"' in page.text
    with browser.get("/assets/playground.js") as script:
        assert script.status_code == 200 and script.headers["X-Content-Type-Options"] == "nosniff"
        assert "/api/v1/chat/completions" in script.text


def test_the_json_doors_and_wechat_need_no_csrf_token(client, issue_key):
    assert ask(client, issue_key(OTHER)).status_code == 200  # posted cross-site by nature: a key authenticates
