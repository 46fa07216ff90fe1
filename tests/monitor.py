"""What the app sends to Redis, as Redis sees it: for tests that count round trips."""

from __future__ import annotations

import threading

import redis as redis_py


class Monitor:
    """Redis's MONITOR: every command a client sends (commands run inside scripts are marked lua)."""

    def __init__(self, url):
        self.redis = redis_py.Redis.from_url(url, decode_responses=True)
        self.marker = redis_py.Redis.from_url(url)
        self.marker.ping()  # connected before watching: its handshake is not counted
        self.commands: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(5)
        return self

    def _watch(self):
        with self.redis.monitor() as monitor:
            self._ready.set()
            for command in monitor.listen():
                if command["command"] == "ECHO monitor-done":
                    return
                if command.get("client_type") != "lua":
                    self.commands.append(command["command"].split()[0].upper())

    def __exit__(self, *exc):
        self.marker.echo("monitor-done")
        self._thread.join(5)
        self.marker.close()
        self.redis.close()
