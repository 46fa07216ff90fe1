"""Every portal page, at 375x812 and 1280x800 (and in dark mode), passes axe-core's WCAG 2.1 A/AA
rules (tests/web/audit.py), in each state a follower sees it in: signed out, a used link's page, /me with
the key masked and shown, the playground with an answer and with an error, the rotation's confirmation
and the new key shown once, and /me after the key was revoked. Each page also loads with no console
error (a CSP violation is one), failed request or request beyond 127.0.0.1."""

from __future__ import annotations

import pytest

from bot.services import services
from tests.web.audit import violations
from tests.web.browser import DESKTOP, PHONE, context, link_from_account


@pytest.mark.parametrize(
    ("viewport", "scheme"), [(PHONE, "light"), (DESKTOP, "light"), (PHONE, "dark")], ids=["375x812", "1280x800", "dark"]
)
def test_every_page_meets_wcag_21_aa(browser, portal, upstream_server, viewport, scheme):
    base, app = portal
    openid = f"oAudit{scheme}{viewport['width']:018d}"
    with app.app_context():
        services().keys.issue(openid)
    upstream_server.reset()
    found: dict[str, list[str]] = {}

    def audit(name: str) -> None:
        found[name] = violations(page)

    with context(browser, base, viewport) as (_, page, watch):
        page.emulate_media(color_scheme=scheme)  # the stylesheet follows prefers-color-scheme
        for path in ("/", "/docs", "/login"):
            page.goto(path)
            audit(path)
        link = link_from_account(base, openid)
        page.goto(link)
        audit("/me")
        watch.expected.add(f"{base}{link}")
        page.goto(link)  # used: the problem page
        audit("used link")
        page.goto("/me")
        page.get_by_role("button", name="显示密钥").click()
        page.locator("#key").filter(has_text="sk-").filter(has_not_text="•").wait_for()
        audit("/me, key shown")
        page.goto("/docs")
        audit("/docs, signed in")
        page.goto("/playground")
        audit("/playground")
        page.get_by_label("你的问题").fill("你好")
        page.get_by_role("button", name="发送").click()
        page.locator("#dialogue .usage").wait_for()
        audit("/playground, answered")
        page.goto("/me/rotate")
        audit("/me/rotate")
        page.get_by_role("button", name="确认更换").click()
        page.locator("#new-key").wait_for()
        audit("new key, shown once")
        with app.app_context():
            services().keys.revoke(openid)
        page.goto("/me")
        audit("/me, key revoked")
        page.goto("/playground")
        watch.expected.add(f"{base}/me/key")  # no key: the page says so
        page.get_by_label("你的问题").fill("你好")
        page.get_by_role("button", name="发送").click()
        page.get_by_role("alert").wait_for()
        audit("/playground, error")
        assert watch.problems == []
    failing = {name: rules for name, rules in found.items() if rules}
    assert failing == {}, "\n".join(f"{name}: {rule}" for name, rules in failing.items() for rule in rules)
