"""Traffic statistics for the console: this worker's /metrics counters, flushed to Redis hour buckets.

Nothing is counted twice and nothing is added to a message's or a request's path: the counters
bot/metrics.py already keeps in each worker (requests by door and outcome, tokens, WeChat
deliveries, Redis errors, refusals by the content filter, model latency histograms) are read every
FLUSH_SECONDS by a greenlet (a thread outside gevent), and what grew since the last flush is added
to the current China-time hour's hash with one pipelined round trip. A flush that fails keeps its
growth for the next one, so a worker that dies loses at most its last FLUSH_SECONDS of counts; the
billing (balances, per-key day counters) does not depend on these figures. Every worker writes the
same hour key, a few writes a second with many workers: no hot spot worth spreading in a Cluster.

The same round trip adds this worker's Tally (bot/tally.py): the openids active since the last flush
to the hour's and the day's HyperLogLog (PFADD: a distinct count in 12 KB whatever the number of
followers, within ~1 %), and the hits per banned word to the day's hash.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import redis

from bot import metrics
from bot.background import Loop
from bot.ids import CHINA
from bot.store.keyspace import PREFIX
from bot.tally import Tally

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 10
FLUSHER_NAME = "stats-flush"  # the thread's name: bench.redis_round_trips leaves its flushes out
KEEP_SECONDS = 91 * 86400  # 90 days and the hour that is being written
WATCHED = (metrics.REQUESTS, metrics.TOKENS, metrics.DELIVERIES, metrics.REDIS_ERRORS, metrics.SENSITIVE_HITS,
           metrics.UPSTREAM_SECONDS, metrics.KEYS_ISSUED, metrics.ANSWERED)  # fmt: skip


def hour_key(hour: str) -> str:
    """Hash of the whole service's counts in one China-time hour (YYYYMMDDHH)."""
    return f"{PREFIX}:stats:h:{hour}"


def active_key(bucket: str) -> str:
    """HyperLogLog of the openids active in one China-time hour (YYYYMMDDHH) or day (YYYYMMDD)."""
    return f"{PREFIX}:stats:active:{'h' if len(bucket) == 10 else 'd'}:{bucket}"


def words_key(day: str) -> str:
    """Hash of one China-time day's hits per banned word (the word's reading → hits)."""
    return f"{PREFIX}:stats:words:d:{day}"


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

    def __init__(self, client: redis.Redis, tally: Tally | None = None):
        self.redis = client
        self.tally = tally or Tally()
        self.sent = read_counters()  # counted before this app: not this app's to report
        self._dropped = 0  # the tally's dropped openids already logged
        self._lock = threading.Lock()
        self._due = time.monotonic() + FLUSH_SECONDS
        # A look a second: a flood of new openids is flushed before its 10 s are up.
        self.loop = Loop(FLUSHER_NAME, 1, self._tick)
        self.start, self.close = self.loop.start, self.loop.close

    def _tick(self) -> None:
        if time.monotonic() >= self._due or self.tally.crowded():
            self.flush()
            self._due = time.monotonic() + FLUSH_SECONDS

    def flush(self, now: datetime | None = None) -> int:
        """Write the growth since the last flush; the number of fields and openids written (0: none).
        What Redis refused (the round trip, or single commands of it) is kept for the next flush."""
        with self._lock:
            counts = read_counters()
            grown = {f: v - self.sent.get(f, 0) for f, v in counts.items() if v > self.sent.get(f, 0)}
            active, words = self.tally.taken()
            if not (grown or active or words):
                return 0
            hour = hour_of(now or datetime.now(CHINA))
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    tags = _queue(pipe, hour, grown, active, words)
                    results = pipe.execute(raise_on_error=False)
            except redis.RedisError as error:  # kept for the next flush: counts are late, not lost
                logger.warning("stats flush failed (%s); retrying in %s s", type(error).__name__, FLUSH_SECONDS)
                return 0
            refused = {tag for tag, got in zip(tags, results, strict=True) if tag[0] and isinstance(got, Exception)}
            if refused:
                logger.warning("stats flush: Redis refused %d commands; kept for the next flush", len(refused))
            self.sent = {f: self.sent.get(f, 0) if ("count", f) in refused else v for f, v in counts.items()}
            self.tally.written(set() if ("active", "") in refused else active,
                               {w: n for w, n in words.items() if ("word", w) not in refused})  # fmt: skip
            self._note_dropped()
            return len(grown) + len(active) + len(words) - len(refused)

    def _note_dropped(self) -> None:
        if self.tally.dropped > self._dropped:
            logger.warning("stats: %d active openids not counted (the worker's set was full)", self.tally.dropped)
            self._dropped = self.tally.dropped


Tag = tuple[str, str]  # what a command wrote: ("count", field), ("active", ""), ("word", word), ("", "") an EXPIRE


def _queue(pipe, hour: str, grown: dict[str, int], active: set[str], words: dict[str, int]) -> list[Tag]:
    """One flush's commands (the hour's counters, the active openids, the day's word hits), and for
    each what it wrote, so that a refused one is sent again (a PFADD sent twice adds nothing)."""
    tags: list[Tag] = []
    if grown:
        for field, amount in grown.items():
            pipe.hincrby(hour_key(hour), field, amount)
            tags.append(("count", field))
        pipe.expire(hour_key(hour), KEEP_SECONDS)
        tags.append(("", ""))
    if active:
        members = sorted(active)
        for key in (active_key(hour), active_key(hour[:8])):
            for start in range(0, len(members), 1000):  # bounded commands, whatever the set's size
                pipe.pfadd(key, *members[start : start + 1000])
                tags.append(("active", ""))
            pipe.expire(key, KEEP_SECONDS)
            tags.append(("", ""))
    if words:
        for word, hits in words.items():
            pipe.hincrby(words_key(hour[:8]), word, hits)
            tags.append(("word", word))
        pipe.expire(words_key(hour[:8]), KEEP_SECONDS)
        tags.append(("", ""))
    return tags


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


def days_back(count: int, now: datetime | None = None) -> list[str]:
    """The last `count` China-time days (YYYYMMDD), oldest first, today last."""
    end = (now or datetime.now(CHINA)).astimezone(CHINA)
    return [(end - timedelta(days=back)).strftime("%Y%m%d") for back in range(count - 1, -1, -1)]


def read_active(client: redis.Redis, buckets: list[str]) -> list[int]:
    """The distinct openids active in each hour or day, in one pipelined round trip (one key a command,
    so a Cluster's slots never meet in one)."""
    with client.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            # Not pipe.pfcount: redis-py's ClusterPipeline refuses it (it may name several keys); one
            # key is routed to its node as any other command.
            pipe.execute_command("PFCOUNT", active_key(bucket))
        return [int(n) for n in pipe.execute()]


def read_word_hits(client: redis.Redis, days: list[str]) -> dict[str, int]:
    """Hits per banned word over `days`, in one pipelined round trip."""
    hits: dict[str, int] = {}
    with client.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(words_key(day))
        for found in pipe.execute():
            for word, count in found.items():
                hits[word] = hits.get(word, 0) + int(count)
    return hits
