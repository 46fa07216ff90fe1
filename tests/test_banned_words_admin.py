"""Managing the run-time word list: admins on WeChat, operators on the command line, and every app
sharing the Redis sees a change within seconds (tests/test_banned_words_workers.py: real workers)."""

from __future__ import annotations

import logging
import re

import pytest

from bot.safety import runtime
from bot.safety.admin import PAGE, USAGE
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post
from tests.helpers import ask
from tests.procs import wait_for

USER = "oFollower0000000000000000031"


@pytest.fixture
def user(client):
    return Follower(flask_post(client), ACCOUNT, USER)


def cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result.exit_code, result.output


def test_an_admins_ban_is_enforced_on_another_app_within_seconds(admin, config, make_app, issue_key, upstream):
    other = make_app(config).test_client()  # another worker or host on the same Redis
    key = issue_key()
    assert ask(other, key, "说说新禁词").status_code == 200
    assert admin.say("/ban add 新 禁 词") == "已添加，5 秒内在所有实例生效。"
    assert wait_for(lambda: ask(other, key, "说说新禁词").status_code == 400, timeout=5)
    assert admin.say("/ban del 新禁词") == "已删除，5 秒内在所有实例生效。"
    assert wait_for(lambda: ask(other, key, "说说新禁词").status_code == 200, timeout=5)


def test_a_follower_typing_ban_is_chatting_and_bans_nothing(user, redis, upstream):
    assert user.say("/ban add 你好") == "回答：/ban add 你好"
    assert redis.scard("bot:{safety}:words") == 0
    assert user.say("你好") == "回答：你好"


@pytest.mark.parametrize(
    "command", ["/ban add", "/ban add    ", "/ban add " + "长" * 65, "/ban add ***", "/ban", "/ban x"]
)
def test_an_empty_or_overlong_word_gets_the_usage(admin, redis, command):
    assert admin.say(command) == USAGE
    assert redis.scard("bot:{safety}:words") == 0


def test_the_list_is_paged_with_a_count(admin, app, tmp_path):
    words = tmp_path / "words.txt"  # more than an admin may send in a minute (BOT_RATE_OPENID_RPM)
    words.write_text("".join(f"词{i:02d}\n" for i in range(PAGE + 3)), encoding="utf-8")
    assert cli(app, "words", "import", str(words))[0] == 0
    first = admin.say("/ban list").splitlines()
    assert first[0] == f"运行时违禁词共 {PAGE + 3} 个，第 1/2 页：" and len(first) == PAGE + 1
    second = admin.say("/ban list 2").splitlines()
    assert second[0].endswith("第 2/2 页：") and second[1:] == ["词20", "词21", "词22"]
    assert admin.say("/ban list 3") == "页码应为 1 到 2。"


def test_ban_never_writes_the_word_to_the_log(admin, caplog):
    caplog.set_level(logging.INFO)
    admin.say("/ban add 秘密词")
    assert not any("秘密词" in r.getMessage() for r in caplog.records)
    assert any("ran /ban add" in r.getMessage() for r in caplog.records)


def test_stats_shows_todays_refusals(admin, client, issue_key, user):
    admin.say("/ban add 禁词")
    key = issue_key()
    assert wait_for(lambda: ask(client, key, "禁词").status_code == 400, timeout=5)
    user.say("禁 词")
    # (an answer may have been masked too: one asked while the list changed, echoing the word back)
    assert re.search(r"\n内容拦截：提问 2 次，回答 [01] 次$", admin.say("/stats"))


def test_the_cli_adds_lists_exports_and_removes(app, client, issue_key):
    key = issue_key()
    assert cli(app, "words", "add", "Bad Word") == (0, "banned\n")
    assert cli(app, "words", "add", "ＢＡＤ　ＷＯＲＤ") == (0, "already banned\n")
    assert cli(app, "words", "list")[1].splitlines()[0] == "badword"
    assert "badword" in cli(app, "words", "export")[1].splitlines()
    assert wait_for(lambda: ask(client, key, "a bad-word here").status_code == 400, timeout=5)
    assert cli(app, "words", "remove", "bad word") == (0, "removed\n")
    code, out = cli(app, "words", "remove", "bad word")
    assert code == 1 and "not in the run-time list" in out


@pytest.mark.parametrize("word", ["", "   ", "x" * 65, "!!!"])
def test_the_cli_refuses_an_empty_or_overlong_word(app, redis, word):
    code, out = cli(app, "words", "add", word)
    assert code == 2 and "the word" in out and redis.scard("bot:{safety}:words") == 0


def test_import_takes_a_word_file_and_refuses_a_bad_one_naming_its_line(app, redis, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("# list\n甲词\n乙词\n\n甲词\n", encoding="utf-8")
    assert cli(app, "words", "import", str(good)) == (0, "2 banned, 1 already banned\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes("丙词\n".encode() + b"ok\n" + ("长" * 70).encode() + b"\n")
    code, out = cli(app, "words", "import", str(bad))
    assert code == 1 and f"{bad}:3: the word has 70 characters, at most 64" in out
    assert redis.scard("bot:{safety}:words") == 2  # nothing of the bad file was banned


def test_the_run_time_list_is_capped(app, monkeypatch):
    monkeypatch.setattr(runtime, "MAX_RUNTIME_WORDS", 2)
    monkeypatch.setattr("bot.safety.cli.MAX_RUNTIME_WORDS", 2)
    assert cli(app, "words", "add", "一词")[0] == 0 and cli(app, "words", "add", "二词")[0] == 0
    code, out = cli(app, "words", "add", "三词")
    assert code == 1 and "at most 2 words" in out


def test_an_admin_on_wechat_sees_the_ban_help(admin):
    assert "/ban" in admin.say("/help")


def test_admins_are_the_only_ones_whose_ban_runs(admin):
    assert ADMIN  # (the admin fixture is the one in BOT_ADMIN_OPENIDS)
    assert admin.say("/ban list").startswith("运行时违禁词共 0 个")


@pytest.mark.parametrize("command", ["/ban 秘密词", "/ban 秘密词 add", "/ban ADD秘密词"])
def test_a_ban_without_its_action_gets_the_usage_and_the_word_stays_out_of_the_log(admin, redis, caplog, command):
    caplog.set_level(logging.INFO)
    assert admin.say(command) == USAGE and redis.scard("bot:{safety}:words") == 0
    assert not any("秘密词" in r.getMessage() for r in caplog.records)
    assert any("ran /ban" in r.getMessage() for r in caplog.records)  # the admin's action is still logged


def test_long_words_are_paged_so_that_wechat_shows_every_one_whole(admin, app, tmp_path):
    words = [f"{i:02d}" + "长" * 62 for i in range(PAGE)]  # 64 characters, 188 bytes each
    path = tmp_path / "long.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    assert cli(app, "words", "import", str(path))[0] == 0
    first = admin.say("/ban list").splitlines()
    pages = int(re.search(r"第 1/(\d+) 页", first[0]).group(1))
    shown = first[1:] + [w for n in range(2, pages + 1) for w in admin.say(f"/ban list {n}").splitlines()[1:]]
    assert shown == words  # each whole, none cut off by WeChat's 2,048-byte limit on a reply
