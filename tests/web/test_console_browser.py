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

from bot.console.traffic import hour_key
from bot.ids import today
from bot.services import services
from bot.store.menus import MENU_KEY
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower
from tests.portal import link_path
from tests.web.browser import DESKTOP, PHONE, context, http_post, link_from_account, overflows

FOLLOWER = "oConsoleBrowser0000000000001"


def ask(base: str, key: str) -> requests.Response:
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}
    return requests.post(f"{base}/api/v1/chat/completions", json=body, timeout=10)


def fresh_counts(app) -> None:
    """The dashboard shows only what the test sends: the browser tests of one process share a Redis, so
    what earlier tests grew is flushed and every hour bucket dropped first."""
    app.extensions["stats_flush"].flush()
    with app.app_context():
        client = services().redis
        for bucket in client.scan_iter(match=hour_key("*")):
            client.delete(bucket)


def column_total(page, panel: str, column: str) -> int:
    """The sum of a column of a dashboard panel's table, opened with 以表格查看 as an admin would."""
    if not page.locator(f"#panel-{panel} details").evaluate("d => d.open"):
        page.locator(f"#panel-{panel} summary").click()
    expect(page.locator(f"#table-{panel}")).to_be_visible()
    return page.evaluate(
        """([panel, column]) => { const table = document.getElementById(`table-${panel}`);
        const at = [...table.tHead.rows[0].cells].findIndex(c => c.textContent.trim() === column);
        if (at < 0) throw new Error(`no column ${column}`);
        return [...table.tBodies[0].rows].reduce((sum, row) => sum + Number(row.cells[at].textContent), 0); }""",
        [panel, column],
    )


def test_an_admin_grants_revokes_and_exports_from_the_console(browser, portal, tmp_path):
    base, app = portal
    fresh_counts(app)
    with app.app_context():
        key = services().keys.issue(FOLLOWER)[0]
    for _ in range(2):
        assert ask(base, key).status_code == 200
    follower = Follower(http_post(base), ACCOUNT, FOLLOWER)
    for text in ("你好", "讲个笑话", "key"):
        assert follower.say(text)
    app.extensions["stats_flush"].flush()  # as each worker does every 10 s
    with app.app_context():
        used = services().keys.info(services().keys.fingerprint(key)).used
        balance = services().keys.info(services().keys.fingerprint(key)).balance
    with context(browser, base, DESKTOP) as (_, page, watch):
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        assert page.url == f"{base}/admin" and page.get_by_role("heading", name="运营控制台").is_visible()
        assert page.locator("#today-api").text_content() == "2" and page.locator("#today-wechat").text_content() == "3"
        assert "微信消息 3，API /api/v1 2" in page.locator("#panel-traffic").text_content()
        assert page.locator("#panel-traffic svg rect").count() == 2  # this hour's bar: WeChat under API
        assert (column_total(page, "traffic", "微信消息"), column_total(page, "traffic", "API /api/v1")) == (3, 2)
        page.get_by_role("button", name="刷新").click()  # the panels again, without reloading the page
        expect(page.locator("#refreshed")).to_contain_text("已刷新")
        assert (column_total(page, "traffic", "微信消息"), column_total(page, "traffic", "API /api/v1")) == (3, 2)
        page.get_by_role("link", name="最近 30 天").click()
        assert "每天" in page.locator("#traffic-title").text_content()
        assert (column_total(page, "traffic", "微信消息"), column_total(page, "traffic", "API /api/v1")) == (3, 2)

        page.get_by_role("link", name="密钥", exact=True).click()
        page.get_by_label("按 openid、密钥指纹或完整密钥查找").fill(key)  # posted: the key stays out of the URL
        page.get_by_role("button", name="查找").click()
        assert page.url == f"{base}/admin/keys?q={FOLLOWER}"
        assert page.locator("#balance").text_content() == f"{balance} tokens" and key not in page.content()
        assert page.locator("#recent tbody tr").count() == 2

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
        page.get_by_role("link", name="导出", exact=True).click()
        assert page.get_by_label("结束日期").input_value() == day  # the last 30 days, filled in
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

        page.goto("/admin/audit")
        with page.expect_download() as download:
            page.get_by_role("link", name="下载全部（CSV）").click()
        download.value.save_as(saved := tmp_path / "audit.csv")
        data = saved.read_bytes()
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert data.startswith("\ufeff".encode()) and rows[0][:4] == ["时间（北京时间）", "操作人", "来源", "操作"]
        mine = [(r[1], r[2], r[3]) for r in rows[1:] if r[4] == FOLLOWER]
        assert mine[-2:] == [(ADMIN, "控制台", "grant"), (ADMIN, "控制台", "revoke")]  # oldest first
        assert key not in data.decode("utf-8-sig")
        # chromium reports a navigation that became a download as aborted: that one is the download itself
        downloads = ("/admin/export/usage.csv", "/admin/audit.csv")
        assert [p for p in watch.problems if not (any(d in p for d in downloads) and "ERR_ABORTED" in p)] == []


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
    base, app = portal
    wechat_api_server.reset()  # WeChat forgets its tokens too: the first call may be refused once and retried
    with app.app_context():
        services().redis.delete(MENU_KEY)  # the form starts from config/menu.json, whatever another test saved
    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        page.get_by_role("link", name="菜单").click()
        page.get_by_label("名称", exact=True).first.fill("领取密钥")
        page.get_by_role("button", name="检查并预览").click()
        assert "领取密钥" in page.locator("#preview").text_content()
        page.get_by_role("button", name="确认保存并发布到微信").click()
        expect(page.locator("#answer")).to_contain_text("已发布：微信返回 errcode=0 ok")
        call = wechat_api_server.calls_to("/cgi-bin/menu/create")[-1]
        shipped = [b["name"] for b in json.loads(Path("config/menu.json").read_text(encoding="utf-8"))["button"]]
        assert [b["name"] for b in call.body["button"]] == ["领取密钥", *shipped[1:]]  # the first one renamed
        page.wait_for_load_state()  # the answer's page with its stylesheets
        assert not overflows(page) and watch.problems == []


