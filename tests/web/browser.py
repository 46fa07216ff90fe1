"""Debian's chromium driven by Playwright (never `playwright install`), and the portal served for it.

Each page a test opens is watched: console errors, failed requests and any request that leaves
127.0.0.1 are collected in a Watch, which the tests assert is empty.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests.conftest import ACCOUNT
from tests.follower import Follower
from tests.portal import link_path

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--disable-domain-reliability", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter", "--disable-dev-shm-usage",
]  # fmt: skip


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is not installed: run `make chromium` (or: apt-get install -y chromium)")
    return path


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


@dataclass
class Watch:
    """What went wrong on the pages of one browser context."""

    base: str
    problems: list[str] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)  # URLs whose 4xx is the point (a used link)

    def attach(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("request", self._local_only)
        page.on("response", self._no_error_status)
        return page

    def _console(self, message) -> None:
        # A 4xx the test expects (a used link) is also reported on the console: not a problem.
        if message.type == "error" and message.location.get("url") not in self.expected:
            self.problems.append(f"console: {message.text} at {message.location}")

    def _local_only(self, request) -> None:
        if not request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            self.problems.append(f"left 127.0.0.1: {request.url}")

    def _no_error_status(self, response) -> None:
        if response.status >= 400 and response.url not in self.expected:
            self.problems.append(f"HTTP {response.status}: {response.url}")


@contextmanager
def context(browser: Browser, base: str, viewport: dict[str, int]) -> Iterator[tuple[BrowserContext, Page, Watch]]:
    """A fresh browser profile (no cookies) at `viewport`, its first page watched."""
    ctx = browser.new_context(viewport=viewport, base_url=base, locale="zh-CN", service_workers="block")
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    watch = Watch(base)
    try:
        yield ctx, watch.attach(ctx.new_page()), watch
    finally:
        ctx.close()


def http_post(base: str):
    """How the WeChat simulator posts to the served /wechat."""

    def post(params: dict[str, str], body: bytes) -> tuple[int, bytes]:
        answer = requests.post(f"{base}/wechat", params=params, data=body, timeout=10)
        return answer.status_code, answer.content

    return post


def link_from_account(base: str, openid: str) -> str:
    """A follower sends 登录 to the served account (as WeChat would); the sign-in link's path."""
    return link_path(Follower(http_post(base), ACCOUNT, openid).say("登录"))


def overflows(page: Page) -> bool:
    """Whether the page is wider than its viewport (a phone would scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
