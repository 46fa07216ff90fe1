"""Settings read once from the environment (and an optional .env), validated at start-up.

Every name here is part of the operator's interface; the README's configuration table lists them.
A bad value raises ConfigError naming the variable, and the process stops with that one line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.across import checked_across
from config.portal import Portal, read_portal
from config.reader import ConfigError, Reader
from config.safety import read_safety
from config.upstreams import Defaults, UpstreamSpec, read_upstreams
from config.wechat import read_wechat, valid_aes_key

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = "你是小一机器人，一个乐于助人、回答简洁准确的中文助手。"
MIN_SECRET_LENGTH = 32
MAX_RPM = 10_000  # a rate window keeps one entry per request: bounded memory per caller
OFFLINE_WARNING = (
    "no upstream model configured (OPENAI_API_KEY and OPENAI_BASE_URL unset): "
    "the offline provider answers, and its replies say so"
)


@dataclass(frozen=True)
class Settings:
    env: str
    redis_url: str = field(repr=False)
    redis_cluster: str = field(repr=False)  # may hold a password, as redis_url may
    redis_sentinels: tuple[str, ...]
    redis_sentinel_master: str
    bot_secret: str = field(repr=False)
    openai_api_key: str = field(repr=False)
    openai_base_url: str
    openai_model: str
    openai_timeout: float
    lease_seconds: float  # how long a worker's claim on a model call holds before another may redo it
    offline: bool
    system_prompt: str
    key_grant_tokens: int
    answer_tokens: int
    max_body_bytes: int
    # The official account (WeChat)
    wechat_token: str = field(repr=False)
    wechat_appid: str
    wechat_aes_key: str = field(repr=False)
    wechat_message_mode: str  # safe | compatible | plain: which deliveries /wechat accepts
    wechat_secret: str = field(repr=False)
    wechat_api_base_url: str
    admin_openids: frozenset[str]
    key_keywords: tuple[str, ...]
    history_idle_seconds: int
    public_url: str
    wechat_reply_mode: str
    wechat_timeout: float
    wechat_window: float
    reply_retention_seconds: int
    limits: Limits
    # Operations: secret rotation, /metrics, request logs (see docs/operations.md)
    bot_secret_previous: str = field(default="", repr=False)
    wechat_aes_key_previous: str = field(default="", repr=False)
    metrics_token: str = field(default="", repr=False)
    log_content: bool = False
    # The HTTP edge (config/worker.py, bot/edge.py): slow bodies and connection hoarding
    body_timeout: float = 5.0
    connections_per_address: int = 200
    # Content safety (bot/safety/): banned words, what a banned word in an answer becomes, moderation
    sensitive_words_files: tuple[str, ...] = ()  # () = the shipped config/sensitive_words.txt
    sensitive_answer_action: str = "mask"  # mask | block
    moderation_url: str = ""
    moderation_api_key: str = field(default="", repr=False)
    moderation_timeout: float = 1.5
    moderation_fail_closed: bool = False
    # Model upstreams with failover (config/upstreams.py, bot/chat/routing.py)
    upstreams: tuple[UpstreamSpec, ...] = ()
    upstream_failures: int = 3  # failures in a row that send an upstream into its cool-down
    upstream_cooldown: float = 30.0  # seconds it is skipped before a single trial request
    # Answers shown as they are written (docs/wechat.md), and the texts that clear a follower's history
    wechat_partial: str = "last"
    reset_keywords: tuple[str, ...] = ()
    # The web portal (bot/web/): sign-in by the official account
    portal: Portal = field(default_factory=lambda: Portal())

    @property
    def dev(self) -> bool:
        return self.env == "dev"


@dataclass(frozen=True)
class Limits:
    """Caps shared by all workers through Redis; 0 turns a cap off."""

    daily_chat_tokens: int  # tokens a follower may use per day chatting on WeChat
    key_rpm: int  # requests per minute per API key
    user_rpm: int  # requests per minute per `user` value of one API key
    openid_rpm: int  # WeChat chat messages per minute per follower


def _limits(read: Reader) -> Limits:
    return Limits(
        daily_chat_tokens=read.int("BOT_DAILY_CHAT_TOKENS", 20_000, 0, 10**12),
        key_rpm=read.int("BOT_RATE_KEY_RPM", 60, 0, MAX_RPM),
        user_rpm=read.int("BOT_RATE_USER_RPM", 20, 0, MAX_RPM),
        openid_rpm=read.int("BOT_RATE_OPENID_RPM", 20, 0, MAX_RPM),
    )


def _secret(read: Reader, env: str) -> str:
    secret = read.str("BOT_SECRET")
    if not secret:
        raise ConfigError("BOT_SECRET", "is required (at least 32 random characters)")
    if len(secret) < MIN_SECRET_LENGTH and env != "dev":
        raise ConfigError("BOT_SECRET", f"must be at least {MIN_SECRET_LENGTH} characters")
    return secret


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from a mapping (default: os.environ plus .env); raise ConfigError if invalid."""
    if environ is None:
        environ = _environ_with_dotenv()
    read = Reader(environ)
    env = read.choice("BOT_ENV", "production", ("production", "dev", "test"))
    sentinels = tuple(h.strip() for h in read.str("REDIS_SENTINELS").split(",") if h.strip())
    redis_url = read.str("REDIS_URL", "redis://sentinel-master/0" if sentinels else "")
    if not redis_url:
        raise ConfigError("REDIS_URL", "is required, e.g. redis://127.0.0.1:6379/0")
    read.url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))
    for host in sentinels:
        if not re.fullmatch(r"[\w.-]+:\d{1,5}", host):
            raise ConfigError("REDIS_SENTINELS", f"must be host:port[,host:port…], got {host!r}")
    if sentinels and not read.str("REDIS_SENTINEL_MASTER"):
        raise ConfigError("REDIS_SENTINEL_MASTER", "is required with REDIS_SENTINELS (the monitored master's name)")
    api_key = read.str("OPENAI_API_KEY")
    base_url_set = any(read.str(name) for name in ("OPENAI_BASE_URL", "BOT_UPSTREAMS", "BOT_UPSTREAMS_FILE"))
    openai_timeout = read.float("OPENAI_TIMEOUT", 60.0, 1.0, 600.0)
    model = read.str("OPENAI_MODEL", DEFAULT_OPENAI_MODEL) or DEFAULT_OPENAI_MODEL
    upstreams = read_upstreams(read, api_key, Defaults(model, openai_timeout))
    return checked_across(Settings(
        env=env,
        redis_url=redis_url,
        redis_cluster=read.choice("REDIS_CLUSTER", "auto", ("auto", "yes", "no")),
        redis_sentinels=sentinels,
        redis_sentinel_master=read.str("REDIS_SENTINEL_MASTER"),
        bot_secret=_secret(read, env),
        openai_api_key=api_key,
        openai_base_url=upstreams[0].base_url,
        openai_model=model,
        openai_timeout=openai_timeout,
        lease_seconds=_lease(read, upstreams),
        offline=not api_key and not base_url_set,
        system_prompt=read.str("BOT_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
        key_grant_tokens=read.int("BOT_KEY_GRANT_TOKENS", 10_000, 0, 10**12),
        answer_tokens=read.int("BOT_ANSWER_TOKENS", 1_000, 16, 100_000),
        max_body_bytes=read.int("BOT_MAX_BODY_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
        **read_wechat(read),
        limits=_limits(read),
        **_operations(read, env),
        **read_safety(read),
        upstreams=upstreams,
        upstream_failures=read.int("BOT_UPSTREAM_FAILURES", 3, 1, 1000),
        upstream_cooldown=read.float("BOT_UPSTREAM_COOLDOWN", 30.0, 0.1, 3600.0),
        portal=read_portal(read),
    ))  # fmt: skip


def _lease(read: Reader, upstreams: tuple[UpstreamSpec, ...]) -> float:
    """A claim outlives its model call by a margin; a worker that died mid-call frees it this late.
    With several upstreams the call is the failover chain: each one's timeout, one after another."""
    if len(upstreams) == 1:  # its own timeout: a BOT_UPSTREAMS entry's may be longer than OPENAI_TIMEOUT
        return read.float("BOT_LEASE_SECONDS", upstreams[0].timeout + 30, 1.0, 3600.0)
    chain = sum(u.timeout for u in upstreams)
    lease = read.float("BOT_LEASE_SECONDS", chain + 30, 1.0, 3600.0)
    if lease <= chain:  # a WeChat message would be taken over, and asked again, while still failing over
        raise ConfigError("BOT_LEASE_SECONDS", f"must be longer than the upstreams' timeouts added up ({chain:g}s)")
    return lease


def _operations(read: Reader, env: str) -> dict:
    previous = read.str("BOT_SECRET_PREVIOUS")
    if previous and len(previous) < MIN_SECRET_LENGTH and env != "dev":
        raise ConfigError("BOT_SECRET_PREVIOUS", f"must be at least {MIN_SECRET_LENGTH} characters")
    aes_previous = read.str("WECHAT_AES_KEY_PREVIOUS")
    if aes_previous and not valid_aes_key(aes_previous):
        raise ConfigError("WECHAT_AES_KEY_PREVIOUS", "must be a 43-character EncodingAESKey (the one replaced)")
    return {
        "bot_secret_previous": previous,
        "wechat_aes_key_previous": aes_previous,
        "metrics_token": read.str("BOT_METRICS_TOKEN"),
        "log_content": read.choice("BOT_LOG_CONTENT", "0", ("0", "1")) == "1",
        "body_timeout": read.float("BOT_BODY_TIMEOUT", 5.0, 0.1, 300.0),
        "connections_per_address": read.int("BOT_CONNECTIONS_PER_ADDRESS", 200, 0, 1_000_000),
    }


def _environ_with_dotenv() -> dict[str, str]:
    """os.environ over the optional .env in the working directory (the environment wins)."""
    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    values.update(os.environ)
    return values
