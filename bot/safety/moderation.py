"""An external moderation service (BOT_MODERATION_URL), asked about each question before the model.

It speaks OpenAI's `POST /moderations`: `{"input": [texts]}` in, `{"results": [{"flagged": bool}, …]}`
out. Its own timeout (BOT_MODERATION_TIMEOUT) is short because on WeChat it is spent inside the 5 s
window, and it bounds the whole call: a socket timeout bounds each read, which a service sending its
answer a byte at a time outlasts. A timeout, an error status or an answer of another shape is a
failure, and BOT_MODERATION_FAIL says what a failure means: `open` lets the question through,
`closed` refuses it.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

import gevent
import requests
from gevent import monkey

from bot import metrics

logger = logging.getLogger(__name__)


class Verdict(Enum):
    CLEAN = "clean"
    FLAGGED = "flagged"
    UNAVAILABLE = "unavailable"  # failed, and BOT_MODERATION_FAIL=closed: refuse, but not as flagged


T = TypeVar("T")


class Overdue(Exception):
    """The service took longer than BOT_MODERATION_TIMEOUT in all."""


class Moderation:
    def __init__(self, url: str, api_key: str, timeout: float, fail_closed: bool):
        self.url, self.timeout, self.fail_closed = url, timeout, fail_closed
        self._session = requests.Session()
        self._session.trust_env = False  # the moderation URL is the operator's: no proxy from the shell
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        # Outside gevent (the test client, the dev server) a call runs in a helper thread, waited for
        # at most the timeout; in gunicorn's gevent workers the call itself is cut (see _within).
        self._helpers = concurrent.futures.ThreadPoolExecutor(4, "moderation")

    def judge(self, texts: list[str]) -> Verdict:
        """What the service says of `texts` (every one must be clean), or what its failure means."""
        try:
            flagged = self._within(lambda: self._ask(texts))
        except (requests.RequestException, ValueError, Overdue) as error:
            metrics.count_moderation("error")
            logger.warning(
                "moderation failed (%s): %s", _reason(error), "refused" if self.fail_closed else "let through"
            )
            return Verdict.UNAVAILABLE if self.fail_closed else Verdict.CLEAN
        metrics.count_moderation("flagged" if flagged else "clean")
        return Verdict.FLAGGED if flagged else Verdict.CLEAN

    def _ask(self, texts: list[str]) -> bool:
        response = self._session.post(self.url, json={"input": texts}, timeout=self.timeout)
        response.raise_for_status()
        return _flagged(response.json(), len(texts))

    def _within(self, call: Callable[[], T]) -> T:
        """call()'s result, or Overdue once BOT_MODERATION_TIMEOUT has passed, whatever the service does."""
        if monkey.is_module_patched("socket"):
            with gevent.Timeout(self.timeout, Overdue):  # urllib3 drops a connection cut mid-answer
                return call()
        future = self._helpers.submit(call)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # if it has not started; else it runs on in its helper, and its answer is not read
            raise Overdue from None

    def close(self) -> None:
        self._helpers.shutdown(wait=False, cancel_futures=True)
        self._session.close()


def _flagged(body: object, count: int) -> bool:
    """Whether any result is flagged; ValueError for a body that is not OpenAI's shape."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != count:
        raise ValueError("no results list of the right length")
    if not all(isinstance(r, dict) and isinstance(r.get("flagged"), bool) for r in results):
        raise ValueError("a result without a true/false flagged")
    return any(r["flagged"] for r in results)


def _reason(error: Exception) -> str:
    """A failure for the log: its kind and status, never the URL's query or the key."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    return "malformed answer" if isinstance(error, ValueError) else type(error).__name__
