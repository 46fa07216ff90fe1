"""An OpenAI-compatible model double for load tests: answers every request after a fixed delay.

    .venv/bin/python -m bench.slow_model PORT LATENCY

A gevent WSGI server in its own process, so thousands of waiting requests cost it almost nothing
and the load measured is the service's. GET /stats answers how many requests arrived and the
seconds between the first and the last arrival.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "好的"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
arrivals: list[float] = []


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "GET":
        spread = arrivals[-1] - arrivals[0] if arrivals else 0.0
        body = json.dumps({"requests": len(arrivals), "arrival_spread": spread}).encode()
        arrivals.clear()
    else:
        environ["wsgi.input"].read()
        arrivals.append(time.monotonic())
        gevent.sleep(LATENCY)
        body = ANSWER
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    LATENCY = float(sys.argv[2])
    server = WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None, backlog=4096)
    gevent.signal_handler(signal.SIGINT, server.stop)  # the benchmark's stop(): end quietly
    server.serve_forever()
