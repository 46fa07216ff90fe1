"""Operator endpoints: `/healthz` (the process answers), `/readyz` (it can serve), `/metrics`.

/readyz is for a load balancer: it writes one key to Redis (a read-only replica after a
failover is not ready) with its own 1-second timeouts, and checks the settings the service cannot
work without; 200 with each check, or 503 naming what failed. /metrics is for Prometheus and is not
public: with BOT_METRICS_TOKEN set it wants `Authorization: Bearer <token>`; without one it answers
only requests made straight from this host (a loopback peer) and carrying no header a proxy adds,
since behind nginx every request comes from 127.0.0.1. A private peer address is not enough: a load
balancer may rewrite every client's address to one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request

from bot import metrics
from bot.chat.routing import upstream_states
from bot.services import services
from bot.store import keyspace

bp = Blueprint("ops", __name__)
# Headers by which a proxy says whom it relays (X-Forwarded-* is matched as a prefix): any of them
# means the loopback peer is a proxy, not the operator's scraper.
_RELAY_HEADERS = frozenset(
    ("forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip")
    + ("x-cluster-client-ip", "x-original-forwarded-for", "via")
)


@bp.get("/healthz")
def healthz() -> Response:
    """Up: the worker answers. Touches nothing else, so a Redis outage does not restart workers.
    `?upstreams=1`: also each model upstream's state as this worker sees it (readers of /metrics only)."""
    if request.args.get("upstreams") != "1":
        return jsonify(status="ok")
    if not _may_read_metrics():
        return Response("forbidden\n", 403, mimetype="text/plain")
    response = jsonify(status="ok", worker=os.getpid(), upstreams=upstream_states(services().provider))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> Response:
    checks = {"redis": _redis_check(), "config": _config_check()}
    ready = all(check["ok"] for check in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _redis_check() -> dict[str, Any]:
    started = time.monotonic()
    try:
        client = services().probe
        client.set(keyspace.readiness(), int(time.time()), ex=60)
    except redis.RedisError as error:
        metrics.count_redis_error("ops")
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _config_check() -> dict[str, Any]:
    settings, problems = services().settings, []
    if settings.wechat_reply_mode == "customer_service" and services().wechat_client is None:
        problems.append("WECHAT_REPLY_MODE=customer_service needs WECHAT_APPID and WECHAT_SECRET")
    details = {"model": "offline" if settings.offline else "configured", "wechat": bool(settings.wechat_token)}
    return {"ok": not problems, **details, **({"problems": problems} if problems else {})}


@bp.get("/metrics")
def metrics_text() -> Response:
    if not _may_read_metrics():
        return Response("forbidden\n", 403, mimetype="text/plain")
    body, content_type = metrics.exposition()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


def _may_read_metrics() -> bool:
    token = services().settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Digests of equal length: the comparison's time tells nothing of the token, its length included.
        digests = (hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(token.encode()).digest())
        return scheme.lower() == "bearer" and hmac.compare_digest(*digests)
    if _relayed():
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def _relayed() -> bool:
    """Whether the request carries any header a proxy adds to say whom it relays."""
    names = (name.lower() for name, _ in request.headers.items())
    return any(name in _RELAY_HEADERS or name.startswith("x-forwarded-") for name in names)
