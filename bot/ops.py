"""Operator endpoints: `/healthz` (the process answers), `/readyz` (it can serve), `/metrics`.

/readyz is for a load balancer: it writes one key to Redis (a read-only replica after a
failover is not ready) with its own 1-second timeouts, and checks the settings the service cannot
work without; 200 with each check, or 503 naming what failed. /metrics is for Prometheus and is not
public: with BOT_METRICS_TOKEN set it wants `Authorization: Bearer <token>`; without one it answers
only requests made straight from a loopback or private address, never one relayed by a proxy
(X-Forwarded-For or Forwarded present), since behind nginx every request comes from 127.0.0.1.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request

from bot import metrics
from bot.extensions import services
from bot.store import keyspace

bp = Blueprint("ops", __name__)
# Private ranges (RFC 1918, IPv6 unique local): a scraper inside the operator's network.
_INTERNAL = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


@bp.get("/healthz")
def healthz() -> Response:
    """Up: the worker answers. Touches nothing else, so a Redis outage does not restart workers."""
    return jsonify(status="ok")


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
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return address.is_loopback or any(address in network for network in _INTERNAL)
