"""Each kind of message gets its own answer, and where two kinds could overlap, one way settles it."""

from __future__ import annotations

import pytest

from bot.store import keyspace
from bot.wechat import texts
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post

OPENID = "oFollower0000000000000000021"


@pytest.fixture
def follower(client):
    return Follower(flask_post(client), ACCOUNT, OPENID)


@pytest.mark.parametrize("word", ["继续", " 继续 ", "continue", "Continue", "MORE", " more\n"])
def test_continue_words_in_any_case_collect_what_is_owed_and_ask_nothing(follower, upstream, word):
    assert follower.say(word) == texts.NOTHING_OWED
    assert upstream.calls == 0


def test_a_recognised_voice_message_is_read_as_its_words(follower, upstream, redis):
    def voice(words: str, msg_id: int) -> str:
        return follower.deliver("voice", MediaId="m", Format="amr", Recognition=words, MsgId=msg_id)["Content"]

    assert voice("继续", 31) == texts.NOTHING_OWED
    assert "sk-" in voice("Key", 32) and redis.hget(keyspace.account(OPENID), "key_fp")
    assert upstream.calls == 0


def test_blank_text_is_a_polite_note_not_a_question(follower, upstream):
    assert follower.say(" \n\t ") == texts.UNSUPPORTED
    assert upstream.calls == 0


def test_a_question_of_2000_characters_is_asked_and_one_of_2001_is_not(follower, upstream):
    assert follower.say("问" * 2000).startswith("回答：问")
    assert upstream.calls == 1
    assert follower.say("问" * 2001) == texts.QUESTION_TOO_LONG.format(length=2001)
    assert upstream.calls == 1


def test_an_admins_slash_word_is_a_command_even_when_it_is_a_key_keyword(config, make_app, upstream, redis):
    client = make_app({**config, "BOT_KEY_KEYWORDS": "/key, key"}).test_client()
    admin, follower = Follower(flask_post(client), ACCOUNT, ADMIN), Follower(flask_post(client), ACCOUNT, OPENID)
    assert admin.say("/key").startswith("未知命令 /key")
    assert not redis.hget(keyspace.account(ADMIN), "key_fp")  # no key issued
    assert "sk-" in admin.say("key")  # without the slash, an admin asks for a key like anyone
    assert "sk-" in follower.say("/KEY")  # from anyone else, "/key" is the keyword it was set to be
    assert upstream.calls == 0


def test_admin_menu_buttons_run_commands_for_admins_only(admin, follower, upstream):
    assert admin.click("ADMIN_STATS").startswith("今日统计")
    assert follower.click("ADMIN_STATS") is None  # answered `success`: nothing shown
    assert follower.last_status == 200 and upstream.calls == 0
