"""The console's dashboard and its audit log (a page and a CSV download)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from flask import Response, render_template, request

from bot.console import dashboard as dashboard_data
from bot.console.access import bp
from bot.services import services
from bot.store.audit import AuditLog, Entry

PAGE = 100
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 (Chinese intact) only when it starts with one
VIA_NAMES = {"console": "控制台", "wechat": "微信命令", "cli": "命令行"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@bp.get("")
def dashboard() -> str:
    """Today's figures at the top, then the panels over the last 24 hours or 30 days."""
    client = services().redis
    return render_template("console/dashboard.html", today=dashboard_data.today_figures(client), **_panels())


@bp.get("/panels")
def panels() -> str:
    """The panels alone: what the dashboard's refresh swaps in without reloading the page."""
    return render_template("console/_panels.html", **_panels())


def _panels() -> dict:
    span = "month" if request.args.get("span") == "month" else "day"
    labels, counts = dashboard_data.buckets(services().redis, span)
    return {"span": span, "panels": dashboard_data.panels(labels, counts)}


@bp.get("/audit")
def audit_page() -> str:
    """The newest audit entries, PAGE at a time ("older" follows the last one shown)."""
    before = request.args.get("before", "+")
    if before != "+" and not _stream_id(before):
        before = "+"  # a mangled cursor starts again from the newest rather than failing
    entries = AuditLog(services().redis).recent(PAGE, before)
    older = entries[-1].id if len(entries) == PAGE else None
    return render_template("console/audit.html", entries=entries, older=older, vias=VIA_NAMES)


@bp.get("/audit.csv")
def audit_csv() -> Response:
    """The whole log (180 days at most) as CSV, UTF-8 with a BOM, oldest first."""
    rows = ([e.when, e.who, VIA_NAMES.get(e.via, e.via), e.action, e.target, e.detail]
            for e in AuditLog(services().redis).between(0, 2**62))  # fmt: skip
    return csv_download("audit.csv", ["时间（北京时间）", "操作人", "来源", "操作", "对象", "详情"], rows)


def csv_download(name: str, header: list[str], rows: Iterable[list[object]]) -> Response:
    """A CSV attachment written row by row (a long log is never held whole in memory)."""

    def lines() -> Iterator[str]:
        yield BOM
        yield _line(header)
        for row in rows:
            yield _line(row)

    disposition = f'attachment; filename="{name}"'
    return Response(lines(), content_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})


def _line(row: Iterable[object]) -> str:
    out = io.StringIO()
    # A cell starting with = + - @ is read by Excel as a formula, one starting with a tab or CR too
    # (OWASP's list: the spreadsheet skips them): quoted with ' so it stays text.
    csv.writer(out).writerow([f"'{c}" if str(c)[:1] in FORMULA_STARTS else c for c in row])
    return out.getvalue()


def _stream_id(text: str) -> bool:
    """An entry id Redis takes as an exclusive bound: two 64-bit parts (past that, or `(0-0`, XREVRANGE errs)."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts):
        return False
    ms, seq = int(parts[0]), int(parts[1])
    return ms < 2**64 and seq < 2**64 and (ms, seq) != (0, 0)


__all__ = ["Entry", "csv_download"]
