"""gunicorn's gevent worker, holding at most BOT_CONNECTIONS_PER_ADDRESS connections from one client.

Each worker has WORKER_CONNECTIONS slots. Without a cap, one address opening that many connections
and sending nothing (or a body a byte at a time) leaves none for anyone else, `/healthz` included.
A connection beyond the cap is answered 503 at once and closed; the address's others carry on.

A proxy is many clients behind one address: behind nginx every connection comes from 127.0.0.1. So
the addresses gunicorn already trusts as proxies (FORWARDED_ALLOW_IPS: 127.0.0.1 by default, `*` for
all) are not capped; the proxy caps its own clients (`limit_conn`, see docs/operations.md, Deployment).
The cap is per worker: with WEB_CONCURRENCY workers one address holds at most that many times it.

How long a connection may take over its request line and headers gunicorn bounds already: this
worker reads them under `gevent.Timeout(keepalive)` (5 s, config/gunicorn.conf.py), and closes a
connection that has not sent them in time. The body's deadline is bot/edge.py's.

The master imports this module to find the worker class, so it imports nothing of `bot` at module
level: that would load prometheus_client before the master sets PROMETHEUS_MULTIPROC_DIR, and ssl
before the worker's gevent patches it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from functools import lru_cache
from typing import Any

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

logger = logging.getLogger("bot.edge")

_REFUSAL_TEXT = b"too many connections from your address\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
    b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL_TEXT), _REFUSAL_TEXT)
)
REFUSAL_LOG_SECONDS = 10.0  # under a flood, one line per this long says how many were refused


class EdgeWorker(GeventWorker):
    """GeventWorker that counts each client address's open connections and refuses those past the cap."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        services = getattr(self.wsgi, "extensions", {}).get("bot")  # absent: not the service (a bench baseline)
        self.per_address = services.settings.connections_per_address if services is not None else 0
        self.proxies = _proxies(self.cfg.forwarded_allow_ips)
        self.held: dict[str, int] = {}
        self.refused, self.refusals_logged_at = 0, 0.0

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        host = addr[0] if isinstance(addr, tuple) and addr else None
        if not self.per_address or self.proxies is None or host is None or _is_proxy(host, self.proxies):
            super().handle(listener, client, addr)
            return
        held = self.held.get(host, 0)
        if held >= self.per_address:
            self._refuse(client, host)
            return
        self.held[host] = held + 1
        try:
            super().handle(listener, client, addr)
        finally:
            left = self.held[host] - 1
            if left:
                self.held[host] = left
            else:
                del self.held[host]

    def _refuse(self, client: Any, host: str) -> None:
        try:
            client.sendall(REFUSAL)
        except OSError:
            pass
        finally:
            util.close(client)
        from bot import metrics  # the worker's own import of the app has loaded it by now

        metrics.count_connection_refused()
        self.refused += 1
        now = time.monotonic()
        if now - self.refusals_logged_at >= REFUSAL_LOG_SECONDS:
            logger.warning(
                "refused %d connection(s) over BOT_CONNECTIONS_PER_ADDRESS=%d per worker, the last from %s",
                self.refused,
                self.per_address,
                host,
            )
            self.refused, self.refusals_logged_at = 0, now


def _proxies(allowed: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """FORWARDED_ALLOW_IPS as networks; None when it is `*` (every peer a proxy: no cap)."""
    if "*" in allowed:
        return None
    return tuple(ipaddress.ip_network(a.strip(), strict=False) for a in allowed if a.strip())


@lru_cache(maxsize=4096)
def _is_proxy(host: str, proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:127.0.0.1 on a dual-stack bind
    return any(address in network for network in proxies)
