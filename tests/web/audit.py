"""An automated WCAG 2.1 A/AA audit of the page a browser test has open: Deque's axe-core, vendored in
tests/web/axe/ and injected by the test only (the portal never serves it)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).with_name("axe") / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(page: Page) -> list[str]:
    """Each WCAG 2.1 A/AA rule the page breaks, with the elements that break it; [] when none.

    The source is evaluated through the DevTools protocol, which the page's CSP (no inline script)
    does not govern, so the audit sees the page exactly as a follower's browser renders it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.help}: `"
        " + v.nodes.map(n => n.target.join(' ')).join(', ')))",
        WCAG_21_AA,
    )
    return list(found)
