"""The upstream list as an operator writes it: a comma list in OPENAI_BASE_URL, BOT_UPSTREAMS (JSON) or
BOT_UPSTREAMS_FILE (TOML or JSON); every bad entry stops start-up with one line naming entry and field,
and never quoting a key."""

from __future__ import annotations

import json

import pytest

from config.settings import ConfigError, load_settings

GOOD = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BOT_SECRET": "s" * 32}
SECRET = "sk-very-secret-0123456789"


def upstreams(*entries: dict) -> dict[str, str]:
    return {**GOOD, "BOT_UPSTREAMS": json.dumps(list(entries))}


def test_one_base_url_is_one_upstream_as_before():
    settings = load_settings({**GOOD, "OPENAI_API_KEY": SECRET, "OPENAI_TIMEOUT": "20"})
    (only,) = settings.upstreams
    assert (only.name, only.base_url, only.api_key, only.model, only.timeout) == (
        "api.openai.com", "https://api.openai.com/v1", SECRET, "gpt-4o-mini", 20.0,
    )  # fmt: skip
    assert settings.lease_seconds == 50  # OPENAI_TIMEOUT + 30, as before


def test_comma_separated_base_urls_share_key_model_and_timeout_in_the_order_given():
    environ = {**GOOD, "OPENAI_BASE_URL": "http://a.local:8000/v1/, https://b.local/v1", "OPENAI_API_KEY": SECRET}
    first, second = load_settings({**environ, "OPENAI_MODEL": "m", "OPENAI_TIMEOUT": "10"}).upstreams
    assert (first.name, first.base_url, first.priority) == ("a.local:8000", "http://a.local:8000/v1", 0)
    assert (second.name, second.base_url, second.priority) == ("b.local", "https://b.local/v1", 1)
    assert {first.api_key, second.api_key} == {SECRET} and {first.model, second.model} == {"m"}
    assert load_settings({**environ, "OPENAI_TIMEOUT": "10"}).lease_seconds == 50  # both timeouts + 30


def test_a_full_entry_and_the_defaults_of_a_short_one(monkeypatch):
    full = {"name": "ds", "base_url": "https://api.deepseek.com/v1", "api_key_env": "DS_KEY", "model": "deepseek-chat",
            "priority": 5, "weight": 3, "timeout": 12.5, "models": ["fast", "fast", "cheap"]}  # fmt: skip
    short = {"name": "local", "base_url": "http://127.0.0.1:11434/v1"}
    settings = load_settings({**upstreams(full, short), "DS_KEY": SECRET, "OPENAI_TIMEOUT": "30"})
    ds, local = settings.upstreams
    assert (ds.api_key, ds.model, ds.priority, ds.weight, ds.timeout, ds.models) == (
        SECRET, "deepseek-chat", 5, 3, 12.5, ("fast", "cheap"),
    )  # fmt: skip
    assert (local.api_key, local.model, local.priority, local.weight, local.timeout, local.models) == (
        "", "gpt-4o-mini", 1, 1, 30.0, (),
    )  # fmt: skip
    assert not settings.offline
    assert SECRET not in repr(settings)


def test_a_toml_or_json_file_lists_them(tmp_path):
    toml = tmp_path / "upstreams.toml"
    toml.write_text(
        '[[upstreams]]\nname = "a"\nbase_url = "http://a.local/v1"\napi_key = "k1"\n\n'
        '[[upstreams]]\nname = "b"\nbase_url = "http://b.local/v1"\npriority = 0\nweight = 2\n'
    )
    toml.chmod(0o600)  # it holds a key: readable by the service's user only
    names = [(u.name, u.priority, u.weight) for u in load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(toml)}).upstreams]
    assert names == [("a", 0, 1), ("b", 0, 2)]
    as_json = tmp_path / "upstreams.json"
    as_json.write_text(json.dumps({"upstreams": [{"name": "a", "base_url": "http://a.local/v1"}]}))
    assert [u.name for u in load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(as_json)}).upstreams] == ["a"]


