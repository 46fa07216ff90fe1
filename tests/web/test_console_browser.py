"""The operator console in a real browser: an admin signs in from the /console link, grants tokens
and sees the balance and the audit entry, revokes a key that the API then refuses, and downloads the
usage CSV; a follower who is not an admin gets 403."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import requests
from playwright.sync_api import expect

from bot.ids import today
from bot.services import services
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower
from tests.portal import link_path
from tests.web.browser import DESKTOP, PHONE, context, http_post, link_from_account, overflows

FOLLOWER = "oConsoleBrowser0000000000001"


def ask(base: str, key: str) -> requests.Response:
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}
    return requests.post(f"{base}/api/v1/chat/completions", json=body, timeout=10)


def test_an_admin_grants_revokes_and_exports_from_the_console(browser, portal, tmp_path):
    base, app = portal
    with app.app_context():
        key = services().keys.issue(FOLLOWER)[0]
    assert ask(base, key).status_code == 200
    Follower(http_post(base), ACCOUNT, FOLLOWER).say("key")
    app.extensions["stats_flush"].flush()  # as each worker does every 10 s
    with app.app_context():
        used = services().keys.info(services().keys.fingerprint(key)).used
        balance = services().keys.info(services().keys.fingerprint(key)).balance
    with context(browser, base, DESKTOP) as (_, page, watch):
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        assert page.url == f"{base}/admin" and page.get_by_role("heading", name="运营控制台").is_visible()
        assert page.locator("#today-api").text_content() == "1" and page.locator("#today-wechat").text_content() == "1"
        assert "微信消息 1，API /api/v1 1" in page.locator("#panel-traffic").text_content()
        page.get_by_role("button", name="刷新").click()  # the panels again, without reloading the page
        expect(page.locator("#refreshed")).to_contain_text("已刷新")
        page.get_by_role("link", name="最近 30 天").click()
        assert "每天" in page.locator("#traffic-title").text_content()

        page.get_by_role("link", name="密钥", exact=True).click()
        page.get_by_label("按 openid、密钥指纹或完整密钥查找").fill(key)  # posted: the key stays out of the URL
        page.get_by_role("button", name="查找").click()
        assert page.url == f"{base}/admin/keys?q={FOLLOWER}"
        assert page.locator("#balance").text_content() == f"{balance} tokens" and key not in page.content()
        assert page.locator("#recent tbody tr").count() == 1

        page.get_by_label("增加额度（tokens）").fill("500")
        page.get_by_role("button", name="增加额度…").click()
        page.get_by_role("button", name="确认增加额度").click()
        assert page.locator("#balance").text_content() == f"{balance + 500} tokens"
        assert "已完成：增加额度" in page.get_by_role("status").text_content()

        page.get_by_role("link", name="操作记录").first.click()
        first = page.locator("#audit tbody tr").first.locator("td")
        assert first.nth(1).text_content() == ADMIN and first.nth(3).text_content() == "grant"
        assert first.nth(4).text_content() == FOLLOWER and "+500" in first.nth(5).text_content()

        page.goto(f"/admin/keys?q={FOLLOWER}")
        page.get_by_role("link", name="撤销密钥…").click()
        page.get_by_role("button", name="确认撤销密钥").click()
        assert page.locator("#key-id").text_content() == "已撤销"
        assert ask(base, key).status_code == 401

        day = f"{today()[:4]}-{today()[4:6]}-{today()[6:]}"
        page.get_by_label("开始日期").fill(day)
        page.get_by_label("结束日期").fill(day)
        with page.expect_download() as download:
            page.get_by_role("button", name="下载 CSV").click()
        saved = tmp_path / "usage.csv"
        download.value.save_as(saved)
        data = Path(saved).read_bytes()
        assert data.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert rows[0] == ["日期", "密钥", "用户 openid", "tokens"]
        mine = [r for r in rows[1:] if r[1].startswith("key#")]
        assert [day, "（已撤销）", str(used)] in [[r[0], r[2], r[3]] for r in mine]
        # chromium reports a navigation that became a download as aborted: that one is the download itself
        assert [p for p in watch.problems if not ("/admin/export/usage.csv" in p and "ERR_ABORTED" in p)] == []


def test_a_follower_who_is_not_an_admin_gets_403_on_the_console(browser, portal):
    base, app = portal
    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_from_account(base, FOLLOWER))
        assert page.url == f"{base}/me"
        for path in ("/admin", "/admin/keys", "/admin/audit", f"/admin/keys/{FOLLOWER}/revoke"):
            watch.expected.add(f"{base}{path}")
            answer = page.goto(path)
            assert answer.status == 403 and page.get_by_role("heading", name="没有权限").is_visible(), path
            assert not overflows(page)
        assert watch.problems == []


def test_an_admin_edits_the_menu_and_publishes_it_to_wechat(browser, portal, wechat_api_server):
    base, _ = portal
    wechat_api_server.reset()
    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        page.get_by_role("link", name="菜单").click()
        page.get_by_label("名称", exact=True).first.fill("领取密钥")
        page.get_by_role("button", name="检查并预览").click()
        assert "领取密钥" in page.locator("#preview").text_content()
        page.get_by_role("button", name="确认保存并发布到微信").click()
        expect(page.locator("#answer")).to_contain_text("已发布：微信返回 errcode=0 ok")
        [call] = wechat_api_server.calls_to("/cgi-bin/menu/create")
        shipped = [b["name"] for b in json.loads(Path("config/menu.json").read_text(encoding="utf-8"))["button"]]
        assert [b["name"] for b in call.body["button"]] == ["领取密钥", *shipped[1:]]  # the first one renamed
        assert not overflows(page) and watch.problems == []
        for path in ("/admin", "/admin/keys", "/admin/audit", "/admin/content", "/admin/content/words", "/admin/menu"):
            page.goto(path)  # each console page on a phone: fits the screen, every control has a name
            assert page.evaluate("document.documentElement.lang") == "zh-CN" and not overflows(page), path
            unnamed = page.evaluate(
                "[...document.querySelectorAll('button, a, input, textarea, select')]"
                ".filter(e => !(e.innerText || e.getAttribute('aria-label') || e.labels?.length"
                " || e.type === 'hidden')).length"
            )
            assert unnamed == 0, path
        assert watch.problems == []
