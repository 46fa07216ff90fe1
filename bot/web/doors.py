"""Which requests are for the doors that authenticate by key or by WeChat's signature (/wechat, the JSON
APIs, ops): they never read the portal's session, CSRF token or page headers, so none of that runs
for them, not even when a browser sends the portal's cookie along (the playground's API calls).

The session is opened before Flask routes a request, so a door is told by its path's first segment:
the segments that only the door blueprints' rules start with (`wechat`, `api`, `v1`, `healthz`, …),
read from the URL map once, when the first request comes (every rule is registered by then).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

FLAG = "bot.door"  # the answer, kept in the request's environ: each hook asks, it is worked out once


class Doors:
    """The door blueprints of one app, and the first path segments that are theirs alone."""

    def __init__(self, app: Flask, names: list[str]):
        self.app, self.names = app, frozenset(names)
        self.segments: frozenset[str] | None = None  # read from the URL map at the first request

    def read_segments(self) -> frozenset[str]:
        door, other = set(), set()
        for rule in self.app.url_map.iter_rules():
            segment = rule.rule.split("/", 2)[1]
            (door if rule.endpoint.rpartition(".")[0] in self.names else other).add(segment)
        if any("<" in s for s in other):  # a page rule that could take any first segment: no door is sure
            return frozenset()
        return frozenset(s for s in door - other if s and "<" not in s)

    def is_door(self, environ: dict[str, Any]) -> bool:
        """Whether this request is for a door, which has no use for the portal's session, CSRF or headers."""
        found = environ.get(FLAG)
        if found is None:
            if self.segments is None:
                self.segments = self.read_segments()
            parts = environ.get("PATH_INFO", "").split("/", 2)
            found = environ[FLAG] = len(parts) > 1 and parts[1] in self.segments
        return found


def configure(app: Flask, names: list[str]) -> Doors:
    doors = app.extensions["web_doors"] = Doors(app, names)
    return doors


def is_door(app: Flask, environ: dict[str, Any]) -> bool:
    return app.extensions["web_doors"].is_door(environ)
