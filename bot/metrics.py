"""What `/metrics` reports, in Prometheus' text format: requests, the model, tokens, WeChat, Redis.

Plain Python (no Flask), so the chat core and the WeChat courier count here too. Under gunicorn
every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (config/gunicorn.conf.py sets it
up before any worker starts) and `/metrics` on any worker reads all of them: the numbers are the
service's, not one worker's. Without that variable (tests, `flask run`) the process's default
registry holds them; counters only grow, so tests compare before and after.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.errors import ChatError

DELIVERY_OUTCOMES = ("in_window", "continue", "pushed", "deferred", "partial")

REQUESTS = Counter(
    "xiaoyi_requests_total",
    "HTTP requests answered, by door (api = the spec's, openai, wechat, ops, other) and outcome",
    ["door", "status", "outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "xiaoyi_upstream_seconds",
    "Time the model took: the whole answer, or the first piece of a stream; by outcome",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 4.5, 6, 10, 20, 30, 60, 120),
)
TOKENS = Counter(
    "xiaoyi_tokens_charged_total", "Tokens charged, by door and payer (key or follower)", ["door", "payer"]
)
DELIVERIES = Counter(
    "xiaoyi_wechat_deliveries_total",
    "WeChat answers by how they reached the follower (in_window, continue, pushed, deferred)",
    ["outcome"],
)
ANSWERED = Counter(
    "xiaoyi_wechat_answered_total",
    "WeChat answers replied within the window, by the delivery that carried them (1, 2, 3: WeChat's first and retries)",
    ["delivery"],
)
REDIS_ERRORS = Counter("xiaoyi_redis_errors_total", "Requests that failed because Redis did, by door", ["door"])
CONNECTIONS_REFUSED = Counter(
    "xiaoyi_connections_refused_total", "Connections refused: their address held BOT_CONNECTIONS_PER_ADDRESS already"
)

SENSITIVE_HITS = Counter(
    "xiaoyi_sensitive_hits_total",
    "Banned content found, by direction (question, answer) and action (refuse, mask, block)",
    ["direction", "action"],
)
MODERATION = Counter(
    "xiaoyi_moderation_total", "Questions put to BOT_MODERATION_URL, by outcome (clean, flagged, error)", ["outcome"]
)
KEYS_ISSUED = Counter("xiaoyi_keys_issued_total", "API keys issued to followers who had none before")
UPSTREAM_CALLS = Counter("xiaoyi_upstream_calls_total", "Attempts sent to each model upstream", ["upstream"])
UPSTREAM_FAILURES = Counter(
    "xiaoyi_upstream_failures_total",
    "Attempts that failed, by upstream and reason (timeout, unreachable, http_<status>, bad_answer, mid_answer)",
    ["upstream", "reason"],
)
UPSTREAM_FAILOVERS = Counter(
    "xiaoyi_upstream_failovers_total", "Calls passed on to the next upstream after this one failed", ["upstream"]
)
UPSTREAM_ATTEMPT_SECONDS = Histogram(
    "xiaoyi_upstream_attempt_seconds",
    "Time each upstream took to its first answer token (the whole answer without streaming) or its failure",
    ["upstream"],
    buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4.5, 10, 30, 60),
)

_door: ContextVar[str] = ContextVar("xiaoyi_door", default="")
_DOOR_PREFIXES: dict[str, str] = {}  # a JSON door's path prefix → its name, as create_app registers it


def name_door(prefix: str, door: str) -> None:
    """Name the door that answers every path under `prefix` (its blueprint's url_prefix, or wider)."""
    _DOOR_PREFIXES[prefix.rstrip("/") + "/"] = door


def door_of(path: str) -> str:
    """Which door a request path belongs to, as /metrics and the request log name it. Also asked
    before any route is matched: a 408 is answered before Flask sees the request."""
    for prefix, door in _DOOR_PREFIXES.items():
        if path.startswith(prefix):
            return door
    if path == "/wechat":
        return "wechat"
    if path in ("/healthz", "/readyz", "/metrics"):
        return "ops"
    return "other"


def enter_door(door: str) -> None:
    """Mark the current request's door: tokens charged in its context are counted as its."""
    _door.set(door)


def current_door() -> str:
    """The door of the request in whose context this runs ("" outside one)."""
    return _door.get()


def count_request(door: str, status: int, outcome: str) -> None:
    """One answered request; `outcome` is "ok" or the failure's name (invalid_key, upstream_timeout…)."""
    REQUESTS.labels(door, f"{status // 100}xx", outcome).inc()


def count_delivery(outcome: str) -> None:
    """How one WeChat answer reached its follower, called by the courier once per answer.

    in_window: replied to a delivery within WeChat's 5 s; continue: collected with 继续; pushed: sent
    as a customer-service message; deferred: the last delivery got 【正在思考…】 and the answer
    went to the outbox; partial: a delivery got the answer as far as it was written, the rest owed.
    (An owed answer never collected is not counted: it simply expires.)
    """
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"delivery outcome must be one of {', '.join(DELIVERY_OUTCOMES)}, got {outcome!r}")
    DELIVERIES.labels(outcome).inc()


