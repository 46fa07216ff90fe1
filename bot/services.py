"""The service container: the clients and stores an app creates once (Redis, the model, the key
store, the ledger, WeChat's protocol and API client…), which handlers reach through `services()` and
which `create_app` hands, one by one, to the classes that use them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from flask import current_app
from redis.cluster import RedisCluster

from bot.chat.catalog import Models
from bot.chat.core import ChatService
from bot.chat.dialogue import MAX_CHARS
from bot.chat.health import Health
from bot.chat.providers import OfflineProvider, OpenAIProvider, Provider, ProxyNotSupported
from bot.chat.routing import Router, Upstream
from bot.safety.guard import ContentGuard
from bot.safety.moderation import Moderation
from bot.safety.runtime import WordStore
from bot.safety.wordfile import DEFAULT_FILE, WordFileError, load_files
from bot.store.apikeys import KeyStore
from bot.store.blocks import Blocklist
from bot.store.connection import connect, disconnect
from bot.store.conversation import Conversation
from bot.store.quota import KeyLedger
from bot.store.replays import SignedQueries
from bot.store.stats import Stats
from bot.store.vault import Vault
from bot.store.wakeups import Wakeups
from bot.tally import Tally
from bot.wechat import texts
from bot.wechat.client import SharedTokenClient
from bot.wechat.protocol import WeChatProtocol
from config.settings import ConfigError, Settings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    provider: Provider
    chat: ChatService
    keys: KeyStore
    ledger: KeyLedger
    blocks: Blocklist
    stats: Stats
    wechat: WeChatProtocol | None
    wechat_client: SharedTokenClient | None
    conversation: Conversation
    signed_queries: SignedQueries
    wakeups: Wakeups  # questions waiting for a follower's model slot, woken when it frees
    guard: ContentGuard  # banned words and moderation, for questions and answers on every door
    models: Models  # the public model names of the OpenAI door, and their routes
    probe: redis.Redis | None = None  # /readyz's own client, with short timeouts
    tally: Tally = field(default_factory=Tally)  # active openids and word hits, for the console's flush

    def close(self) -> None:
        """Release every connection the app holds (tests and a clean shutdown)."""
        self.wakeups.close()
        self.guard.close()
        disconnect(self.redis)
        if self.probe is not None:
            disconnect(self.probe)
        self.provider.close()
        if self.wechat_client is not None:
            self.wechat_client._http.close()


def build_provider(settings: Settings) -> Provider:
    if settings.offline:
        return OfflineProvider()
    several = len(settings.upstreams) > 1  # then the retry is the next upstream, not the same one again
    try:
        return Router(
            [
                Upstream(
                    spec,
                    OpenAIProvider(
                        spec.base_url, spec.api_key, spec.model, spec.timeout, retry=not several, label=spec.name
                    ),
                    Health(settings.upstream_failures, settings.upstream_cooldown),
                )
                for spec in settings.upstreams
            ]
        )
    except ProxyNotSupported as error:
        proxy = "HTTPS_PROXY/HTTP_PROXY/ALL_PROXY"
        raise ConfigError(proxy, f"names {error} for the model: only an http:// or https:// proxy works") from None


def build_services(settings: Settings) -> Services:
    client = connect(
        settings.redis_url, settings.redis_cluster, settings.redis_sentinels, settings.redis_sentinel_master
    )
    provider = build_provider(settings)
    tally = Tally()
    return Services(
        settings=settings,
        redis=client,
        provider=provider,
        chat=ChatService(provider, settings.system_prompt, settings.answer_tokens),
        keys=KeyStore(client, Vault(settings.bot_secret, settings.bot_secret_previous), settings.key_grant_tokens),
        ledger=KeyLedger(
            client, settings.limits.key_rpm, settings.limits.user_rpm, lease_seconds=settings.lease_seconds, tally=tally
        ),
        blocks=Blocklist(client),
        conversation=_conversation(client, settings),
        wakeups=Wakeups(client),
        guard=build_guard(client, settings, tally),
        tally=tally,
        models=Models.of(settings.openai_model, settings.upstreams),
        stats=Stats(client),
        signed_queries=SignedQueries(client, window_seconds=_replay_window(settings)),
        probe=connect(
            settings.redis_url,
            _cluster_mode(client),
            settings.redis_sentinels,
            settings.redis_sentinel_master,
            probe=True,
        ),  # fmt: skip
        wechat=_wechat_protocol(settings) if settings.wechat_token else None,
        wechat_client=SharedTokenClient(
            settings.wechat_appid, settings.wechat_secret, client, settings.wechat_api_base_url
        )
        if settings.wechat_appid and settings.wechat_secret
        else None,
    )


def build_guard(client: redis.Redis, settings: Settings, tally: Tally | None = None) -> ContentGuard:
    """The content guard: the word files (a bad one stops start-up, naming file and line), the
    run-time list in Redis, and the moderation service if one is configured."""
    try:
        file_words = load_files(settings.sensitive_words_files or (str(DEFAULT_FILE),))
    except WordFileError as error:
        raise ConfigError("BOT_SENSITIVE_WORDS_FILES", f"names a bad file: {error}") from None
    moderation = None
    if settings.moderation_url:
        moderation = Moderation(
            settings.moderation_url, settings.moderation_api_key, settings.moderation_timeout,
            settings.moderation_fail_closed,
        )  # fmt: skip
    return ContentGuard(
        file_words, WordStore(client), action=settings.sensitive_answer_action, moderation=moderation,
        log_content=settings.log_content, tally=tally,
    )  # fmt: skip


def _replay_window(settings: Settings) -> int:
    """How long a signed WeChat delivery is fresh: 10 minutes, or less if replies are kept less."""
    return min(600, settings.reply_retention_seconds)


def _conversation(client: redis.Redis, settings: Settings) -> Conversation:
    return Conversation(
        client,
        lease_seconds=settings.lease_seconds,
        retention_seconds=settings.reply_retention_seconds,
        idle_seconds=settings.history_idle_seconds,
        rpm=settings.limits.openid_rpm,
        word=texts.owed_reply,
        history_chars=MAX_CHARS,
    )


def _wechat_protocol(settings: Settings) -> WeChatProtocol:
    return WeChatProtocol(
        settings.wechat_token,
        settings.wechat_aes_key,
        settings.wechat_appid,
        settings.wechat_aes_key_previous,
        max_age=_replay_window(settings),
        mode=settings.wechat_message_mode,
    )


def _cluster_mode(client) -> str:
    """The probe client speaks what the main one found (no second detection round trip)."""
    return "yes" if isinstance(client, RedisCluster) else "no"


def services() -> Services:
    """The current app's services (inside a request or an app context)."""
    return current_app.extensions["bot"]
