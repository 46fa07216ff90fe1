"""The run command on embedded defaults: `python -m bot.devserver` (what `make run` calls).

Starts a real redis-server under var/ (persistent, on a unix socket) when REDIS_URL is unset, keeps
generated dev secrets (BOT_SECRET, WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APPID) in var/dev.env for any
that are unset, makes `oDevAdmin` an admin, then runs gunicorn with the Procfile's settings on
127.0.0.1:$PORT (8000). Ctrl-C stops gunicorn, then Redis (which saves on the way out).
`python -m bot.devserver cli ARGS…` runs `flask --app wsgi ARGS…` against that same Redis.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from bot.embedded import EmbeddedRedis, private

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("BOT_VAR_DIR") or ROOT / "var")
DEV_ENV = VAR / "dev.env"


def _generated() -> dict[str, str]:
    """Dev-only secrets, made once and kept in var/dev.env so keys and sessions survive restarts."""
    return {
        "BOT_SECRET": secrets.token_urlsafe(48),
        "WECHAT_TOKEN": secrets.token_urlsafe(24),
        "WECHAT_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode()[:43],
        "WECHAT_APPID": "wxdev" + secrets.token_hex(6),
        "BOT_ADMIN_OPENIDS": "oDevAdmin",
    }


def _read_dev_env() -> dict[str, str]:
    if not DEV_ENV.exists():
        return {}
    pairs = (line.split("=", 1) for line in DEV_ENV.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


def serve() -> int:
    private(VAR)  # dev secrets and the dev Redis's data: the owner's only
    env = dict(os.environ)
    env.setdefault("BOT_ENV", "dev")
    kept, generated = _read_dev_env(), _generated()
    for name, value in generated.items():
        env.setdefault(name, kept.get(name) or value)
    embedded = None
    if not env.get("REDIS_URL"):
        embedded = EmbeddedRedis(VAR / "redis").start()
        env["REDIS_URL"] = embedded.url
        print(f"started redis-server at {embedded.url} (data in {embedded.directory})", flush=True)
    port = env.setdefault("PORT", "8000")
    names = ("BOT_ENV", "REDIS_URL", "PORT", *generated)
    with os.fdopen(os.open(DEV_ENV, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write("".join(f"{n}={env[n]}\n" for n in names if n in env))
    DEV_ENV.chmod(0o600)  # a file from before keeps its old mode through open()
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    gunicorn = subprocess.Popen(command, cwd=ROOT, env=env)
    forward = lambda signum, frame: gunicorn.send_signal(signum)  # noqa: E731
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        return gunicorn.wait()
    finally:
        if embedded:
            embedded.stop()


def cli(args: list[str]) -> int:
    env = {**os.environ, **_read_dev_env(), "BOT_STARTUP_CHECKED": "1"}
    if "REDIS_URL" not in env:
        print("no var/dev.env: start the service with `make run` first, or set REDIS_URL", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env)


if __name__ == "__main__":
    if sys.argv[1:2] == ["cli"]:
        raise SystemExit(cli(sys.argv[2:]))
    raise SystemExit(serve())
