"""A bad setting stops start-up with one line naming the variable."""

import pytest

from config.settings import ConfigError, load_settings

GOOD = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BOT_SECRET": "s" * 32}


@pytest.mark.parametrize(
    ("change", "name", "words"),
    [
        ({"REDIS_URL": ""}, "REDIS_URL", "is required"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL", "must be a redis/rediss/unix URL"),
        ({"BOT_SECRET": ""}, "BOT_SECRET", "is required"),
        ({"BOT_SECRET": "short"}, "BOT_SECRET", "at least 32 characters"),
        ({"OPENAI_TIMEOUT": "soon"}, "OPENAI_TIMEOUT", "must be a number, got 'soon'"),
        ({"OPENAI_TIMEOUT": "0"}, "OPENAI_TIMEOUT", "between"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL", "http/https URL"),
        ({"BOT_KEY_GRANT_TOKENS": "-1"}, "BOT_KEY_GRANT_TOKENS", "between 0 and"),
        ({"BOT_ENV": "staging"}, "BOT_ENV", "one of production, dev, test"),
        ({"BOT_RATE_KEY_RPM": "fast"}, "BOT_RATE_KEY_RPM", "must be an integer, got 'fast'"),
        ({"BOT_RATE_USER_RPM": "-1"}, "BOT_RATE_USER_RPM", "between 0 and 10000"),
        ({"BOT_RATE_OPENID_RPM": "10001"}, "BOT_RATE_OPENID_RPM", "between 0 and 10000, got 10001"),
        ({"BOT_DAILY_CHAT_TOKENS": "lots"}, "BOT_DAILY_CHAT_TOKENS", "must be an integer"),
        ({"BOT_WECHAT_PARTIAL": "sometimes"}, "BOT_WECHAT_PARTIAL", "one of last, first, off, got 'sometimes'"),
        ({"BOT_RESET_KEYWORDS": "重置,继续"}, "BOT_RESET_KEYWORDS", "another command's text, got 继续"),
        ({"BOT_RESET_KEYWORDS": "KEY"}, "BOT_RESET_KEYWORDS", "another command's text, got key"),
        ({"BOT_RESET_KEYWORDS": "重置,登录"}, "BOT_RESET_KEYWORDS", "another command's text, got 登录"),
    ],
)
def test_each_bad_value_names_its_variable(change, name, words):
    with pytest.raises(ConfigError) as error:
        load_settings({**GOOD, **change})
    assert error.value.name == name
    assert str(error.value).startswith(f"configuration error: {name} ")
    assert words in str(error.value)
    assert "\n" not in str(error.value)


def test_the_offline_provider_is_chosen_only_without_any_upstream_setting():
    assert load_settings(GOOD).offline
    assert not load_settings({**GOOD, "OPENAI_API_KEY": "sk-x"}).offline
    local = load_settings({**GOOD, "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1/"})
    assert not local.offline and local.openai_base_url == "http://127.0.0.1:11434/v1"


def test_dev_accepts_a_short_secret_but_production_does_not():
    assert load_settings({**GOOD, "BOT_ENV": "dev", "BOT_SECRET": "dev"}).dev
    with pytest.raises(ConfigError):
        load_settings({**GOOD, "BOT_SECRET": "dev"})


def test_limits_have_documented_defaults_and_zero_turns_them_off():
    limits = load_settings(GOOD).limits
    assert (limits.daily_chat_tokens, limits.key_rpm, limits.user_rpm, limits.openid_rpm) == (20_000, 60, 20, 20)
    off = {name: "0" for name in ("BOT_DAILY_CHAT_TOKENS", "BOT_RATE_KEY_RPM", "BOT_RATE_USER_RPM")}
    limits = load_settings({**GOOD, **off}).limits
    assert (limits.daily_chat_tokens, limits.key_rpm, limits.user_rpm, limits.openid_rpm) == (0, 0, 0, 20)


MODERATED = {**GOOD, "WECHAT_TOKEN": "token", "BOT_MODERATION_URL": "http://127.0.0.1:9/v1/moderations"}


@pytest.mark.parametrize(
    ("change", "said"),
    [({"BOT_MODERATION_TIMEOUT": "4.5"}, "(4.5s), got 4.5"),
     ({"BOT_MODERATION_TIMEOUT": "2", "BOT_WECHAT_TIMEOUT": "2.5", "BOT_WECHAT_WINDOW": "1.5"}, "(1.5s), got 2.0")],
)  # fmt: skip
def test_a_moderation_timeout_that_cannot_fit_in_the_wechat_window_stops_start_up(change, said):
    with pytest.raises(ConfigError) as error:
        load_settings({**MODERATED, **change})
    assert str(error.value) == (
        f"configuration error: BOT_MODERATION_TIMEOUT must be shorter than BOT_WECHAT_WINDOW {said}: "
        "on WeChat the moderation call is made inside the window, before the model"
    )


def test_a_moderation_timeout_is_held_to_the_window_only_where_both_are_used():
    assert load_settings({**MODERATED, "BOT_MODERATION_TIMEOUT": "4.4"}).moderation_timeout == 4.4
    without_wechat = {k: v for k, v in MODERATED.items() if k != "WECHAT_TOKEN"}
    assert load_settings({**without_wechat, "BOT_MODERATION_TIMEOUT": "10"}).moderation_timeout == 10.0
    assert load_settings({**GOOD, "WECHAT_TOKEN": "token", "BOT_MODERATION_TIMEOUT": "10"}).moderation_url == ""


def test_the_settings_printed_in_a_traceback_or_a_debugger_show_no_secret():
    secrets = {
        "REDIS_URL": "redis://:redis-pass-8c1f@127.0.0.1:6379/0",
        "BOT_SECRET": "bot-secret-" + "7" * 32,
        "BOT_SECRET_PREVIOUS": "old-bot-secret-" + "6" * 32,
        "OPENAI_API_KEY": "sk-upstream-5e2d",
        "WECHAT_TOKEN": "wechat-token-4b3a",
        "WECHAT_AES_KEY": "A" * 42 + "q",
        "WECHAT_AES_KEY_PREVIOUS": "B" * 42 + "q",
        "WECHAT_APPID": "wx0123456789abcdef",
        "WECHAT_SECRET": "wechat-appsecret-3c9e",
        "BOT_METRICS_TOKEN": "metrics-token-2a8b",
        "BOT_MODERATION_URL": "http://127.0.0.1:9/moderate",
        "BOT_MODERATION_API_KEY": "moderation-key-1f7d",
    }
    settings = load_settings(secrets)
    shown = repr(settings)
    assert "wx0123456789abcdef" in shown  # the settings are still there to read
    for name, value in secrets.items():
        if name not in ("WECHAT_APPID", "BOT_MODERATION_URL"):
            assert value not in shown, name
    assert "redis-pass" not in shown and "A" * 42 not in shown
