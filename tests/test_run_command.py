"""The README's run command on embedded defaults, as real processes: gunicorn, a real redis-server."""

from __future__ import annotations

import re
import stat
import subprocess

import pytest
import requests

from tests.procs import ROOT, clean_env, free_port, python, stop, wait_for_http

pytestmark = pytest.mark.slow


def start(env):
    process = subprocess.Popen(python("-m", "bot.devserver"), cwd=ROOT, env=env)
    wait_for_http(f"http://127.0.0.1:{env['PORT']}/api/v1/chat/completions", process)
    return process


def cli(env, *args):
    result = subprocess.run(
        python("-m", "bot.devserver", "cli", *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def chat(port, key, question):
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": question}]}
    return requests.post(f"http://127.0.0.1:{port}/api/v1/chat/completions", json=body, timeout=10).json()


def test_run_command_serves_offline_answers_and_keeps_keys_across_restarts(tmp_path):
    access_log = tmp_path / "access.log"
    env = clean_env(PORT=str(free_port()), BOT_VAR_DIR=str(tmp_path / "var"), GUNICORN_ACCESS_LOG=str(access_log))
    server = start(env)
    try:
        key = cli(env, "keys", "issue", "oRunCommand")
        assert key.startswith("sk-") and len(key) == 51
        answer = chat(env["PORT"], key, "你好")
        assert answer["code"] == 0
        assert "离线" in answer["choices"][0]["message"]["content"]
        # The README's next step: chat with the official account without WeChat.
        assert "你说的是：你好" in cli(env, "wechat", "say", "你好")
        assert key in cli(env, "wechat", "say", "key", "--openid", "oRunCommand")
        assert "今日统计" in cli(env, "wechat", "say", "/stats", "--openid", "oDevAdmin")
    finally:
        assert stop(server) == 0
    logged = access_log.read_text()
    assert '"POST /wechat HTTP/1.1" 200' in logged and "signature" not in logged  # no query strings
    aof = tmp_path / "var" / "redis" / "appendonly.aof"
    assert aof.exists()
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()  # redis-server stopped with it
    assert key.encode() not in aof.read_bytes() and re.search(rb"sk-[A-Za-z0-9]{48}", aof.read_bytes()) is None
    # The data and the dev secrets are the owner's only.
    for path in [tmp_path / "var", *(tmp_path / "var").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path

    server = start(env)
    try:
        assert cli(env, "keys", "issue", "oRunCommand") == key  # the same key: Redis persisted it
        assert chat(env["PORT"], key, "again")["code"] == 0
    finally:
        stop(server)


def test_a_bad_setting_stops_gunicorn_with_one_line(tmp_path):
    env = clean_env(PORT=str(free_port()), REDIS_URL="redis://127.0.0.1:1/0", BOT_SECRET="short")
    result = subprocess.run(
        python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "configuration error: BOT_SECRET must be at least 32 characters"
