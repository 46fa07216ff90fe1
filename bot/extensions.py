"""The clients an app creates once and its handlers reach through `services()`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import current_app

from bot.chat.core import ChatService
from bot.chat.providers import OfflineProvider, OpenAIProvider, Provider
from bot.store.apikeys import KeyStore
from bot.store.blocks import Blocklist
from bot.store.connection import connect
from bot.store.limits import FollowerGate
from bot.store.quota import Allowances, KeyLedger
from bot.store.vault import Vault
from config.settings import Settings

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
    followers: FollowerGate  # the webhook: admit(openid) before each chat message
    allowances: Allowances  # the webhook: allowances.payer(openid) pays for WeChat chat


def build_provider(settings: Settings) -> Provider:
    if settings.offline:
        return OfflineProvider()
    return OpenAIProvider(
        settings.openai_base_url, settings.openai_api_key, settings.openai_model, settings.openai_timeout
    )


def build_services(settings: Settings) -> Services:
    client = connect(settings.redis_url)
    provider = build_provider(settings)
    return Services(
        settings=settings,
        redis=client,
        provider=provider,
        chat=ChatService(provider, settings.system_prompt, settings.answer_tokens),
        keys=KeyStore(client, Vault(settings.bot_secret), settings.key_grant_tokens),
        ledger=KeyLedger(client, settings.limits.key_rpm, settings.limits.user_rpm),
        blocks=Blocklist(client),
        followers=FollowerGate(client, settings.limits.openid_rpm),
        allowances=Allowances(client, settings.limits.daily_chat_tokens),
    )


def services() -> Services:
    """The current app's services (inside a request or an app context)."""
    return current_app.extensions["bot"]