@pytest.mark.parametrize(
    ("mode", "entry", "words"),
    [
        (0o644, {"api_key": SECRET}, "holds api_key values and is readable by every user of the host (mode 0644)"),
        (0o666, {"api_key_env": "A_KEY"}, "is writable by every user of the host (mode 0666)"),
        (0o602, {}, "is writable by every user of the host (mode 0602)"),
    ],
)
def test_an_upstreams_file_others_may_read_for_its_keys_or_change_is_refused(tmp_path, mode, entry, words):
    path = tmp_path / "upstreams.json"
    path.write_text(json.dumps([{"name": "a", "base_url": "http://a.local/v1", **entry}]))
    path.chmod(mode)
    with pytest.raises(ConfigError) as error:
        load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(path), "A_KEY": SECRET})
    assert error.value.name == "BOT_UPSTREAMS_FILE" and words in str(error.value)
    assert SECRET not in str(error.value)


def test_an_upstreams_file_without_keys_may_be_read_by_all_and_one_with_keys_by_its_group(tmp_path):
    path = tmp_path / "upstreams.json"
    path.write_text(json.dumps([{"name": "a", "base_url": "http://a.local/v1", "api_key_env": "A_KEY"}]))
    path.chmod(0o644)  # names the key's variable only: nothing secret in it
    assert load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(path), "A_KEY": SECRET}).upstreams[0].api_key == SECRET
    path.write_text(json.dumps([{"name": "a", "base_url": "http://a.local/v1", "api_key": SECRET}]))
    path.chmod(0o640)
    assert load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(path)}).upstreams[0].api_key == SECRET


