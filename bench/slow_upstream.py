"""Many slow model calls in flight at once: N concurrent API requests against a model that takes 5 s.

    .venv/bin/python -m bench.slow_upstream [--requests 1000 2000] [--latency 5]

The service runs under gunicorn with the Procfile's settings (2 gevent workers) on a real
redis-server; a threaded upstream double answers every request after --latency seconds. A gevent
client sends all requests at once. Prints successes, wall time against the upstream latency, and the
peak memory (RSS) of all service processes together, sampled every 100 ms.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent.pool  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from bot.store.embedded import EmbeddedRedis  # noqa: E402
from tests.doubles.upstream import UpstreamDouble  # noqa: E402
from tests.procs import ROOT, clean_env, free_port, python, stop, wait_for_http  # noqa: E402


def service_rss(master: psutil.Process) -> int:
    processes = [master, *master.children(recursive=True)]
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker may exit meanwhile
            total += process.memory_info().rss
    return total


def sample_peak(master: psutil.Process, stop_flag: threading.Event, peak: list[int]) -> None:
    while not stop_flag.is_set():
        peak[0] = max(peak[0], service_rss(master))
        time.sleep(0.1)


def burst(url: str, key: str, count: int) -> tuple[int, float]:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=count, pool_connections=1))
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}

    def one(_: int) -> bool:
        response = session.post(url, json=body, timeout=120)
        return response.status_code == 200 and response.json()["code"] == 0

    started = time.monotonic()
    results = gevent.pool.Pool(count).map(one, range(count))
    return sum(results), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--latency", type=float, default=5.0)
    args = parser.parse_args()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    upstream = UpstreamDouble().start()
    upstream.reset(latency=args.latency)
    env = clean_env(
        REDIS_URL=redis.url,
        BOT_SECRET="s" * 40,
        OPENAI_BASE_URL=upstream.url,
        OPENAI_TIMEOUT="120",
        BOT_RATE_KEY_RPM="0",
        BOT_KEY_GRANT_TOKENS=str(10**12),
    )
    port = free_port()
    command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/chat/completions", server)
        key = subprocess.run(
            python("-m", "flask", "--app", "wsgi", "keys", "issue", "oSlowBench"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        master = psutil.Process(server.pid)
        idle = service_rss(master)
        for count in args.requests:
            peak, done = [0], threading.Event()
            sampler = threading.Thread(target=sample_peak, args=(master, done, peak))
            sampler.start()
            ok, wall = burst(f"http://127.0.0.1:{port}/api/v1/chat/completions", key, count)
            done.set()
            sampler.join()
            print(
                f"{count} concurrent: {ok}/{count} succeeded ({ok / count:.1%}), wall {wall:.2f} s = "
                f"{wall / args.latency:.2f}x the {args.latency:.0f} s upstream, peak RSS of all service processes "
                f"{peak[0] / 2**20:.0f} MB (idle {idle / 2**20:.0f} MB)"
            )
    finally:
        stop(server)
        upstream.stop()
        redis.stop()


if __name__ == "__main__":
    main()
