"""Several model upstreams behind one Provider: each call tries them in order until one answers.

The order: lowest `priority` first; among equals the healthiest (fewest failures in a row), and
among those a draw weighted by `weight`. An upstream in its cool-down is skipped (bot/chat/health.py),
unless every upstream of the route is: then all are tried anyway, so one upstream behaves as it did
alone. A call moves on to the next upstream only before the answer's first token: a refused
connection, a 5xx, a 429, a 401/403/404 (the upstream's own configuration), a timeout, a malformed or
empty answer. Never after a streamed token (the caller already has part of an answer: no second one
is spliced in), and never on another 4xx: it is about the request, and the next upstream would
refuse it too. The failover happens inside one provider call, so the chat core reserves and
settles once: the caller is charged once, for the answer it got.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from bot import metrics
from bot.chat.health import Health, HealthState
from bot.chat.providers import Messages, Pieces, Provider, Reply, Sampling, UpstreamStatus
from bot.errors import ChatError, Failure, shown
from config.upstreams import UpstreamSpec

T = TypeVar("T")


@dataclass
class Upstream:
    spec: UpstreamSpec
    provider: Provider
    health: Health

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Attempts:
    """Which upstreams one call tried: named on the request's log line."""

    several: bool  # with one upstream configured the line stays as it was
    answered: str = ""
    failed: list[str] = field(default_factory=list)

    def note(self) -> str:
        if not self.several:
            return ""
        failed = f" failed={','.join(self.failed)}" if self.failed else ""
        return (f" upstream={self.answered}" if self.answered else "") + failed


_attempts: ContextVar[Attempts | None] = ContextVar("upstream_attempts", default=None)


def route_note() -> str:
    """` upstream=<answered> failed=<name>:<reason>,…` for the current request's model call, if any."""
    attempts = _attempts.get()
    return attempts.note() if attempts is not None else ""


def forget_route() -> None:
    """A new request begins (a kept-alive connection's thread or greenlet serves several)."""
    _attempts.set(None)


def reason(error: ChatError) -> str:
    """A failure's short name on /metrics and in the log."""
    if isinstance(error, UpstreamStatus):
        return f"http_{error.status}"
    if error.failure is Failure.UPSTREAM_TIMEOUT:
        return "timeout"
    return "unreachable" if error.message.endswith("unreachable") else "bad_answer"


def passes_on(error: ChatError) -> bool:
    """Whether the next upstream may get the call: not for a 4xx about the request itself."""
    return not (isinstance(error, UpstreamStatus) and error.about_request)


class Router:
    """A Provider that fails over between upstreams before the first answer token."""

    name = "router"

    def __init__(self, upstreams: list[Upstream]):
        self.upstreams = upstreams
        self.several = len(upstreams) > 1
        named = dict.fromkeys(m for u in upstreams for m in u.spec.models)
        self.routes = {None: upstreams, **{m: [u for u in upstreams if m in u.spec.models] for m in named}}

    def complete(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Reply:
        return self._first(route, lambda provider: provider.complete(messages, max_tokens, sampling))

    def stream(
        self, messages: Messages, max_tokens: int, sampling: Sampling | None = None, route: str | None = None
    ) -> Pieces:
        """The stream of the first upstream to produce a first piece (already in hand)."""
        return self._first(route, lambda provider: Started(provider.stream(messages, max_tokens, sampling)))

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.provider.close()

    def states(self) -> list[tuple[Upstream, HealthState]]:
        return [(u, u.health.report()) for u in self.upstreams]

    def _first(self, route: str | None, call: Callable[[Provider], T]) -> T:
        attempts = Attempts(self.several)
        _attempts.set(attempts)
        last: ChatError | None = None
        for upstream in self._order(self._candidates(route)):
            if last is not None:
                metrics.count_failover(attempts.failed[-1].partition(":")[0])
            started = time.monotonic()
            try:
                result = call(upstream.provider)
            except ChatError as error:
                last = self._failed(upstream, error, started, attempts)
                if passes_on(error):
                    continue
                raise
            except BaseException:  # a greenlet killed mid-call: no verdict on the upstream
                upstream.health.abandoned()
                raise
            upstream.health.succeeded()
            metrics.count_upstream_attempt(upstream.name, time.monotonic() - started)
            attempts.answered = upstream.name
            if isinstance(result, Started):
                result.upstream = upstream
            return result
        assert last is not None  # every route has at least one upstream
        raise last

    def _candidates(self, route: str | None) -> list[Upstream]:
        candidates = self.routes.get(route)
        if candidates is None:
            raise ChatError(Failure.MODEL_NOT_FOUND, f"the model {shown(route)} does not exist; see GET /v1/models")
        return candidates

    def _failed(self, upstream: Upstream, error: ChatError, started: float, attempts: Attempts) -> ChatError:
        why = reason(error)
        metrics.count_upstream_attempt(upstream.name, time.monotonic() - started, why)
        attempts.failed.append(f"{upstream.name}:{why}")
        if passes_on(error):
            upstream.health.failed()
        else:
            upstream.health.abandoned()  # it answered; the request was at fault
        return error

    def _order(self, candidates: list[Upstream]) -> Iterator[Upstream]:
        """The candidates to try, best first, each admitted by its health just before it is tried."""
        if len(candidates) == 1:
            yield candidates[0]
            return
        ranked = sorted(candidates, key=_rank)
        skipped = 0
        for upstream in ranked:
            if upstream.health.admit():
                yield upstream
            else:
                skipped += 1
        if skipped == len(ranked):  # all cooling down: try them anyway rather than refuse untried
            yield from ranked


def _rank(upstream: Upstream) -> tuple[int, int, float]:
    """Priority, then health, then a weighted draw (a larger weight tends to a smaller key)."""
    return upstream.spec.priority, upstream.health.rank(), -(random.random() ** (1 / upstream.spec.weight))


class Started:
    """A stream whose first piece is in hand: the failover decision is behind it. A failure from
    here on is the caller's mid-answer failure, and counts against the upstream's health."""

    def __init__(self, pieces: Pieces):
        self.first: str | None = next(pieces)  # raises ChatError before any token: the router moves on
        self.pieces = pieces
        self.upstream: Upstream | None = None

    @property
    def finish_reason(self) -> str:
        return self.pieces.finish_reason

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        try:
            return next(self.pieces)
        except ChatError:
            if self.upstream is not None:
                self.upstream.health.failed()
                metrics.count_upstream_failure(self.upstream.name, "mid_answer")
            raise

    def close(self) -> None:
        self.pieces.close()


def upstream_states(provider: Provider) -> list[dict[str, object]]:
    """Each upstream's state in this worker, for the operator: names and numbers, never a URL or key."""
    if not isinstance(provider, Router):
        return []  # the offline provider
    return [
        {
            "name": upstream.name,
            "state": health.state,
            "failures": health.failures,
            "retry_in": health.retry_in,
            "priority": upstream.spec.priority,
            "weight": upstream.spec.weight,
            "models": list(upstream.spec.models),
        }
        for upstream, health in provider.states()
    ]
