"""Many slow model calls in flight at once: N concurrent API requests against a model that takes 5 s.

    .venv/bin/python -m bench.slow_upstream [--requests 1000 2000] [--latency 5]

The service runs under gunicorn with the Procfile's settings (2 gevent workers) on a real
redis-server; bench/slow_model.py (its own gevent process) answers every request after --latency
seconds. A gevent client sends all requests at once. Prints successes, wall time against the
upstream latency, how long the requests took to all reach the model, and the peak memory (RSS) of
all service processes together, sampled every 100 ms.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent.pool  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from bot.embedded import EmbeddedRedis  # noqa: E402
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


def _post(port: int, request: bytes) -> bool:
    """One request on its own connection, raw: the client must cost next to nothing beside the service."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += conn.recv(65536)
    return head.startswith(b"HTTP/1.1 200") and json.loads(body)["code"] == 0


def burst(port: int, key: str, count: int) -> tuple[int, float]:
    payload = json.dumps({"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}).encode()
    request = (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )
    started = time.monotonic()
    results = gevent.pool.Pool(count).map(lambda _: _post(port, request), range(count))
    return sum(results), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--latency", type=float, default=5.0)
    args = parser.parse_args()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp()), persist=False).start()
    model_port = free_port()
    model = subprocess.Popen(python("-m", "bench.slow_model", str(model_port), str(args.latency)), cwd=ROOT)
    model_url = f"http://127.0.0.1:{model_port}"
    env = clean_env(
        REDIS_URL=redis.url,
        BOT_SECRET="s" * 40,
        OPENAI_BASE_URL=f"{model_url}/v1",
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
            ok, wall = burst(port, key, count)
            done.set()
            sampler.join()
            arrived = requests.get(f"{model_url}/stats", timeout=5).json()
            print(
                f"{count} concurrent: {ok}/{count} succeeded ({ok / count:.1%}), wall {wall:.2f} s = "
                f"{wall / args.latency:.2f}x the {args.latency:.0f} s upstream (all {arrived['requests']} reached the "
                f"model within {arrived['arrival_spread']:.2f} s), peak RSS of all service processes "
                f"{peak[0] / 2**20:.0f} MB (idle {idle / 2**20:.0f} MB)"
            )
    finally:
        stop(server)
        stop(model)
        redis.stop()


if __name__ == "__main__":
    main()
