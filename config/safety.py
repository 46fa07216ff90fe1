"""Content safety's settings (bot/safety/, docs/operations.md): banned words and moderation."""

from __future__ import annotations

from config.reader import Reader


def read_safety(read: Reader) -> dict:
    """Content safety's settings (bot/safety/): word files, what a banned word in an answer becomes, moderation."""
    files = tuple(f.strip() for f in read.str("BOT_SENSITIVE_WORDS_FILES").split(",") if f.strip())
    url = read.str("BOT_MODERATION_URL")
    if url:
        read.url("BOT_MODERATION_URL", url, ("http", "https"))
    return {
        "sensitive_words_files": files,
        "sensitive_answer_action": read.choice("BOT_SENSITIVE_ANSWER_ACTION", "mask", ("mask", "block")),
        "moderation_url": url,
        "moderation_api_key": read.str("BOT_MODERATION_API_KEY"),
        "moderation_timeout": read.float("BOT_MODERATION_TIMEOUT", 1.5, 0.1, 30.0),
        "moderation_fail_closed": read.choice("BOT_MODERATION_FAIL", "open", ("open", "closed")) == "closed",
    }
