"""One chat-completions call to an instant upstream (nginx), through requests' Session and through
urllib3's pool, side by side: what the HTTP client itself costs per call.

    .venv/bin/python -m bench.upstream_client [--calls 300] [--rounds 10]

Needs `nginx`. Runs under gevent with bot/greenpoll.py installed, as in a gunicorn worker. The
Session is set up as bot/chat/providers.py set it up before it moved to urllib3 (pooled, retries,
environment read once); the pool is the service's own (bot/chat/providers.py: OpenAIProvider).
Both parse the answer as the provider does. Alternating rounds; prints each client's median per
call (the median over rounds of each round's median) and their ratio.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from bench.webhook_overhead import start_nginx  # noqa: E402
from bot import greenpoll  # noqa: E402
from bot.chat.providers import OpenAIProvider, _parse_reply  # noqa: E402
from tests.procs import wait_for_http  # noqa: E402

MESSAGES = [{"role": "user", "content": "你好"}]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    greenpoll.install()
    work = Path(tempfile.mkdtemp())
    nginx, port = start_nginx(work)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", nginx)
        provider = OpenAIProvider(f"http://127.0.0.1:{port}/v1", "sk-bench", "m", timeout=30)
        session = requests.Session()
        session.trust_env = False
        session.mount(
            "http://", HTTPAdapter(pool_maxsize=1000, max_retries=provider.pool.connection_pool_kw["retries"])
        )
        body = {"model": "m", "messages": MESSAGES, "max_tokens": 500}

        def through_requests() -> None:
            _parse_reply(session.post(provider.url, json=body, headers=provider.headers, timeout=(5, 30)).content)

        def through_urllib3() -> None:
            provider.complete(MESSAGES, 500)

        clients = {"requests.Session": through_requests, "urllib3 pool": through_urllib3}
        medians: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, call in clients.items():
                took = []
                for _ in range(args.calls):
                    started = time.perf_counter()
                    call()
                    took.append(time.perf_counter() - started)
                medians[name].append(statistics.median(took) * 1e6)
        for name, values in medians.items():
            print(f"{name:17} median {statistics.median(values):.0f} µs per call")
        ratio = statistics.median(medians["requests.Session"]) / statistics.median(medians["urllib3 pool"])
        print(f"requests.Session / urllib3 pool: {ratio:.2f}")
    finally:
        nginx.terminate()
        nginx.wait()


if __name__ == "__main__":
    main()
