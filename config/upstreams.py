"""The model upstreams, as a list: OPENAI_BASE_URL (one URL, or several separated by commas), or
BOT_UPSTREAMS (JSON) / BOT_UPSTREAMS_FILE (TOML or JSON) with one entry per upstream.

Every entry is checked at start-up; a bad one stops the process with one line naming the entry and
its field. An API key is never quoted in that line (nor anywhere else): only the variable it came from.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from config.reader import ConfigError, Reader

MAX_UPSTREAMS = 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # a /metrics label and a log word: no spaces or quotes
_MODEL = re.compile(r"[!-~]{1,256}")  # printable ASCII without spaces, as model names are
_KEY = re.compile(r"[!-~]*")  # sent in a header: a line break would forge another
FIELDS = ("name", "base_url", "api_key", "api_key_env", "model", "priority", "weight", "timeout", "models")
# The service's own secrets: an api_key_env naming one would send it to the upstream in every request.
OWN_SECRETS = frozenset(
    ("BOT_SECRET", "BOT_SECRET_PREVIOUS", "BOT_METRICS_TOKEN", "BOT_MODERATION_API_KEY", "REDIS_URL", "WECHAT_TOKEN",
     "WECHAT_AES_KEY", "WECHAT_AES_KEY_PREVIOUS", "WECHAT_SECRET", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
)  # fmt: skip


@dataclass(frozen=True)
class UpstreamSpec:
    """One upstream as configured; its key is left out of repr() (a settings dump is not a leak)."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    model: str
    priority: int  # lower first
    weight: int  # share of the first attempts among upstreams of equal priority
    timeout: float  # seconds to wait for its first answer token (connect: at most 5 s of it)
    models: tuple[str, ...] = ()  # public model names it answers for on the OpenAI door


@dataclass(frozen=True)
class Defaults:
    """What an entry leaves out: the single-upstream settings' values."""

    model: str
    timeout: float


def read_upstreams(read: Reader, api_key: str, defaults: Defaults) -> tuple[UpstreamSpec, ...]:
    """The configured upstreams in their order; ConfigError naming the entry and field if one is bad."""
    inline, path = read.str("BOT_UPSTREAMS"), read.str("BOT_UPSTREAMS_FILE")
    if inline and path:
        raise ConfigError("BOT_UPSTREAMS", "and BOT_UPSTREAMS_FILE are both set: keep one")
    if inline:
        return _entries("BOT_UPSTREAMS", _json("BOT_UPSTREAMS", inline), read, defaults)
    if path:
        data = _file(path)
        _check_mode(Path(path), data)
        return _entries("BOT_UPSTREAMS_FILE", data, read, defaults)
    return _short_form(read, api_key, defaults)


def _short_form(read: Reader, api_key: str, defaults: Defaults) -> tuple[UpstreamSpec, ...]:
    """OPENAI_BASE_URL's comma-separated URLs, tried in the order given, sharing key, model and timeout."""
    urls = [u.strip().rstrip("/") for u in read.str("OPENAI_BASE_URL", "https://api.openai.com/v1").split(",")]
    specs, names = [], set()
    for i, url in enumerate(urls):
        if problem := _url_problem(url):
            raise ConfigError(f"OPENAI_BASE_URL[{i}]" if len(urls) > 1 else "OPENAI_BASE_URL", problem)
        name = base = urlparse(url).netloc.rpartition("@")[2] or f"upstream{i + 1}"
        while name in names:  # two paths on one host: told apart by position
            name = f"{base}-{i + 1}"
        names.add(name)
        specs.append(UpstreamSpec(name, url, api_key, defaults.model, i, 1, defaults.timeout))
    return tuple(specs)


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:  # position only: the text may hold a key
        raise ConfigError(name, f"is not valid JSON (line {error.lineno}, column {error.colno})") from None


def _file(path: str) -> Any:
    where = Path(path)
    if where.suffix not in (".toml", ".json"):
        raise ConfigError("BOT_UPSTREAMS_FILE", f"must end in .toml or .json, got {where.name!r}")
    try:
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError("BOT_UPSTREAMS_FILE", f"cannot be read ({type(error).__name__}): {path!r}") from None
    if where.suffix == ".json":
        return _json("BOT_UPSTREAMS_FILE", text)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # says where, never what
        raise ConfigError("BOT_UPSTREAMS_FILE", f"is not valid TOML ({error})") from None


