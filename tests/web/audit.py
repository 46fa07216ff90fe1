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


# axe-core leaves SVG graphics alone; WCAG 1.4.11 asks 3:1 of a chart's bars against what they sit on.
CHART_CONTRAST = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => {
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x); return (hi + 0.05) / (lo + 0.05); };
  const backdrop = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c; } return [255, 255, 255]; };
  const seen = new Set();
  for (const bar of document.querySelectorAll('svg.chart rect')) {
    const fill = getComputedStyle(bar).fill, under = backdrop(bar.closest('svg').parentElement);
    const found = ratio(rgb(fill), under);
    if (found < 3) seen.add(`${bar.getAttribute('class')} ${fill} on rgb(${under.slice(0, 3)}): ${found.toFixed(2)}:1`);
  }
  return [...seen];
}"""


def chart_contrast(page: Page) -> list[str]:
    """Each chart bar colour below 3:1 against the chart's background (WCAG 1.4.11); [] when none."""
    return list(page.evaluate(CHART_CONTRAST))
