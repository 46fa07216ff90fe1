"""What the service's own work costs per WeChat message, beside the least a webhook can do.

    .venv/bin/python -m bench.webhook_overhead [--seconds 8] [--rounds 3] [--latency-rounds 15] [--other DIR]

Needs `nginx` and `wrk` (Debian: apt-get install nginx-light wrk). nginx plays an instant upstream
model (a static chat-completions answer), so the load measured is the webhooks' own. Three targets run
under the same gunicorn settings (config/gunicorn.conf.py: 2 gevent workers), one after another in
the same run:
  service   the full path: verify, decrypt, claim/dedupe, admission, history, allowance, model call,
            answer and reply recorded in Redis, encrypt (a real redis-server)
  baseline  bench/baseline_app.py /wechat: verify, decrypt, one pooled upstream call, encrypt
  urllib3   bench/baseline_app.py /wechat-urllib3: the baseline with the service's HTTP client
            (urllib3's pool, not requests' Session): the difference to it is the service's own work
  echo      bench/baseline_app.py /echo: verify, decrypt, encrypt the message back
  other     with --other DIR: the service of another checkout (git worktree add DIR <commit>), to
            compare a change's cost in throughput and in latency at 1 connection, in the same rounds
Every request is a new message from a distinct follower (no retries, nothing cached). wrk sends them
at 32 connections (throughput) and at 1 connection (latency), in rounds that alternate the targets;
prints each round and the median over rounds of the paired ratios and differences (latency: many
short rounds, since this figure drifts with the machine's load from one second to the next).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bot.embedded import EmbeddedRedis
from bot.wechat import simulate
from tests.conftest import ACCOUNT
from tests.procs import ROOT, free_port, python, service_env, stop, wait_for_http

ANSWER = (
    '{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",'
    '"content":"好的"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)


def start_nginx(directory: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(
        f"daemon off; worker_processes 1; pid {directory}/nginx.pid; error_log {directory}/error.log;\n"
        f"events {{ worker_connections 4096; }}\n"
        f"http {{ access_log off; client_body_temp_path {directory};\n"
        f"  server {{ listen 127.0.0.1:{port};\n"
        f"    location / {{ default_type application/json; return 200 '{ANSWER}'; }} }} }}\n"
    )
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(directory)]), port


@contextlib.contextmanager
def serving(apps: dict[str, tuple[Path, str]]) -> Iterator[tuple[dict[str, int], Path]]:
    """A redis-server, the instant upstream and one gunicorn per app (checkout, module:app) under the
    service's settings (config/gunicorn.conf.py, production env); yields each app's port and a
    scratch directory, and stops them all."""
    work = Path(tempfile.mkdtemp())
    redis = EmbeddedRedis(work / "redis", persist=False).start()
    nginx, up_port = start_nginx(work)
    env = service_env(redis.url, f"http://127.0.0.1:{up_port}/v1", BOT_ENV="production")
    servers: dict[str, subprocess.Popen] = {}
    try:
        ports = {}
        for name, (checkout, app) in apps.items():
            ports[name] = free_port()
            command = python("-m", "gunicorn", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{ports[name]}", app)
            here = {**env, "PYTHONPATH": str(checkout)}
            servers[name] = subprocess.Popen(command, cwd=checkout, env=here, stderr=subprocess.DEVNULL)
            wait_for_http(f"http://127.0.0.1:{ports[name]}/", servers[name])
        yield ports, work
    finally:
        for process in servers.values():
            stop(process)
        nginx.terminate()
        nginx.wait()
        redis.stop()


def wrk_script(directory: Path, name: str, path: str, count: int, offset: int) -> Path:
    """A wrk script whose every request is a new message from a new follower (read from a data file)."""
    data = directory / f"{name}.requests"
    with data.open("w") as out:
        for i in range(count):
            openid = f"oBench{offset + i:022d}"
            xml = simulate.message_xml(ACCOUNT, openid, "text", Content="你好", MsgId=offset + i + 1)
            params, body = simulate.sign(ACCOUNT, xml, "safe")
            query = "&".join(f"{k}={v}" for k, v in params.items())
            out.write(f"{path}?{query}\t{body.decode()}\n")
    script = directory / f"{name}.lua"
    script.write_text(
        f"""
