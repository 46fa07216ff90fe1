"""`make screenshots`: each portal and console page at 1280×800 and 375×812, written to a directory as PNGs.

    .venv/bin/python -m tests.web.screenshots var/screenshots

The service runs as in the browser tests (real redis-server, the model and WeChat API doubles, all
on 127.0.0.1), with a follower who has used the API and WeChat chat on some of the last 30 days, and
real traffic (API calls, WeChat messages) flushed into hours of the last 30 days for the dashboard.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from bot import create_app
from bot.embedded import EmbeddedRedis
from bot.ids import CHINA, today
from bot.services import services
from bot.store import keyspace
from bot.store.usage import day_before
from tests.conftest import ACCOUNT, ADMIN, TEST_SECRET, WECHAT_SECRET
from tests.doubles.upstream import UpstreamDouble
from tests.doubles.wechat_api import WeChatApiDouble
from tests.follower import Follower, flask_post
from tests.helpers import ask
from tests.portal import link_path
from tests.servers import werkzeug_server
from tests.web.browser import DESKTOP, PHONE, context, http_post, launch, link_from_account

OPENID = "oScreenshots0000000000000001"


def _with_history(app) -> None:
    """A follower with a key, some API requests and 30 days of made-up daily use, for the chart."""
    with app.app_context():
        svc = services()
        key = svc.keys.issue(OPENID)[0]
        client = app.test_client()
        for question in ("你好", "写一首关于春天的诗", "1+1=?"):
            ask(client, key, question)
        fp, now = svc.keys.fingerprint(key), today()
        svc.redis.hset(keyspace.api_key_days(fp), mapping={day_before(now, d): (d * 37) % 900 for d in range(1, 30)})
        svc.redis.hset(keyspace.follower_days(OPENID), mapping={day_before(now, d): (d * 53) % 600 for d in range(30)})
    _traffic(app)


HOURS_AGO = (0, 1, 2, 4, 7, 11, 16, 22, 30, 55, 80, 130, 190, 260, 340, 430, 530, 640)


def _traffic(app) -> None:
    """API calls (three other followers' keys) and WeChat messages, each batch flushed into an hour of the
    last 30 days as a worker flushes its counters every 10 s: the dashboard's panels have bars to show."""
    client, flusher = app.test_client(), app.extensions["stats_flush"]
    with app.app_context():
        keys = [services().keys.issue(f"oScreenshotsApi{n:013d}")[0] for n in range(3)]
    for i, back in enumerate(HOURS_AGO):
        for n in range(i % 3 + 1):
            ask(client, keys[n], "你好")
        for n in range(i * 2 % 5 + 1):
            Follower(flask_post(client), ACCOUNT, f"oScreenshotsChat{i:06d}{n:06d}").say("你好")
        flusher.flush(now=datetime.now(CHINA) - timedelta(hours=back))
    _word_hits(app, client, keys[0])


def _word_hits(app, client, key: str) -> None:
    """Run-time banned words, and questions that hit them and a shipped word: the words page's counts."""
    with app.app_context():
        guard = services().guard
        guard.store.add(["刷单返利", "代开发票", "高额兼职"])
        guard.refresher.poll()  # as each worker does every second
    for question in ("刷单返利怎么做", "有刷单返利吗", "能代开发票吗", "示例违禁词"):
        ask(client, key, question)
    app.extensions["stats_flush"].flush()


def shoot(outdir: Path, base: str, browser) -> list[Path]:
    written = []
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with context(browser, base, viewport) as (_, page, _watch):
            for path, page_name in (("/", "home"), ("/docs", "docs"), ("/login", "login")):
                page.goto(path)
                written.append(_save(page, outdir / f"{page_name}-{name}.png"))
            link = link_from_account(base, OPENID)
            page.goto(link)
            written.append(_save(page, outdir / f"me-{name}.png"))
            page.goto("/playground")
            page.get_by_label("你的问题").fill("你好，请介绍一下自己")
            page.get_by_role("button", name="发送").click()
            page.locator("#dialogue .usage").wait_for()
            written.append(_save(page, outdir / f"playground-{name}.png"))
            page.goto("/me/rotate")
            written.append(_save(page, outdir / f"rotate-{name}.png"))
            page.goto(link)
            written.append(_save(page, outdir / f"used-link-{name}.png"))
            written += _console(page, base, outdir, name)
    return written


def _console(page, base: str, outdir: Path, name: str) -> list[Path]:
    """The operator console's pages, signed in as the admin from a /console link."""
    page.goto(link_path(Follower(http_post(base), ACCOUNT, ADMIN).say("/console")))
    written = [_save(page, outdir / f"admin-{name}.png")]
    pages = [("/admin?span=month", "admin-month"), ("/admin/keys", "admin-keys-list"),
             (f"/admin/keys?q={OPENID}", "admin-keys"), (f"/admin/keys/{OPENID}/grant?tokens=500", "admin-confirm"),
             ("/admin/audit", "admin-audit"), ("/admin/export", "admin-export"), ("/admin/menu", "admin-menu"),
             ("/admin/content", "admin-content"), ("/admin/content/words", "admin-words")]  # fmt: skip
    for path, page_name in pages:
        page.goto(path)
        written.append(_save(page, outdir / f"{page_name}-{name}.png"))
    page.goto("/admin/menu")
    page.get_by_label("名称", exact=True).first.fill("领取密钥")
    page.get_by_role("button", name="检查并预览").click()
    written.append(_save(page, outdir / f"admin-menu-preview-{name}.png"))
    page.get_by_role("button", name="确认保存并发布到微信").click()
    page.locator("#answer").wait_for()
    written.append(_save(page, outdir / f"admin-menu-published-{name}.png"))
    return written


def _save(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    return path


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    wechat = WeChatApiDouble(ACCOUNT.appid, WECHAT_SECRET)
    app = create_app({
        "BOT_ENV": "test", "REDIS_URL": redis.url, "BOT_SECRET": TEST_SECRET, "OPENAI_BASE_URL": upstream.url,
        "OPENAI_API_KEY": "sk-upstream-test", "WECHAT_TOKEN": ACCOUNT.token, "WECHAT_AES_KEY": ACCOUNT.aes_key,
        "WECHAT_APPID": ACCOUNT.appid, "WECHAT_SECRET": WECHAT_SECRET, "WECHAT_API_BASE_URL": wechat.url,
        "BOT_ADMIN_OPENIDS": ADMIN,
    })  # fmt: skip
    try:
        _with_history(app)
        with werkzeug_server(app) as base, sync_playwright() as playwright:
            browser = launch(playwright)
            for path in shoot(outdir, base, browser):
                print(path)
            browser.close()
    finally:
        app.extensions["bot"].close()
        upstream.stop()
        wechat.stop()
        redis.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "var/screenshots"))
