"""The 30-day chart of /me as SVG drawn on the server: no script, no library, readable as a table too."""

from __future__ import annotations

from dataclasses import dataclass

from bot.web.account import Day

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 12, 28  # room for the axes' labels (half of the last day's on the right)


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    api_y: float
    api_h: float
    wechat_y: float
    wechat_h: float
    day: Day


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, tokens) on the left axis
    labels: list[tuple[float, str]]  # (x, MM-DD) under every fifth day
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom_y: int = HEIGHT - BOTTOM


def nice_top(peak: int) -> int:
    """The axis' top: the least of 10, 20, 50, 100, 200… at or above the busiest day."""
    scale = 10
    while True:
        for multiple in (1, 2, 5):
            if multiple * scale >= peak:
                return multiple * scale
        scale *= 10


def draw(days: list[Day]) -> Chart:
    """Stacked bars (WeChat chat below, API above) of tokens per day, on a shared token axis."""
    top = nice_top(max((d.total for d in days), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    base = TOP + plot_h
    bars = []
    for i, day in enumerate(days):
        wechat_h = plot_h * day.wechat / top
        api_h = plot_h * day.api / top
        x = LEFT + i * step + step * 0.15
        bars.append(Bar(x, step * 0.7, base - wechat_h - api_h, api_h, base - wechat_h, wechat_h, day))
    ticks = [(base - plot_h * f, round(top * f)) for f in (0, 0.5, 1)]
    labels = [(LEFT + i * step + step / 2, d.label) for i, d in enumerate(days) if (len(days) - 1 - i) % 5 == 0]
    return Chart(bars, ticks, labels)
