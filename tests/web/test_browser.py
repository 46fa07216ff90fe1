"""The portal in a real browser (Debian's chromium through Playwright), as a follower uses it on a
phone and on a desktop: sign in with a link from the account, see the balance, show and copy the key,
ask in the playground and watch the answer stream, rotate the key, sign out. No console error, no
failed request, nothing fetched from anywhere but 127.0.0.1."""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import expect

from bot.services import services
from tests.web.browser import DESKTOP, PHONE, context, link_from_account, overflows


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375x812", "1280x800"])
def test_a_follower_signs_in_sees_the_key_asks_rotates_and_signs_out(browser, portal, upstream_server, viewport):
    base, app = portal
    openid = f"oBrowser{viewport['width']:020d}"
    with app.app_context():
        key = services().keys.issue(openid)[0]
    # 7 pieces, 250 ms apart: the first shows once the content screen's held tail is passed
    upstream_server.reset(piece_chars=2, chunk_delay=0.25)
    with context(browser, base, viewport) as (ctx, page, watch):
        link = link_from_account(base, openid)
        page.goto(link)
        assert page.url == f"{base}/me" and not overflows(page)
        assert page.get_by_text("10000 tokens").first.is_visible()
        assert key not in page.content()
        page.get_by_role("button", name="显示密钥").click()
        expect(page.locator("#key")).to_have_text(key)  # polled without eval: the CSP forbids it
        page.get_by_role("button", name="复制密钥").click()
        page.get_by_text("已复制到剪贴板").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == key

        page.get_by_role("link", name="在线体验").click()
        page.get_by_label("你的问题").fill("你好，请介绍一下自己")
        page.get_by_role("button", name="发送").click()
        answer, usage = page.locator("#dialogue li.assistant .text"), page.locator("#dialogue .usage")
        answer.wait_for()
        seen = {answer.text_content()}
        deadline = time.monotonic() + 10
        while usage.count() == 0 and time.monotonic() < deadline:  # read the answer as it is written
            seen.add(answer.text_content())
        final = answer.text_content()
        assert final == "回答：你好，请介绍一下自己" and len(seen - {final}) >= 1  # it grew piece by piece
        assert "tokens" in page.locator("#dialogue .usage").text_content()
        assert not overflows(page)

        page.goto("/me")
        page.get_by_role("link", name="更换密钥").click()
        page.get_by_role("button", name="确认更换").click()
        new = page.locator("#new-key").text_content()
        assert new.startswith("sk-") and new != key
        old = requests.post(f"{base}/api/v1/chat/completions", json={"api_secret_key": key, "messages": [
            {"role": "user", "content": "hi"}]}, timeout=10)  # fmt: skip
        assert old.status_code == 401
        page.goto("/me")
        assert page.get_by_text("10000 tokens").count() == 0  # the question above was charged…
        assert page.locator("#recent tbody tr").count() >= 1  # …and is listed

        page.get_by_role("button", name="退出登录").first.click()
        page.wait_for_url(f"{base}/")
        assert page.get_by_role("link", name="登录", exact=True).is_visible()
        assert watch.problems == []

        watch.expected.update({f"{base}{link}", f"{base}/me"})
        page.goto(link)  # the used link
        assert page.get_by_role("heading", name="登录链接无效").is_visible()
        assert "发送「登录」" in page.content()
        page.goto("/me")
        assert page.get_by_role("heading", name="请先登录").is_visible()
        assert watch.problems == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["375x812", "1280x800"])
def test_the_public_pages_fit_the_screen_and_load_only_from_here(browser, portal, viewport):
    base, _ = portal
    with context(browser, base, viewport) as (_, page, watch):
        for path, heading in (("/", "小一机器人"), ("/docs", "API 文档"), ("/login", "登录")):
            page.goto(path)
            assert page.get_by_role("heading", name=heading, exact=True).is_visible()
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
            assert not overflows(page), path
            unnamed = page.evaluate(
                "[...document.querySelectorAll('button, a, input, textarea')]"
                ".filter(e => !(e.innerText || e.getAttribute('aria-label') || e.labels?.length"
                " || e.type === 'hidden'))"
                ".length"
            )
            assert unnamed == 0, path
        assert watch.problems == []


def test_the_playground_says_plainly_when_the_balance_is_gone(browser, portal):
    base, app = portal
    openid = "oBrowserPoor0000000000000001"
    with app.app_context():
        svc = services()
        key = svc.keys.issue(openid)[0]
        svc.redis.hset(f"bot:{{k:{svc.keys.fingerprint(key)}}}", "balance", 0)
    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_from_account(base, openid))
        page.goto("/playground")
        watch.expected.add(f"{base}/api/v1/chat/completions")  # the API's 402 is what the page explains
        page.get_by_label("你的问题").fill("还能问吗")
        page.get_by_role("button", name="发送").click()
        page.get_by_role("alert").filter(has_text="余额不足").wait_for()
        assert [p for p in watch.problems if "402" not in p] == []
