"""Helpers for tests that run the service as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before serving {url}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # refused, or accepted by the master before a worker booted
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wait_for(condition, timeout: float = 15.0) -> bool:
    """Whether `condition()` became true within `timeout` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment without any of the service's settings, plus `overrides`."""
    prefixes = ("BOT_", "OPENAI_", "REDIS_", "WECHAT_", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(overrides)
    return env


def service_env(redis_url: str, upstream_url: str, **overrides: str) -> dict[str, str]:
    """The environment of the service as a real process: the test account, the test doubles."""
    from tests.conftest import ACCOUNT, TEST_SECRET

    base = {
        "BOT_ENV": "test",
        "REDIS_URL": redis_url,
        "BOT_SECRET": TEST_SECRET,
        "OPENAI_BASE_URL": upstream_url,
        "WECHAT_TOKEN": ACCOUNT.token,
        "WECHAT_AES_KEY": ACCOUNT.aes_key,
        "WECHAT_APPID": ACCOUNT.appid,
    }
    return clean_env(**{**base, **overrides})


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def stop(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log = getattr(process, "log", None)
    if log is not None:
        log.close()
    return process.returncode


def start_gunicorn(env: dict[str, str], port: int, workers: int = 2) -> subprocess.Popen:
    """The service as the Procfile runs it (gevent workers), on 127.0.0.1:`port`."""
    env = {**env, "WEB_CONCURRENCY": str(workers)}
    command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app")
    log = open(Path(tempfile.gettempdir()) / f"xiaoyi-gunicorn-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log  # type: ignore[attr-defined]  (closed by stop())
    wait_for_http(f"http://127.0.0.1:{port}/wechat", process)
    return process
