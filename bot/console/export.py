"""/admin/export: the downloads, and /admin/export/usage.csv: tokens per API key per day over a date
range, for a spreadsheet.

It reads the per-key day hashes the API already keeps (bot/store/usage.py, 90 days), found with
SCAN (bot/console/ranking.py): an operator's download, never on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import redis
from flask import Response, abort, render_template, request

from bot.console.access import audit, bp
from bot.console.ranking import key_days
from bot.console.views import csv_download
from bot.ids import CHINA, log_id
from bot.services import services

MAX_DAYS = 92  # the history kept (90 days) and a little slack for the range's ends


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)


@bp.get("/export")
def export_page() -> str:
    """The usage export's form (the last 30 days filled in, China time) and the audit log's download."""
    end = datetime.now(CHINA).date()
    return render_template("console/export.html", start=end - timedelta(days=29), end=end, max_days=MAX_DAYS)


@bp.get("/export/usage.csv")
def usage_csv() -> Response:
    """One row per key and day with tokens used, from `start` to `end` (YYYY-MM-DD, China time)."""
    start, end = _day(request.args.get("start", "")), _day(request.args.get("end", ""))
    if end < start or (end - start).days >= MAX_DAYS:
        abort(400)
    days = [(start + timedelta(n)).strftime("%Y%m%d") for n in range((end - start).days + 1)]
    audit("export usage", "", f"{start} – {end}")
    header = ["日期", "密钥", "用户 openid", "tokens"]
    return csv_download(f"usage-{start}-{end}.csv", header, _rows(services().redis, days))


def _rows(client: redis.Redis, days: list[str]) -> Iterator[list[object]]:
    """The rows, read as the response is sent (outside the request's context: `client` is passed)."""
    for fp, owner, used in key_days(client, days):
        for day, tokens in zip(days, used, strict=True):
            if tokens:  # a day stored as 0 is no use to list
                yield [f"{day[:4]}-{day[4:6]}-{day[6:]}", log_id(fp), owner or "（已撤销）", tokens]