local reqs, counter = {{}}, 0
thread_count = 0
function setup(thread) thread:set("first", thread_count * 1000003) thread_count = thread_count + 1 end
function init(args)
  for line in io.lines("{data}") do
    local target, body = line:match("([^\t]*)\t(.*)")
    reqs[#reqs + 1] = wrk.format("POST", target, {{["Content-Type"] = "text/xml"}}, body)
  end
  counter = first
end
function request() counter = counter + 1 return reqs[(counter % #reqs) + 1] end
"""
    )
    return script


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> tuple[float, float]:
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[median.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")
    return rps, float(median.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-rounds", type=int, default=15)
    parser.add_argument("--latency-seconds", type=int, default=2)
    parser.add_argument("--other", type=Path, help="another checkout of the service, compared with this one")
    args = parser.parse_args()
    if args.other and not (args.other / "wsgi.py").exists():
        parser.error(f"{args.other} is not a checkout of the service (no wsgi.py)")
    if args.latency_rounds < 2:
        parser.error("--latency-rounds must be at least 2 (quartiles of the paired differences)")
    apps = {"service": (ROOT, "wsgi:app"), "baseline": (ROOT, "bench.baseline_app:app")}
    if args.other:
        apps["other"] = (args.other.resolve(), "wsgi:app")
    with serving(apps) as (ports, work):
        targets = {
            "service": (ports["service"], "/wechat"),
            "baseline": (ports["baseline"], "/wechat"),
            "urllib3": (ports["baseline"], "/wechat-urllib3"),
            "echo": (ports["baseline"], "/echo"),
        }
        if args.other:
            targets["other"] = (ports["other"], "/wechat")
        results: dict[str, list[float]] = {}
        latency: dict[str, list[float]] = {}
        for round_ in range(args.rounds):  # alternate, so drift on a shared machine hits all alike
            for name, (port, path) in targets.items():
                offset = (round_ * len(targets) + list(targets).index(name)) * 10_000_000
                script = wrk_script(work, f"{name}{round_}", path, args.messages, offset)
                rps, _ = run_wrk(f"http://127.0.0.1:{port}", script, 32, args.seconds)
                results.setdefault(name, []).append(rps)
        # Latency at one connection moves with the machine's load from second to second: many short
        # rounds, alternating, and the median of the paired differences.
        for round_ in range(args.latency_rounds):
            for name, (port, path) in targets.items():
                offset = 500_000_000 + (round_ * len(targets) + list(targets).index(name)) * 1_000_000
                script = wrk_script(work, f"{name}{round_}b", path, 3000, offset)
                _, median = run_wrk(f"http://127.0.0.1:{port}", script, 1, args.latency_seconds)
                latency.setdefault(name, []).append(median)
        for name in targets:
            rps = ", ".join(f"{r:.0f}" for r in results[name])
            ms = ", ".join(f"{m:.2f}" for m in latency[name])
            print(f"{name:9} req/s at 32 connections per round: {rps}")
            print(f"{'':9} median ms at 1 connection per round: {ms}")
        for other in ("baseline", "urllib3", "other")[: 3 if args.other else 2]:
            ratio = statistics.median(s / b for s, b in zip(results["service"], results[other], strict=True))
            added = [s - b for s, b in zip(latency["service"], latency[other], strict=True)]
            quartiles = statistics.quantiles(added, n=4)
            print(f"service / {other} throughput at 32 connections (median of rounds): {ratio:.0%}")
            print(
                f"added median latency over {other} at 1 connection (median of {len(added)} paired rounds): "
                f"{statistics.median(added):+.2f} ms (quartiles {quartiles[0]:+.2f} to {quartiles[2]:+.2f})"
            )
        echo_ratio = statistics.median(s / e for s, e in zip(results["service"], results["echo"], strict=True))
        print(f"service / echo throughput: {echo_ratio:.0%}")


if __name__ == "__main__":
    main()
