"""gunicorn settings for every environment (the Procfile and the run command both use this file).

gevent workers: a model answer takes 2-60 s and each worker must hold hundreds of such calls at once,
which sync or thread workers cannot do on 2 cores. Every blocking call the app makes (urllib3,
redis-py) yields to other greenlets once gevent has patched the standard library.
"""

import glob
import os
import shutil
import sys
import tempfile

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# gunicorn's gevent worker, capping the connections one client address holds (config/worker.py).
worker_class = "config.worker.EdgeWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# A gevent worker's heartbeat: only a worker stuck in CPU work for this long is restarted.
timeout = 60
graceful_timeout = 30
# Also the longest a connection may take to send a request line and headers (the gevent worker
# reads them under this timeout): a slow-header client is cut off after 5 s.
keepalive = 5
backlog = 2048
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# The path without its query string: /wechat's carries WeChat's signature, which must not reach a log.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%({x-request-id}o)s"'
errorlog = "-"
# The proxies in front: their X-Forwarded-Proto is believed, and their connections are not capped
# per address (config/worker.py), since each carries many clients.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Several instances may share a host (see docs/performance.md): none needs gunicorn's control socket.
control_socket_disable = True


def on_starting(server):
    """Validate the configuration once, in the master, and stop with one line if it is wrong."""
    sys.path.insert(0, os.getcwd())
    from config.settings import OFFLINE_WARNING, ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr, flush=True)
        os._exit(1)
    if settings.offline:
        server.log.warning(OFFLINE_WARNING)
    os.environ["BOT_STARTUP_CHECKED"] = "1"
    _metrics_dir(server)


def _metrics_dir(server) -> None:
    """Every worker writes its /metrics samples here, so that any worker can answer for all of them.

    The operator's PROMETHEUS_MULTIPROC_DIR is emptied of the last run's files; without one a fresh
    temporary directory is made and removed at exit. Set before any worker imports prometheus_client.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    else:
        directory = tempfile.mkdtemp(prefix="xiaoyi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        _created.append(directory)


_created: list[str] = []


def post_worker_init(worker):
    """Zero-timeout polls (a check before each Redis command and HTTP connection reuse) go straight
    to the kernel instead of around gevent's hub: bot/greenpoll.py."""
    from bot import greenpoll

    greenpoll.install()


def child_exit(server, worker):
    """A dead worker's live gauges stop counting; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """A stopping worker lets its background model calls finish (their answers are recorded and
    pushed) within the graceful timeout; a call cut short is redone by its lease elsewhere."""
    courier = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("courier")
    if courier is not None and courier.waits.drain(graceful_timeout - 1):
        server.log.warning("worker %s exits with model calls unfinished: their leases will redo them", worker.pid)


def on_exit(server):
    for directory in _created:
        shutil.rmtree(directory, ignore_errors=True)
