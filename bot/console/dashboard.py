"""What /admin shows: the hour buckets of bot/console/traffic.py summed into figures and panels.

A panel is a few series over the range's buckets (24 hours, or 30 days of 24 hours each), drawn as
stacked bars in SVG on the server and given as a table too. Active followers are a distinct count, so
they are not summed from hours: each bucket reads its own HyperLogLog (an hour's, or a day's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis

from bot.console.traffic import hours_back, read_active, read_hours
from bot.ids import CHINA
from bot.web.chart import nice_top

Counts = dict[str, int]
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 600, 200, 56, 12, 28
QUANTILES = (("p50", 0.5), ("p95", 0.95))
ACTIVE = "active_followers|"  # the bucket's distinct count, set from its HyperLogLog (never summed)


def _parse(field: str) -> tuple[str, dict[str, str]]:
    name, *pairs = field.split("|")
    return name, dict(p.split("=", 1) for p in pairs if "=" in p)


def total(counts: Counts, name: str, **match: str | tuple[str, ...]) -> int:
    """The sum of `name`'s fields whose labels match (a tuple: any of its values)."""
    found = 0
    for field, value in counts.items():
        metric, labels = _parse(field)
        if metric == name and all(labels.get(k) in (v if isinstance(v, tuple) else (v,)) for k, v in match.items()):
            found += value
    return found


def latency_ms(counts: Counts, quantile: float) -> float | None:
    """The model's latency at `quantile` (successful calls): the upper bound of its histogram bucket."""
    buckets: dict[float, int] = {}
    for field, value in counts.items():
        metric, labels = _parse(field)
        if metric == "upstream_seconds_bucket" and labels.get("outcome") == "ok":
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0) + value
    calls = buckets.get(float("inf"), 0)
    if not calls:
        return None
    return next(bound * 1000 for bound, seen in sorted(buckets.items()) if seen >= quantile * calls)


MODEL_FAILURES = ("upstream_failed", "upstream_timeout", "service_unavailable", "internal")
SERIES: dict[str, tuple[str, Callable[[Counts], float]]] = {
    "wechat": ("微信消息", lambda c: total(c, "requests_total", door="wechat")),
    "api": ("API /api/v1", lambda c: total(c, "requests_total", door="api")),
    "openai": ("API /v1", lambda c: total(c, "requests_total", door="openai")),
    "active": ("活跃用户", lambda c: c.get(ACTIVE, 0)),
    "tokens_wechat": ("微信聊天 tokens", lambda c: total(c, "tokens_charged_total", payer="follower")),
    "tokens_api": ("API tokens", lambda c: total(c, "tokens_charged_total", payer="key")),
    "in_window": ("5 秒内答复", lambda c: total(c, "wechat_deliveries_total", outcome="in_window")),
    "answered_1": ("第 1 次推送内答复", lambda c: total(c, "wechat_answered_total", delivery="1")),
    "answered_2": ("第 2 次推送内答复", lambda c: total(c, "wechat_answered_total", delivery="2")),
    "answered_3": ("第 3 次推送内答复", lambda c: total(c, "wechat_answered_total", delivery="3")),
    "partial": ("先答一部分", lambda c: total(c, "wechat_deliveries_total", outcome="partial")),
    "deferred": ("【正在思考…】", lambda c: total(c, "wechat_deliveries_total", outcome="deferred")),
    "continue": ("继续 取回", lambda c: total(c, "wechat_deliveries_total", outcome="continue")),
    "pushed": ("客服消息推送", lambda c: total(c, "wechat_deliveries_total", outcome="pushed")),
    "p50": ("p50 ms", lambda c: latency_ms(c, 0.5) or 0),
    "p95": ("p95 ms", lambda c: latency_ms(c, 0.95) or 0),
    "model_failed": ("模型失败", lambda c: total(c, "upstream_seconds_count", outcome=MODEL_FAILURES)),
    # The model's failures by kind, as the caller met them (after any failover): the ChatError's name.
    "upstream_failed": ("上游出错", lambda c: total(c, "upstream_seconds_count", outcome="upstream_failed")),
    "upstream_timeout": ("上游超时", lambda c: total(c, "upstream_seconds_count", outcome="upstream_timeout")),
    "unavailable": ("服务不可用", lambda c: total(c, "upstream_seconds_count", outcome="service_unavailable")),
    "internal": ("内部错误", lambda c: total(c, "upstream_seconds_count", outcome="internal")),
    "rate": ("频率限制", lambda c: total(c, "requests_total", outcome=("rate_limited", "key_rate", "user_rate"))),
    "block": ("封禁", lambda c: total(c, "requests_total", outcome="blocked")),
    "balance": ("余额不足", lambda c: total(c, "requests_total", outcome=("quota_exhausted", "too_poor"))),
    "content": ("内容过滤", lambda c: total(c, "sensitive_hits_total", direction="question")),
    "redis": ("Redis 错误", lambda c: total(c, "redis_errors_total")),
    "new_keys": ("新密钥", lambda c: total(c, "keys_issued_total")),
}
PANELS = (
    ("traffic", "消息与调用（次）", ("wechat", "api", "openai")),
    ("active", "活跃用户（个，去重：微信聊天或调用 API）", ("active",)),
    ("tokens", "tokens", ("tokens_wechat", "tokens_api")),
    (
        "window",
        "微信 5 秒窗口的结果（次）",
        ("answered_1", "answered_2", "answered_3", "partial", "deferred", "continue", "pushed"),
    ),
    ("latency", "模型延迟（毫秒，成功的调用）", ("p50", "p95")),
    ("failures", "模型失败，按类型（次）", ("upstream_failed", "upstream_timeout", "unavailable", "internal")),
    ("refusals", "拒绝，按原因（次）", ("rate", "block", "balance", "content")),
    ("keys", "新领取密钥的用户（个）", ("new_keys",)),
    ("redis", "Redis 错误（次）", ("redis",)),
)
STACKED = ("traffic", "tokens", "window", "failures", "refusals", "keys", "redis")  # p50 and p95 are not added up


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    names: list[str]
    labels: list[str]
    rows: list[list[float]]  # per bucket, one value per series
    bars: list[list[tuple[float, float, float, float, int]]]  # per bucket: (x, y, w, h, series index)
    ticks: list[tuple[float, int]]
    marks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT


def merge(parts: list[Counts]) -> Counts:
    out: Counts = {}
    for part in parts:
        for field, value in part.items():
            out[field] = out.get(field, 0) + value
    return out


def buckets(client: redis.Redis, span: str, now: datetime | None = None) -> tuple[list[str], list[Counts]]:
    """("day": the last 24 hours | "month": the last 30 days): each bucket's label and counts."""
    now = (now or datetime.now(CHINA)).astimezone(CHINA)
    if span == "day":
        hours = hours_back(24, now)
        return [f"{h[8:]}:00" for h in hours], with_active(client, hours, read_hours(client, hours))
    hours = hours_back(24 * 30, now.replace(hour=23))  # from 00:00 29 days ago to tonight's last hour
    counts = read_hours(client, hours)
    days = [(hours[i][4:6] + "-" + hours[i][6:8], merge(counts[i : i + 24])) for i in range(0, len(hours), 24)]
    return [d for d, _ in days], with_active(client, [h[:8] for h in hours[::24]], [c for _, c in days])


def with_active(client: redis.Redis, buckets: list[str], counts: list[Counts]) -> list[Counts]:
    """`counts` with each bucket's distinct active followers (hours or days: `buckets`' keys)."""
    for bucket, found in zip(counts, read_active(client, buckets), strict=True):
        bucket[ACTIVE] = found
    return counts


def panel(pid: str, title: str, keys: tuple[str, ...], labels: list[str], counts: list[Counts]) -> Panel:
    """One panel's series over the buckets, with its bars laid out (stacked where they add up)."""
    rows = [[SERIES[k][1](c) for k in keys] for c in counts]
    stacked = pid in STACKED
    peak = max((sum(r) if stacked else max(r, default=0) for r in rows), default=0)
    top = nice_top(int(peak) + (1 if peak % 1 else 0))
    plot_w, plot_h, base = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM, HEIGHT - BOTTOM
    step = plot_w / max(len(rows), 1)
    bars = []
    for i, row in enumerate(rows):
        width = step * 0.7 / (1 if stacked else len(keys))
        y, laid = base, []
        for s, value in enumerate(row):
            h = plot_h * value / top
            x = LEFT + i * step + step * 0.15 + (0 if stacked else s * width)
            laid.append((x, (y - h) if stacked else base - h, width, h, s))
            y = y - h if stacked else y
        bars.append([b for b in laid if b[3] > 0])
    ticks = [(base - plot_h * f, round(top * f)) for f in (0, 0.5, 1)]
    every = max(len(rows) // 6, 1)
    marks = [(LEFT + i * step + step / 2, lab) for i, lab in enumerate(labels) if (len(rows) - 1 - i) % every == 0]
    return Panel(pid, title, [SERIES[k][0] for k in keys], labels, rows, bars, ticks, marks)


def panels(labels: list[str], counts: list[Counts]) -> list[Panel]:
    return [panel(pid, title, keys, labels, counts) for pid, title, keys in PANELS]


def today_figures(client: redis.Redis, now: datetime | None = None) -> dict[str, float | None]:
    """Today's totals (China time, since midnight) for the big figures at the top."""
    now = (now or datetime.now(CHINA)).astimezone(CHINA)
    so_far = merge(read_hours(client, hours_back(now.hour + 1, now)))
    counts = with_active(client, [now.strftime("%Y%m%d")], [so_far])[0]
    figures: dict[str, float | None] = {k: SERIES[k][1](counts) for k in SERIES if k not in ("p50", "p95")}
    figures.update({name: latency_ms(counts, q) for name, q in QUANTILES})
    figures["followers"] = figures.pop("active")  # today's day HyperLogLog, as the flushes filled it
    return figures
