"""A WeChat message's claim stays alive as long as its worker does, whatever the model is doing: a
question queued behind a long streamed answer, and a reasoning model thinking before it writes, both
outlive BOT_LEASE_SECONDS without being answered BUSY or asked of the model twice."""

from __future__ import annotations

import time

import pytest

from bot.store import keyspace
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.procs import wait_for

pytestmark = pytest.mark.slow

WHO = "oLease00000000000000000000001"
LONG = "".join(f"第{i:02d}句写得很慢。" for i in range(40))  # 320 characters: 80 pieces
# WeChat's deadline shortened to 0.5 s (a message's three deliveries are over within 1.5 s) and a 2 s
# lease, so an answer written for 6 s outlives its lease twice over.
SETTINGS = {"BOT_WECHAT_TIMEOUT": "0.5", "BOT_WECHAT_WINDOW": "0.2", "BOT_LEASE_SECONDS": "2"}
SETTINGS["BOT_RATE_OPENID_RPM"] = "0"  # the follower sends 继续 after 继续


@pytest.fixture
def follower(config, make_app) -> Follower:
    return Follower(flask_post(make_app({**config, **SETTINGS}).test_client()), ACCOUNT, WHO)


def deliver_three_times(follower: Follower, text: str, msg_id: int) -> str | None:
    """WeChat's first delivery and its two retries of one message; the last one's reply."""
    return [follower.say(text, msg_id) for _ in range(3)][-1]


def read_on(follower: Follower, until: str, first_id: int) -> list[str]:
    """继续 until a reply holds `until` (each 继续 waits within its window for new text)."""
    replies, deadline = [], time.monotonic() + 20  # the answers take 6 s at most; a loaded machine is slower
    while time.monotonic() < deadline:
        replies.append(follower.say("继续", first_id + len(replies)) or "")
        if until in replies[-1]:
            return replies
    raise AssertionError(f"never read {until!r}: {replies[-3:]}")


def history(redis) -> list[str]:
    return redis.lrange(keyspace.history(WHO), 0, -1)


def test_a_question_queued_behind_an_answer_longer_than_the_lease_is_answered_once(follower, upstream, redis):
    upstream.reset(answer=lambda m: LONG if m[-1]["content"] == "长问题" else "短答。", chunk_delay=0.08)
    first = deliver_three_times(follower, "长问题", 8100)
    assert first and not first.startswith("【正在思考")  # shown as far as written
    queued = follower.say("新问题", 8200)  # the rest so far, then: the new question is being thought about
    assert queued and texts.QUEUED_NOTE in queued
    asked = time.time()
    # It waits behind the long answer longer than its own lease: its claim is renewed meanwhile.
    assert wait_for(lambda: time.time() > asked + 2.5 or history(redis), timeout=5)
    lease = int(redis.hget(keyspace.message(WHO, "8200"), "lease") or 0)
    assert history(redis) == [] and lease > time.time() * 1000
    assert wait_for(lambda: history(redis) == ["长问题", LONG, "新问题", "短答。"], timeout=10)
    replies = read_on(follower, "短答。", 8300)
    assert not any(texts.BUSY in r for r in replies)
    assert upstream.calls_about("新问题") == 1


def test_a_model_that_reasons_longer_than_the_lease_is_asked_once(follower, upstream, redis):
    # 6 s of reasoning (never shown) before the first word of the answer: the three deliveries (a silent
    # one takes 1.5 s here) end in a placeholder after 3 s, when the lease set at the question has run out.
    upstream.reset(reasoning=["想一想……"] * 30, reasoning_delay=0.2, answer=lambda m: "想好了。")
    assert (deliver_three_times(follower, "难题", 8400) or "").startswith("【正在思考…】已思考")
    replies = read_on(follower, "想好了。", 8500)  # each 继续 finds the claim alive, and waits for the answer
    assert not any("想一想" in r for r in replies)
    assert wait_for(lambda: history(redis) == ["难题", "想好了。"], timeout=5)
    assert upstream.calls_about("难题") == 1
