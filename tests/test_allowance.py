"""A follower's daily allowance for WeChat chat: checked when their turn begins, charged with it."""

from __future__ import annotations

import pytest

from bot.errors import ChatError, Failure
from bot.ids import today
from bot.store import keyspace
from bot.store.quota import TurnAllowance
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded

WHO = "oAllowance000000000000000001"


def test_what_is_left_caps_the_reservation_and_too_little_refuses():
    assert TurnAllowance(1000, 300).reserve(900, 50) == 700
    assert TurnAllowance(1000, 300).reserve(200, 50) == 200
    with pytest.raises(ChatError) as error:
        TurnAllowance(100, 90).reserve(500, 20)
    assert error.value.failure is Failure.QUOTA_EXHAUSTED
    assert "还剩 10" in error.value.message


def test_no_cap_means_no_refusal():
    assert TurnAllowance(0, 10**9).reserve(500, 20) == 500


def test_each_answered_turn_is_charged_its_usage_and_failed_ones_nothing(config, make_app, upstream, redis):
    from bot.chat.usage import estimate_tokens

    app = make_app({**config, "BOT_DAILY_CHAT_TOKENS": "1000"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, WHO)
    follower.say("你好")
    first = estimate_tokens(["你好"]) + estimate_tokens("回答：你好")
    day = keyspace.follower_day(WHO, today())
    assert recorded(redis, WHO) and int(redis.hget(day, "used")) == first
    upstream.reset(status=500)
    follower.say("失败的问题")
    assert recorded(redis, WHO) and int(redis.hget(day, "used")) == first
    assert 86400 * 2 < redis.ttl(day) <= 86400 * 3