def count_answered(deliveries: int) -> None:
    """An answer replied within the window by WeChat's `deliveries`-th delivery of its message (a 4th
    or later, which WeChat does not send, is counted as the 3rd: the label stays one of three)."""
    ANSWERED.labels(str(min(max(deliveries, 1), 3))).inc()


def count_tokens(tokens: int, payer: str) -> None:
    """Tokens actually charged to a payer ("key" or "follower"), under the request's door."""
    if tokens > 0:
        door = _door.get() or ("wechat" if payer == "follower" else "other")
        TOKENS.labels(door, payer).inc(tokens)


def count_key_issued() -> None:
    """A follower's first API key (a re-issue after a revoke or a rotation is not a new key)."""
    KEYS_ISSUED.inc()


def count_redis_error(door: str) -> None:
    REDIS_ERRORS.labels(door).inc()


def count_connection_refused() -> None:
    """A connection closed at once by config/worker.py: its client address held its cap already."""
    CONNECTIONS_REFUSED.inc()


def count_sensitive_hit(direction: str, action: str) -> None:
    """One question refused, or one answer masked or blocked (bot/safety/guard.py)."""
    SENSITIVE_HITS.labels(direction, action).inc()


def count_moderation(outcome: str) -> None:
    MODERATION.labels(outcome).inc()


def count_upstream_attempt(upstream: str, seconds: float, failure: str | None = None) -> None:
    """One attempt at one upstream (bot/chat/routing.py): its time, and its failure's reason if it failed."""
    UPSTREAM_CALLS.labels(upstream).inc()
    UPSTREAM_ATTEMPT_SECONDS.labels(upstream).observe(seconds)
    if failure is not None:
        UPSTREAM_FAILURES.labels(upstream, failure).inc()


def count_upstream_failure(upstream: str, failure: str) -> None:
    """A failure after an attempt's first token (a stream broken mid-answer)."""
    UPSTREAM_FAILURES.labels(upstream, failure).inc()


def count_failover(upstream: str) -> None:
    """A call that `upstream` failed went on to the next upstream."""
    UPSTREAM_FAILOVERS.labels(upstream).inc()


@contextmanager
def timed_upstream() -> Iterator[None]:
    """Observe one model call: its latency under "ok", or the failure's name, or "aborted"."""
    started, outcome = time.monotonic(), "aborted"
    try:
        yield
        outcome = "ok"
    except ChatError as error:
        outcome = error.failure.name.lower()
        raise
    finally:
        UPSTREAM_SECONDS.labels(outcome).observe(time.monotonic() - started)


def exposition() -> tuple[bytes, str]:
    """The text `/metrics` answers and its content type: all workers' samples under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
