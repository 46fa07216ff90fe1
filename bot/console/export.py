"""/admin/export/usage.csv: tokens per API key per day over a date range, for a spreadsheet.

It reads the per-key day hashes the API already keeps (bot/store/usage.py, 90 days), found with
SCAN, a batch of keys per pipelined round trip: an operator's download, never on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import redis
from flask import Response, abort, request

from bot.console.access import audit, bp
from bot.console.views import csv_download
from bot.ids import log_id
from bot.services import services
from bot.store import keyspace

MAX_DAYS = 92  # the history kept (90 days) and a little slack for the range's ends
BATCH = 200


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)


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
    pattern = keyspace.api_key_days("*")
    head, tail = pattern.split("*")
    found = [k for k in client.scan_iter(match=pattern, count=1000)]
    for first in range(0, len(found), BATCH):
        batch = [k[len(head) : -len(tail)] for k in found[first : first + BATCH]]  # bot:{k:<fp>}:days → fp
        with client.pipeline(transaction=False) as pipe:
            for fp in batch:
                pipe.hmget(keyspace.api_key_days(fp), *days)
                pipe.hget(keyspace.api_key(fp), "owner")
            answers = pipe.execute()
        for i, fp in enumerate(batch):
            used, owner = answers[2 * i], answers[2 * i + 1]
            for day, tokens in zip(days, used, strict=True):
                if tokens and int(tokens):  # a day stored as 0 is no use to list
                    yield [f"{day[:4]}-{day[4:6]}-{day[6:]}", log_id(fp), owner or "（已撤销）", int(tokens)]