def _check_mode(path: Path, data: Any) -> None:
    """Refuse a file other users of the host may change (they would send every question, and our
    keys, to a server of theirs), or read when it holds keys itself (api_key rather than api_key_env)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & stat.S_IWOTH:
        raise ConfigError("BOT_UPSTREAMS_FILE", f"is writable by every user of the host (mode {mode:04o}): chmod o-w")
    entries = data.get("upstreams") if isinstance(data, dict) else data
    keys = isinstance(entries, list) and any(isinstance(e, dict) and e.get("api_key") for e in entries)
    if keys and mode & stat.S_IROTH:
        raise ConfigError(
            "BOT_UPSTREAMS_FILE",
            f"holds api_key values and is readable by every user of the host (mode {mode:04o}): "
            "chmod 600 it, or name the keys' variables with api_key_env",
        )


def _entries(source: str, data: Any, read: Reader, defaults: Defaults) -> tuple[UpstreamSpec, ...]:
    """The list's entries, from a JSON list or a table whose `upstreams` is the list (TOML's [[upstreams]])."""
    entries = data.get("upstreams") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_UPSTREAMS:
        raise ConfigError(source, f"must list 1 to {MAX_UPSTREAMS} upstreams (a list, or `upstreams = [...]`)")
    specs = [_entry(Entry(source, i, raw), read, defaults) for i, raw in enumerate(entries)]
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise ConfigError(f"{source}[{i}] ({spec.name})", "field name is used by an earlier entry")
        seen.add(spec.name)
    return tuple(specs)


@dataclass(frozen=True)
class Entry:
    """One raw entry and where it sits, so each error names it."""

    source: str
    index: int
    raw: Any

    def error(self, problem: str) -> ConfigError:
        name = self.raw.get("name") if isinstance(self.raw, dict) else None
        label = f" ({name})" if isinstance(name, str) and _NAME.fullmatch(name) else ""
        return ConfigError(f"{self.source}[{self.index}]{label}", problem)

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def _entry(entry: Entry, read: Reader, defaults: Defaults) -> UpstreamSpec:
    if not isinstance(entry.raw, dict):
        raise entry.error(f"must be an object (a table), got {type(entry.raw).__name__}")
    unknown = sorted(str(k) for k in entry.raw if k not in FIELDS)
    if unknown:
        raise entry.error(f"has unknown field {unknown[0][:40]!r} (fields: {', '.join(FIELDS)})")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise entry.error("field name is required: 1-64 letters, digits, '_', '.', ':' or '-'")
    url = entry.get("base_url")
    if not isinstance(url, str):
        raise entry.error("field base_url is required: the upstream's http(s) URL, e.g. https://api.openai.com/v1")
    if problem := _url_problem(url):
        raise entry.error(f"field base_url {problem}")
    return UpstreamSpec(
        name=name,
        base_url=url.strip().rstrip("/"),
        api_key=_api_key(entry, read),
        model=_text(entry, "model", defaults.model),
        priority=_int(entry, "priority", entry.index, 0, 1000),
        weight=_int(entry, "weight", 1, 1, 1000),
        timeout=_seconds(entry, defaults.timeout),
        models=_models(entry),
    )


def _url_problem(url: str) -> str:
    """What is wrong with an upstream URL ("" if nothing), quoting it without any user:password."""
    parsed = urlparse(url.strip())
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return ""
    # Only scheme and host are quoted: a URL's user:password, or a key pasted in its place, is not.
    if not parsed.scheme or not parsed.hostname:
        return "must be an http/https URL with a host, e.g. https://api.openai.com/v1"
    return f"must be an http/https URL, got {parsed.scheme}://{parsed.hostname[:60]}"


def _api_key(entry: Entry, read: Reader) -> str:
    key, variable = entry.get("api_key"), entry.get("api_key_env")
    if key is not None and variable is not None:
        raise entry.error("fields api_key and api_key_env are both set: keep one")
    if variable is not None:
        if not isinstance(variable, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", variable):
            raise entry.error("field api_key_env must name an environment variable")
        if variable in OWN_SECRETS:
            raise entry.error(f"field api_key_env names {variable}, one of the service's own credentials")
        key = read.str(variable)
        if not key:
            raise entry.error(f"field api_key_env names {variable}, which is not set")
    key = "" if key is None else key
    if not isinstance(key, str) or not _KEY.fullmatch(key.strip()):
        raise entry.error("field api_key must be printable ASCII without spaces (its value is not shown)")
    return key.strip()


def _text(entry: Entry, key: str, default: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not _MODEL.fullmatch(value):
        raise entry.error(f"field {key} must be a model name (printable, no spaces), got {str(value)[:40]!r}")
    return value


def _int(entry: Entry, key: str, default: int, low: int, high: int) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise entry.error(f"field {key} must be an integer from {low} to {high}, got {str(value)[:40]!r}")
    return value


def _seconds(entry: Entry, default: float) -> float:
    value = entry.get("timeout", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 600:
        raise entry.error(f"field timeout must be seconds from 0.1 to 600, got {str(value)[:40]!r}")
    return float(value)


def _models(entry: Entry) -> tuple[str, ...]:
    value = entry.get("models", [])
    if not isinstance(value, list) or not all(isinstance(m, str) and _MODEL.fullmatch(m) for m in value):
        raise entry.error("field models must be a list of model names (printable, no spaces)")
    return tuple(dict.fromkeys(value))