GOOD_ENTRY = {"name": "backup", "base_url": "http://b.local/v1", "api_key": SECRET}


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"timeout": "soon"}, "BOT_UPSTREAMS[1] (backup)", "field timeout must be seconds from 0.1 to 600"),
        ({"timeout": True}, "BOT_UPSTREAMS[1] (backup)", "field timeout"),
        ({"weight": 0}, "BOT_UPSTREAMS[1] (backup)", "field weight must be an integer from 1 to 1000, got '0'"),
        ({"priority": -1}, "BOT_UPSTREAMS[1] (backup)", "field priority"),
        ({"base_url": "ftp://user:hunter2@b.local"}, "BOT_UPSTREAMS[1] (backup)", "field base_url must be an http"),
        ({"base_url": "user:hunter2@b.local"}, "BOT_UPSTREAMS[1] (backup)", "field base_url must be an http"),
        ({"base_url": None}, "BOT_UPSTREAMS[1] (backup)", "field base_url is required"),
        ({"name": "has space"}, "BOT_UPSTREAMS[1]", "field name is required: 1-64 letters"),
        ({"name": "primary"}, "BOT_UPSTREAMS[1] (primary)", "field name is used by an earlier entry"),
        ({"apikey": SECRET}, "BOT_UPSTREAMS[1] (backup)", "has unknown field 'apikey'"),
        ({"api_key": SECRET + "\r\nX-Evil: 1"}, "BOT_UPSTREAMS[1] (backup)", "field api_key must be printable ASCII"),
        ({"api_key_env": "NOPE_KEY"}, "BOT_UPSTREAMS[1] (backup)", "fields api_key and api_key_env are both set"),
        (
            {"api_key": None, "api_key_env": "NOPE_KEY"},
            "BOT_UPSTREAMS[1] (backup)",
            "field api_key_env names NOPE_KEY, which is not set",
        ),
        (
            {"api_key": None, "api_key_env": "BOT_SECRET"},  # set in GOOD: it would go upstream as a Bearer token
            "BOT_UPSTREAMS[1] (backup)",
            "field api_key_env names BOT_SECRET, one of the service's own credentials",
        ),
        (
            {"api_key": None, "api_key_env": "WECHAT_AES_KEY"},
            "BOT_UPSTREAMS[1] (backup)",
            "field api_key_env names WECHAT_AES_KEY, one of the service's own credentials",
        ),
        ({"models": "fast"}, "BOT_UPSTREAMS[1] (backup)", "field models must be a list of model names"),
        ({"model": "two words"}, "BOT_UPSTREAMS[1] (backup)", "field model must be a model name"),
    ],
)
def test_a_bad_entry_is_named_with_its_field_and_no_key_is_quoted(change, where, words):
    entry = {k: v for k, v in {**GOOD_ENTRY, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as error:
        load_settings(upstreams({"name": "primary", "base_url": "http://a.local/v1"}, entry))
    assert error.value.name == where
    assert str(error.value).startswith(f"configuration error: {where} {words}")
    assert "\n" not in str(error.value) and "hunter2" not in str(error.value) and "secret" not in str(error.value)


@pytest.mark.parametrize(
    ("environ", "name", "words"),
    [
        ({"BOT_UPSTREAMS": '[{"name": "a", "api_key": "sk-secret-x", }]'}, "BOT_UPSTREAMS", "is not valid JSON"),
        ({"BOT_UPSTREAMS": "[]"}, "BOT_UPSTREAMS", "must list 1 to 32 upstreams"),
        ({"BOT_UPSTREAMS": '["http://a.local"]'}, "BOT_UPSTREAMS[0]", "must be an object"),
        ({"BOT_UPSTREAMS": "[]", "BOT_UPSTREAMS_FILE": "x.toml"}, "BOT_UPSTREAMS", "both set"),
        ({"BOT_UPSTREAMS_FILE": "/nonexistent/up.toml"}, "BOT_UPSTREAMS_FILE", "cannot be read"),
        ({"BOT_UPSTREAMS_FILE": "up.yaml"}, "BOT_UPSTREAMS_FILE", "must end in .toml or .json"),
        ({"OPENAI_BASE_URL": "http://a.local, ftp://u:sk-secret-x@b.local"}, "OPENAI_BASE_URL[1]", "http/https URL"),
    ],
)
def test_a_bad_list_is_named(environ, name, words):
    with pytest.raises(ConfigError) as error:
        load_settings({**GOOD, **environ})
    assert error.value.name == name and words in str(error.value) and "secret" not in str(error.value)


def test_bad_toml_says_where_not_what(tmp_path):
    path = tmp_path / "up.toml"
    path.write_text('[[upstreams]]\nname = "a"\napi_key = sk-secret-unquoted\n')
    with pytest.raises(ConfigError) as error:
        load_settings({**GOOD, "BOT_UPSTREAMS_FILE": str(path)})
    assert "is not valid TOML" in str(error.value) and "line 3" in str(error.value)
    assert "secret" not in str(error.value)


def test_the_lease_outlives_the_whole_failover_chain():
    two = upstreams({"name": "a", "base_url": "http://a.local/v1", "timeout": 60}, {**GOOD_ENTRY, "timeout": 40})
    assert load_settings(two).lease_seconds == 130
    with pytest.raises(ConfigError) as error:
        load_settings({**two, "BOT_LEASE_SECONDS": "100"})
    assert error.value.name == "BOT_LEASE_SECONDS" and "timeouts added up (100s)" in str(error.value)


def test_the_lease_of_a_single_listed_upstream_outlives_its_own_timeout():
    slow = upstreams({"name": "local", "base_url": "http://127.0.0.1:11434/v1", "timeout": 300})
    assert load_settings(slow).lease_seconds == 330  # not OPENAI_TIMEOUT's 60 + 30: claims would lapse mid-call


def test_failure_count_and_cool_down_are_settings():
    settings = load_settings({**GOOD, "BOT_UPSTREAM_FAILURES": "5", "BOT_UPSTREAM_COOLDOWN": "12.5"})
    assert (settings.upstream_failures, settings.upstream_cooldown) == (5, 12.5)
    assert (load_settings(GOOD).upstream_failures, load_settings(GOOD).upstream_cooldown) == (3, 30.0)
    with pytest.raises(ConfigError) as error:
        load_settings({**GOOD, "BOT_UPSTREAM_FAILURES": "0"})
    assert error.value.name == "BOT_UPSTREAM_FAILURES"
