"""External moderation (BOT_MODERATION_URL) against a local double: flagged, clean, slow, garbage,
in both fail modes, on the JSON doors and on WeChat, where its time is spent inside the window."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.doubles.moderation import ModerationDouble
from tests.follower import Follower, flask_post
from tests.helpers import ask, ask_openai

FOLLOWER = "oFollower0000000000000000041"
MODERATION_KEY = "sk-moderation-secret-0123456789"


@pytest.fixture(scope="module")
def moderation_server():
    server = ModerationDouble()
    yield server
    server.stop()


@pytest.fixture
def moderation(moderation_server):
    moderation_server.reset()
    return moderation_server


@pytest.fixture
def moderated(config, moderation, make_app):
    def build(fail: str = "open", timeout: str = "0.3"):
        return make_app(
            {**config, "BOT_MODERATION_URL": moderation.url, "BOT_MODERATION_API_KEY": MODERATION_KEY,
             "BOT_MODERATION_TIMEOUT": timeout, "BOT_MODERATION_FAIL": fail}
        ).test_client()  # fmt: skip

    return build


def test_a_clean_question_is_asked_and_the_service_sees_every_turn_with_the_key(
    moderated, moderation, issue_key, upstream
):
    client = moderated()
    response = ask_openai(
        client, issue_key(), [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    )
    assert response.status_code == 200 and upstream.calls == 1
    headers, body = moderation.received[0]
    assert headers["Authorization"] == f"Bearer {MODERATION_KEY}" and body == {"input": ["be brief", "hi"]}


def test_a_flagged_question_is_refused_like_a_word_on_both_doors(moderated, moderation, issue_key, upstream):
    moderation.reset("flagged")
    client, key = moderated(), issue_key()
    assert ask(client, key, "something").get_json() == {"code": 40006, "msg": "问题包含本服务不接受的内容"}
    error = ask_openai(client, key, "something").get_json()["error"]
    assert error["code"] == "content_filter" and upstream.calls == 0


@pytest.mark.parametrize("mode", ["slow", "trickle", "garbage", "error"])
def test_a_failing_service_lets_questions_through_when_open(moderated, moderation, issue_key, upstream, mode):
    moderation.reset(mode, delay=3.0)
    started = time.monotonic()
    assert ask(moderated("open"), issue_key(), "hi").status_code == 200 and upstream.calls == 1
    assert time.monotonic() - started < 1.5  # a slow service costs its timeout (0.3 s), not its delay


@pytest.mark.parametrize("mode", ["slow", "garbage", "error"])
def test_a_failing_service_refuses_questions_when_closed(moderated, moderation, issue_key, upstream, mode, caplog):
    moderation.reset(mode)
    client = moderated("closed")
    response = ask(client, issue_key(), "hi")
    assert response.status_code == 503 and response.get_json()["code"] == 50301 and upstream.calls == 0
    assert "内容审核暂不可用" in response.get_json()["msg"]
    assert not any(MODERATION_KEY in r.getMessage() for r in caplog.records)


def test_on_wechat_a_flagged_question_is_refused_and_records_no_turn(moderated, moderation, upstream, redis):
    moderation.reset("flagged")
    follower = Follower(flask_post(moderated()), ACCOUNT, FOLLOWER)
    assert follower.say("something") == texts.QUESTION_REFUSED and upstream.calls == 0
    assert redis.llen(f"bot:{{u:{FOLLOWER}}}:history") == 0


@pytest.mark.parametrize("mode", ["slow", "trickle"])  # a trickle: each read is quick, the whole is not
def test_on_wechat_a_slow_service_is_cut_at_its_timeout_inside_the_window(moderated, moderation, upstream, mode):
    moderation.reset(mode, delay=3.0)  # longer than WeChat's window: only the timeout keeps the reply in it
    for fail, reply in (("open", "回答：hi"), ("closed", texts.MODERATION_UNAVAILABLE)):
        follower = Follower(flask_post(moderated(fail, timeout="0.5")), ACCOUNT, FOLLOWER)
        started = time.monotonic()
        assert follower.say("hi") == reply  # the first delivery's reply: within the window
        assert time.monotonic() - started < 2.0


def test_moderation_failures_are_logged_without_the_url_or_key(moderated, moderation, issue_key, caplog):
    caplog.set_level(logging.WARNING, logger="bot.safety.moderation")
    moderation.reset("error")
    ask(moderated(), issue_key(), "hi")
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.safety.moderation"]
    assert lines == ["moderation failed (HTTP 500): let through"]


def test_in_a_gevent_worker_a_trickling_service_is_cut_at_the_timeout(moderation):
    """gunicorn's workers are gevent's: there the call itself is cut (a process of its own, patched)."""
    moderation.reset("trickle", delay=3.0)
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import time\n"
        "from bot.safety.moderation import Moderation\n"
        f"moderation = Moderation({moderation.url!r}, '', 0.3, fail_closed=True)\n"
        "started = time.monotonic()\n"
        "print(moderation.judge(['hi']).name, time.monotonic() - started)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=root)
    verdict, seconds = done.stdout.split()
    assert verdict == "UNAVAILABLE" and float(seconds) < 1.0, done.stderr
