"""Traffic statistics for the console: this worker's /metrics counters, flushed to Redis hour buckets.

Nothing is counted twice and nothing is added to a message's or a request's path: the counters
bot/metrics.py already keeps in each worker (requests by door and outcome, tokens, WeChat
deliveries, Redis errors, refusals by the content filter, model latency histograms) are read every
FLUSH_SECONDS by a greenlet (a thread outside gevent), and what grew since the last flush is added
to the current China-time hour's hash with one pipelined round trip. A flush that fails keeps its
growth for the next one, so a worker that dies loses at most its last FLUSH_SECONDS of counts; the
billing (balances, per-key day counters) does not depend on these figures. Every worker writes the
same hour key, a few writes a second with many workers: no hot spot worth spreading in a Cluster.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import gevent
import redis
from gevent import monkey

from bot import metrics
from bot.ids import CHINA
from bot.store.keyspace import PREFIX

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 10
FLUSHER_NAME = "stats-flush"  # the thread's name: bench.redis_round_trips leaves its flushes out
KEEP_SECONDS = 91 * 86400  # 90 days and the hour that is being written
WATCHED = (metrics.REQUESTS, metrics.TOKENS, metrics.DELIVERIES, metrics.REDIS_ERRORS, metrics.SENSITIVE_HITS,
           metrics.UPSTREAM_SECONDS, metrics.KEYS_ISSUED, metrics.ANSWERED)  # fmt: skip


def hour_key(hour: str) -> str:
    """Hash of the whole service's counts in one China-time hour (YYYYMMDDHH)."""
    return f"{PREFIX}:stats:h:{hour}"


def hour_of(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y%m%d%H")


def read_counters() -> dict[str, int]:
    """This process's counts, by field (`name|label=value|…`); histogram sums and timestamps left out."""
    counts: dict[str, int] = {}
    for metric in WATCHED:
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_sum")):
                    continue
                labels = "|".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                counts[f"{sample.name.removeprefix('xiaoyi_')}|{labels}"] = round(sample.value)
    return counts


class Flusher:
    """Adds this worker's counter growth to Redis every FLUSH_SECONDS; `flush()` once on demand."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self.sent = read_counters()  # counted before this app: not this app's to report
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        if monkey.is_module_patched("threading"):
            gevent.spawn(self._run)
        else:
            threading.Thread(target=self._run, name=FLUSHER_NAME, daemon=True).start()

    def close(self) -> None:
        self._closed = True

    def _run(self) -> None:
        while not self._closed:
            time.sleep(FLUSH_SECONDS)
            if not self._closed:
                self.flush()

    def flush(self, now: datetime | None = None) -> int:
        """Write the growth since the last flush; the number of fields written (0: nothing grew)."""
        with self._lock:
            counts = read_counters()
            grown = {f: v - self.sent.get(f, 0) for f, v in counts.items() if v > self.sent.get(f, 0)}
            if not grown:
                return 0
            key = hour_key(hour_of(now or datetime.now(CHINA)))
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for field, amount in grown.items():
                        pipe.hincrby(key, field, amount)
                    pipe.expire(key, KEEP_SECONDS)
                    pipe.execute()
            except redis.RedisError as error:  # kept for the next flush: counts are late, not lost
                logger.warning("stats flush failed (%s); retrying in %s s", type(error).__name__, FLUSH_SECONDS)
                return 0
            self.sent = counts
            return len(grown)


def hours_back(count: int, now: datetime | None = None) -> list[str]:
    """The last `count` China-time hours, oldest first, the current one last."""
    end = (now or datetime.now(CHINA)).astimezone(CHINA)
    return [hour_of(end - timedelta(hours=back)) for back in range(count - 1, -1, -1)]


def read_hours(client: redis.Redis, hours: list[str]) -> list[dict[str, int]]:
    """Each hour's counts, in one pipelined round trip."""
    with client.pipeline(transaction=False) as pipe:
        for hour in hours:
            pipe.hgetall(hour_key(hour))
        return [{f: int(v) for f, v in found.items()} for found in pipe.execute()]
