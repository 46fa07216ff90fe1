"""Typed, validated reads of one environment mapping: every error names its variable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlparse


class ConfigError(Exception):
    """A setting is missing or malformed; str() is the one line the operator sees."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"configuration error: {name} {problem}")
        self.name = name


class Reader:
    """Typed access to one environment mapping; every error names its variable."""

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def str(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.str(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def float(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.str(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {raw!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {raw}")
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.str(name, default)
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
            raise ConfigError(name, f"must be a {'/'.join(schemes)} URL, got {value!r}")
        return value
