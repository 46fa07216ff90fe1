"""Every operator console page, at 375x812 and 1280x800 (and in dark mode), passes axe-core's WCAG 2.1
A/AA rules (tests/web/audit.py), in each state an admin sees it in: the dashboard over 24 hours and
30 days with bars drawn from real traffic (and after 刷新), the keys without a search, a key's page with
its chart and recent requests, a confirmation and the 已完成 state, the system prompt's preview and a
refusal, the banned words and a confirmation, the menu's form, a preview with problems and WeChat's
answer after publishing, the audit log, and the 401 and 403 pages. Each page loads with no console
error, failed request or request beyond 127.0.0.1."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from bot.services import services
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower
from tests.portal import link_path
from tests.web.audit import chart_contrast, violations
from tests.web.browser import DESKTOP, PHONE, context, http_post, link_from_account


def _traffic(base: str, app, openid: str) -> None:
    """A follower chats on WeChat and calls the API, and the worker flushes the counters: bars to draw."""
    with app.app_context():
        key = services().keys.issue(openid)[0]
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}
    assert requests.post(f"{base}/api/v1/chat/completions", json=body, timeout=10).status_code == 200
    assert Follower(http_post(base), ACCOUNT, openid).say("你好")
    app.extensions["stats_flush"].flush()


@pytest.mark.parametrize(
    ("viewport", "scheme"), [(PHONE, "light"), (DESKTOP, "light"), (PHONE, "dark")], ids=["375x812", "1280x800", "dark"]
)
def test_every_console_page_meets_wcag_21_aa(browser, portal, wechat_api_server, viewport, scheme):
    base, app = portal
    follower = f"oConsoleAudit{scheme}{viewport['width']:011d}"
    _traffic(base, app, follower)
    wechat_api_server.reset()
    found: dict[str, list[str]] = {}

    def audit(name: str) -> None:
        page.wait_for_load_state()  # a form's answer is audited as shown, its stylesheets applied
        # every 以表格查看 open, as an admin who reads the tables has them: their tables are audited too
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        found[name] = violations(page) + chart_contrast(page)

    with context(browser, base, viewport) as (_, page, watch):
        page.emulate_media(color_scheme=scheme)
        for path in ("/admin", "/admin/keys"):
            watch.expected.add(f"{base}{path}")
        page.goto("/admin")  # signed out: 401
        audit("401")
        page.goto(link_from_account(base, follower))
        page.goto("/admin/keys")  # a follower: 403
        audit("403")
        page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
        page.get_by_role("button", name="刷新").click()  # the page as served, its panels swapped in again
        expect(page.locator("#refreshed")).to_contain_text("已刷新")
        assert page.locator("#panel-traffic svg rect").count() >= 2  # bars to check the colours of
        audit("/admin, 24 hours, refreshed")
        page.get_by_role("link", name="最近 30 天").click()
        audit("/admin, 30 days")
        watch.expected.clear()
        page.goto("/admin/keys")
        audit("/admin/keys")
        page.goto(f"/admin/keys?q={follower}")
        audit("/admin/keys, a key")
        page.get_by_label("增加额度（tokens）").fill("500")
        page.get_by_role("button", name="增加额度…").click()
        audit("confirmation")
        page.get_by_role("button", name="确认增加额度").click()
        page.get_by_role("status").filter(has_text="已完成").wait_for()
        audit("/admin/keys, done")
        page.goto("/admin/export")
        audit("/admin/export")
        page.goto("/admin/audit")
        audit("/admin/audit")
        page.goto("/admin/content")
        audit("/admin/content")
        page.get_by_label("系统提示（最多").fill("你是小一机器人，回答简短。")
        page.get_by_role("button", name="预览").click()
        audit("/admin/content, preview")
        page.get_by_role("button", name="确认保存系统提示").click()
        page.get_by_role("link", name="恢复默认（BOT_SYSTEM_PROMPT）…").click()
        audit("/admin/content, restoring the default")
        page.get_by_role("button", name="确认恢复默认").click()
        page.get_by_role("status").wait_for()
        page.goto("/admin/content")
        page.get_by_label("系统提示（最多").fill("   ")
        page.get_by_role("button", name="预览").click()
        page.get_by_role("alert").wait_for()
        audit("/admin/content, refused")
        page.goto("/admin/content/words")
        audit("/admin/content/words")
        page.get_by_label("词", exact=True).fill("违禁测试词")
        page.get_by_role("button", name="添加…").click()
        audit("/admin/content/words, confirmation")
        page.goto("/admin/menu")
        audit("/admin/menu")
        page.get_by_label("名称", exact=True).first.fill("一个远远超过十六字节的按钮名称")
        page.get_by_role("button", name="检查并预览").click()
        page.get_by_role("alert").wait_for()
        audit("/admin/menu, problems")
        page.get_by_label("名称", exact=True).first.fill("领取密钥")
        page.get_by_role("button", name="检查并预览").click()
        audit("/admin/menu, preview")
        page.get_by_role("button", name="确认保存并发布到微信").click()
        expect(page.locator("#answer")).to_contain_text("errcode=0 ok")
        audit("/admin/menu, WeChat's answer")
        assert watch.problems == []
    assert wechat_api_server.calls_to("/cgi-bin/menu/create")
    failing = {name: rules for name, rules in found.items() if rules}
    assert failing == {}, "\n".join(f"{name}: {rule}" for name, rules in failing.items() for rule in rules)
