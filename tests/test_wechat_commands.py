"""What a follower types instead of clicking the menu, what the partial setting `off` keeps as it was,
when a delivery decides under load, and the scripts that hand out an answer being written."""

from __future__ import annotations

import time

import pytest

from bot.store import keyspace
from bot.wechat import texts
from bot.wechat.deadline import ReplyClock
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded
from tests.procs import wait_for

WHO = "oCommands00000000000000000001"


@pytest.fixture
def follower(client):
    return Follower(flask_post(client), ACCOUNT, WHO)


def history(redis) -> list[str]:
    return redis.lrange(keyspace.history(WHO), 0, -1)


@pytest.mark.parametrize("word", ["重置", "清空对话", "新对话", " 新对话 "])
def test_a_reset_word_clears_the_followers_own_history_as_the_menu_does(follower, redis, upstream, word):
    follower.say("记住我")
    other = Follower(follower.post, ACCOUNT, "oCommands00000000000000000002")
    other.say("我也在")
    assert follower.say(word) == texts.RESET_DONE
    assert history(redis) == [] and redis.llen(keyspace.history(other.openid)) == 2  # only their own
    assert upstream.calls == 2  # a command, not a question


def test_help_says_what_the_bot_does_and_a_reset_word_inside_a_question_is_a_question(follower, redis, upstream):
    assert follower.say("帮助") == follower.say("HELP") == texts.HELP
    assert "继续" in texts.HELP and "重置" in texts.HELP
    assert follower.say("我想重置密码") == "回答：我想重置密码"
    assert history(redis) == ["我想重置密码", "回答：我想重置密码"]


def test_the_reset_words_are_the_operators(config, make_app, redis):
    follower = Follower(flask_post(make_app({**config, "BOT_RESET_KEYWORDS": "从头来"}).test_client()), ACCOUNT, WHO)
    follower.say("记住我")
    assert follower.say("重置") == "回答：重置"  # no longer a command
    assert follower.say("从头来") == texts.RESET_DONE and history(redis) == []


@pytest.mark.slow
def test_with_partial_answers_off_a_slow_answer_is_owed_as_before(config, make_app, upstream, redis):
    fast = {**config, "BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.5", "BOT_WECHAT_PARTIAL": "off"}
    follower = Follower(flask_post(make_app(fast).test_client()), ACCOUNT, WHO)
    upstream.reset(chunk_delay=0.3, piece_chars=2, answer=lambda m: "第一句。" * 10)  # written over 6 s
    replies = [follower.say("慢慢写", msg_id=42) for _ in range(3)]  # each silent one is held 2 s
    assert replies == [None, None, texts.THINKING]  # the text written so far is not shown
    assert follower.say("继续") == texts.WAITING
    assert wait_for(lambda: recorded(redis, WHO), timeout=15)
    assert follower.say("继续") == "第一句。" * 10  # whole, without a note


def test_a_delivery_decides_earlier_after_late_wakes_and_the_last_earlier_still():
    clock = ReplyClock(window=4.5, timeout=5.0)
    assert clock.decide_by(100.0, last=False) == pytest.approx(104.5)
    assert clock.decide_by(100.0, last=True) == pytest.approx(104.0)  # the reply itself needs time
    clock.woke(time.monotonic() - 0.2)  # a wait woke 0.2 s late: the machine is busy
    assert clock.decide_by(100.0, last=True) == pytest.approx(103.6, abs=0.01)
    clock.woke(time.monotonic() - 5.0)  # however late: never less than half the window's margin
    assert clock.decide_by(100.0, last=True) == pytest.approx(103.0)


def test_a_part_is_handed_out_once_and_the_writer_records_the_rest_from_there(app, redis):
    drafts = app.extensions["dispatcher"].courier.drafts
    conv = app.extensions["bot"].conversation
    claim = conv.claim(WHO, "70", "问", ask=True)
    assert claim.slot is not None
    text = "第一句。第二句。"
    shown = drafts.show(WHO, "70", "70", "run-a", text, 0, "第一句。", defer=True)
    assert shown.state == "shown"
    # A second delivery that read the same checkpoint cannot hand the same text out again.
    assert drafts.show(WHO, "71", "70", "run-a", text, 0, "第一句。").state in ("stale", "reply")
    # Another run (this one's lease ran out) records nothing; the writer that thought nothing was
    # shown cuts its parts again from where the follower is.
    assert conv.finish_turn(WHO, "70", "问", text, 5, [text], run="run-b").reply == ""
    assert conv.finish_turn(WHO, "70", "问", text, 5, [text], run="run-a").retry == len("第一句。")
    finished = conv.finish_turn(WHO, "70", "问", text, 5, ["第二句。"], run="run-a", shown=4, last="e")
    assert finished.owed == 1 and redis.lrange(keyspace.outbox(WHO), 0, -1) == ["e:第二句。"]
    assert history(redis) == ["问", text]


def test_a_model_server_that_ignores_stream_true_still_answers_the_follower(follower, upstream, redis):
    upstream.reset(ignore_stream=True)  # one JSON completion, as some OpenAI-compatible servers answer
    assert follower.say("你好") == "回答：你好"
    assert history(redis) == ["你好", "回答：你好"] and upstream.received[-1].body["stream"] is True
