"""Rules between settings of different sections, checked once all are read (config/settings.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.reader import ConfigError

if TYPE_CHECKING:
    from config.settings import Settings


def checked_across(settings: Settings) -> Settings:
    """`settings`, or ConfigError for the first rule it breaks.

    On WeChat, moderation's time is spent in a delivery's window, before the model: with a timeout as
    long as the window, while the service is slow no message is answered in its first delivery, not
    even with the refusal, and each waits for WeChat's retry."""
    timeout, window = settings.moderation_timeout, settings.wechat_window
    if settings.moderation_url and settings.wechat_token and timeout >= window:
        raise ConfigError(
            "BOT_MODERATION_TIMEOUT",
            f"must be shorter than BOT_WECHAT_WINDOW ({window}s), got {timeout}: "
            "on WeChat the moderation call is made inside the window, before the model",
        )
    return settings
