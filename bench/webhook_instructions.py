"""CPU instructions per WeChat message in the web process: the service's full path beside the baseline.

    .venv/bin/python -m bench.webhook_instructions [--messages 300]

Needs `valgrind` and `nginx`. Counts with callgrind, which counts instructions rather than time, so
the figure does not move with the load of a shared machine (it leaves out the kernel, Redis and
nginx: what it measures is the Python process's own work). Each target runs in-process under gevent
(as in a gunicorn worker) through Flask's test client, twice: with a few messages and with
`--messages` more; the difference divided by `--messages` is the cost of one message. Every message
is new, from a new follower, with an instant upstream (nginx) and a real redis-server for the
service. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

WARM = 30
# The baseline's two variants: requests' Session (as specified) and the service's client (urllib3).
PATHS = {"service": "/wechat", "baseline": "/wechat", "urllib3": "/wechat-urllib3"}


def inner(target: str, count: int) -> None:
    from gevent import monkey

    monkey.patch_all()
    import os
    import tempfile
    import time
    from pathlib import Path

    from bench.webhook_overhead import start_nginx
    from bot.embedded import EmbeddedRedis
    from bot.wechat import simulate
    from tests.conftest import ACCOUNT
    from tests.procs import service_env

    work = Path(tempfile.mkdtemp())
    redis = EmbeddedRedis(work / "redis", persist=False).start()
    nginx, port = start_nginx(work)
    time.sleep(0.3)
    os.environ.update(service_env(redis.url, f"http://127.0.0.1:{port}/v1", BOT_ENV="production"))
    import logging

    from bot import greenpoll

    if target == "service":
        import wsgi

        app = wsgi.app
    else:
        from bench import baseline_app

        app = baseline_app.app
    greenpoll.install()  # as gunicorn's post_worker_init does, for both
    logging.disable(logging.CRITICAL)  # the request log goes nowhere, as in the latency benchmark
    client = app.test_client()
    for i in range(WARM + count):
        xml = simulate.message_xml(ACCOUNT, f"oCount{i:022d}", "text", Content="你好", MsgId=i + 1)
        params, body = simulate.sign(ACCOUNT, xml, "safe")
        response = client.post(PATHS[target], query_string=params, data=body, content_type="text/xml")
        assert response.status_code == 200 and b"<Encrypt>" in response.data, response.data[:200]
    nginx.terminate()
    redis.stop()


def instructions(target: str, count: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "bench.webhook_instructions", "--inner", target, str(count)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--inner", nargs=2, metavar=("TARGET", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner[0], int(args.inner[1]))
        return
    per_message = {}
    for target in PATHS:
        few, many = instructions(target, 10), instructions(target, 10 + args.messages)
        per_message[target] = (many - few) / args.messages
        print(f"{target:9} {per_message[target] / 1e6:.2f} M instructions per message")
    for other in ("baseline", "urllib3"):
        print(f"service / {other}: {per_message['service'] / per_message[other]:.2f}")


if __name__ == "__main__":
    main()
