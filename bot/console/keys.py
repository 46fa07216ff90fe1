"""/admin/keys: find a follower's key, see its balance and use, and act on it, each action confirmed.

Actions are addressed by the owner's openid (a key's value never appears in a URL). The page for
an action (GET) asks to confirm it; its POST runs it, writes it to the audit log, and only then
redirects to the key's page, which says it was done.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from flask import Response, abort, g, redirect, render_template, request, url_for

from bot.console.access import audit, bp, tell_done, told_done
from bot.console.ranking import newest_keys, top_keys
from bot.ids import CHINA, log_id, today, valid_openid
from bot.services import services
from bot.store import keyspace
from bot.store.usage import day_before
from bot.web.account import account_of, china_time
from bot.web.chart import draw

logger = logging.getLogger(__name__)
MAX_GRANT = 10**9  # as /grant on WeChat
ACTIONS = {
    "grant": "增加额度", "revoke": "撤销密钥", "rotate": "更换密钥", "block": "封禁用户",
    "unblock": "解除封禁", "reset": "清空对话记录",
}  # fmt: skip
HEX = re.compile(r"[0-9a-f]{64}")
ID = re.compile(r"key#[0-9a-f]{10}")
KEYLIKE = re.compile(r"sk-\S*")  # what a key looks like, whatever follows it
NEEDS_KEY = ("grant", "revoke", "rotate")


def find_owner(query: str) -> str | None:
    """The openid a search names: a key in full, its fingerprint (or the key#… id logs show), or an openid."""
    query = query.strip().removeprefix("Bearer ").strip()  # a pasted Authorization header finds its key
    keys = services().keys
    if query.startswith("sk-"):  # a key has an openid's shape too, as has a fingerprint: keys first
        return _owner(keys.fingerprint(query) or "")
    if HEX.fullmatch(query):
        return _owner(query)
    if ID.fullmatch(query):  # key#0123456789: found by SCAN, an operator's search off the hot path
        prefix = query.removeprefix("key#")
        found = next(iter(services().redis.scan_iter(match=keyspace.api_key(prefix + "*"), count=1000)), None)
        return _owner(found[len(keyspace.api_key("")) - 1 : -1]) if found else None
    return query if valid_openid(query) else None


def _owner(fingerprint: str) -> str | None:
    info = services().keys.info(fingerprint) if fingerprint else None
    return info.owner if info else None


@bp.post("/keys")
def search() -> Response | str:
    """A search is posted, so that a key typed in full never sits in a URL (history, logs, Referer)."""
    query = request.form.get("q", "").strip()
    openid = find_owner(query) if query else None
    if openid is None:
        # Shown back without any key-like text in it: a key pasted with other words stays off the page.
        return render_template("console/keys.html", query=KEYLIKE.sub("sk-…", query),
                               account=None, actions=ACTIONS, done=None)  # fmt: skip
    return redirect(url_for("console.keys", q=openid), 303)


@bp.get("/keys")
def keys() -> str:
    """The key of the follower `q` names (an openid or a fingerprint; a full key is posted instead)."""
    query = request.args.get("q", "")
    openid = find_owner(query) if query and not query.startswith("sk-") else None
    account = account_of(openid) if openid else None
    blocked = services().blocks.openid_blocked(openid) if openid else False
    return render_template(
        "console/keys.html", query=query, account=account, blocked=blocked, actions=ACTIONS,
        done=ACTIONS.get(told_done() or ""), chart=draw(account.days) if account else None,
        when=china_time, key_id=log_id(account.info.fingerprint) if account and account.info else "",
        **({} if query else _lists()),
    )  # fmt: skip


def _lists() -> dict:
    """Without a search: the top keys by tokens over 1, 7 or 30 days, and the newest keys."""
    span = {"1": 1, "30": 30}.get(request.args.get("days", ""), 7)
    now, client = today(), services().redis
    days = [day_before(now, back) for back in range(span)]
    return {"span": span, "top": top_keys(client, days), "newest": newest_keys(client), "id_of": log_id,
            "created_at": lambda ts: china_time(datetime.fromtimestamp(ts, CHINA))}  # fmt: skip


@bp.get("/keys/<openid>/<action>")
def confirm(openid: str, action: str) -> str:
    """Ask before acting: what will happen to whom (and, for a grant, how many tokens)."""
    tokens = _checked(openid, action)
    return render_template("console/confirm.html", openid=openid, action=action, name=ACTIONS[action], tokens=tokens)


@bp.post("/keys/<openid>/<action>")
def act(openid: str, action: str) -> Response:
    """Run a confirmed action, audit it, then show the key's page saying it is done."""
    tokens = _checked(openid, action)
    detail = _run(openid, action, tokens)
    audit(action, openid, detail)
    logger.info("console: %s ran %s on %s", g.openid, action, openid)
    tell_done(action)
    return redirect(url_for("console.keys", q=openid), 303)


def _checked(openid: str, action: str) -> int:
    """404 for an unknown action or follower, 400 for a grant without a whole number in range."""
    if action not in ACTIONS or not valid_openid(openid):
        abort(404)
    if action in NEEDS_KEY and not services().keys.fingerprint_of(openid):
        abort(404)
    if action != "grant":
        return 0
    raw = request.values.get("tokens", "")
    # Its length first: int() refuses a string of over 4300 digits with a ValueError (a 500).
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_GRANT)) and 0 < int(raw) <= MAX_GRANT):
        abort(400)
    return int(raw)


def _run(openid: str, action: str, tokens: int) -> str:
    """Do it; what the audit entry says of it (never a key)."""
    svc = services()
    if action == "grant":
        fingerprint = svc.keys.fingerprint_of(openid) or ""
        balance = svc.keys.grant(fingerprint, tokens)
        if balance is None:
            abort(404)
        return f"+{tokens} → {balance}"
    if action == "revoke":
        return "revoked" if svc.keys.revoke(openid) else abort(404)
    if action == "rotate":
        key = svc.keys.rotate(openid)
        return f"new {log_id(svc.keys.fingerprint(key) or '')}"
    if action == "block":
        return "blocked" if svc.blocks.block_openid(openid) else "already blocked"
    if action == "unblock":
        return "unblocked" if svc.blocks.unblock_openid(openid) else "was not blocked"
    svc.conversation.forget(openid)
    return "history and owed replies cleared"