def test_every_console_page_fits_a_phone_and_names_every_control(browser, portal):
    base, app = portal
    openid = "oConsolePhone000000000000001"
    with app.app_context():
        key = services().keys.issue(openid)[0]
    assert ask(base, key).status_code == 200  # the key's page has a chart and a recent request
    app.extensions["stats_flush"].flush()
    long = "https://example.com/" + "a" * 300  # one unbroken line, as a pasted URL is

    def fits(state: str) -> None:
        page.wait_for_load_state()  # a form's answer with its stylesheets: before them, anything overflows
        assert page.evaluate("document.documentElement.lang") == "zh-CN" and not overflows(page), state
        unnamed = page.evaluate(
            "[...document.querySelectorAll('button, a, input, textarea, select')]"
            ".filter(e => !(e.innerText || e.getAttribute('aria-label') || e.labels?.length"
            " || e.type === 'hidden')).length"
        )
        assert unnamed == 0, state

    with context(browser, base, PHONE) as (_, page, watch):
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        for path in ("/admin", "/admin?span=month", "/admin/keys", f"/admin/keys?q={openid}",
                     f"/admin/keys/{openid}/grant?tokens=500", f"/admin/keys/{openid}/revoke", "/admin/audit",
                     "/admin/content", "/admin/content/words", "/admin/menu"):  # fmt: skip
            page.goto(path)
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            fits(path)
        page.goto("/admin/content")
        page.get_by_label("系统提示（最多").fill(long)
        page.get_by_role("button", name="预览").click()
        expect(page.locator("#prompt-preview")).to_have_text(long)
        fits("/admin/content, preview")
        page.goto("/admin/content/words")
        page.get_by_label("词", exact=True).fill("w" * 64)  # the longest word the list takes
        page.get_by_role("button", name="添加…").click()
        expect(page.locator("#chosen")).to_have_text("w" * 64)
        fits("/admin/content/words, confirmation")
        page.goto("/admin/menu")
        page.locator("#b0_type").select_option("view")
        page.locator("#b0_value").fill(long)
        page.get_by_role("button", name="检查并预览").click()
        expect(page.locator("#preview")).to_contain_text(long)
        fits("/admin/menu, preview")
        page.locator("#b0_name").fill("一二三四五六")
        page.get_by_role("button", name="检查并预览").click()
        page.get_by_role("alert").wait_for()
        fits("/admin/menu, problems")
        assert watch.problems == []
