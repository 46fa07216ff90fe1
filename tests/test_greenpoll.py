"""bot/greenpoll.py under a gevent-patched interpreter, as in a gunicorn worker."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.procs import ROOT, clean_env, free_port, python, stop, wait_for_http

CHECK = """
from gevent import monkey; monkey.patch_all()
import select, socket, time
import gevent
from bot import greenpoll

assert greenpoll.install() and not greenpoll.install()
quiet, loud = socket.socketpair()
others = []
gevent.spawn(others.append, "ran")
poll = select.poll()
poll.register(quiet, select.POLLIN)
# A zero-timeout poll is the kernel's answer: nothing else runs meanwhile.
assert poll.poll(0) == [] and others == []
loud.send(b"x")
assert poll.poll(0) == [(quiet.fileno(), select.POLLIN)] and others == []
quiet.recv(1)
# A poll that may wait is still gevent's: other greenlets run while it waits.
gevent.spawn(lambda: (gevent.sleep(0.05), loud.send(b"y")))
started = time.monotonic()
assert poll.poll(2000) == [(quiet.fileno(), select.POLLIN)] and others == ["ran"]
assert time.monotonic() - started < 1.0
poll.unregister(quiet)
assert poll.poll(0) == []
print("ok")
"""


def test_zero_timeout_polls_ask_the_kernel_and_waiting_polls_stay_cooperative():
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "ok", done.stderr


def test_nothing_changes_without_gevent():
    script = "import select; from bot import greenpoll; p = select.poll; assert not greenpoll.install(); "
    script += "assert select.poll is p; print('ok')"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "ok", done.stderr


def test_gunicorn_workers_use_it(tmp_path, redis_server):
    """The service's gunicorn settings install it in every worker (post_worker_init)."""
    (tmp_path / "probe.py").write_text(
        "import select, socket\n"
        "import gevent\n"
        "def app(environ, start_response):\n"
        "    # Does a zero-timeout poll here let another greenlet run (a trip around gevent's hub)?\n"
        "    quiet, _ = socket.socketpair()\n"
        "    others = []\n"
        "    gevent.spawn(others.append, 'ran')\n"
        "    poll = select.poll()\n"
        "    poll.register(quiet, select.POLLIN)\n"
        "    poll.poll(0)\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'hub' if others else b'kernel']\n"
    )
    port = free_port()
    config = ["-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "--pythonpath", str(tmp_path)]
    env = clean_env(REDIS_URL=redis_server.url, BOT_SECRET="g" * 40)
    process = subprocess.Popen(python("-m", "gunicorn", *config, "probe:app"), cwd=ROOT, env=env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", process)
        answers = {requests.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(6)}
    finally:
        stop(process)
    assert answers == {"kernel"}
