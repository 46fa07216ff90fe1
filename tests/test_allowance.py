"""A follower's daily allowance for WeChat chat, against a real Redis: the Payer contract of the core."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.chat.core import ChatService
from bot.chat.dialogue import Turn
from bot.chat.providers import OfflineProvider
from bot.errors import ChatError, Failure
from bot.store import keyspace
from bot.store.connection import connect
from bot.store.quota import Allowances

NOON = 1_767_240_000.0  # 2026-01-01 12:00 in China
DAY = "20260101"


class Clock:
    def __init__(self, now: float = NOON):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(redis_server, redis):
    client = connect(redis_server.url)
    yield client
    client.close()


def test_a_turn_reserves_then_counts_what_it_used(store, redis):
    allowances = Allowances(store, 1000, Clock())
    payer = allowances.payer("oAlice")
    assert payer.reserve(300, 50) == 300
    assert redis.hgetall(keyspace.follower_day("oAlice", DAY)) == {"reserved": "300"}
    assert payer.settle(300, 120) == 120
    assert allowances.used_today("oAlice") == 120
    assert redis.hget(keyspace.follower_day("oAlice", DAY), "reserved") == "0"
    assert 0 < redis.ttl(keyspace.follower_day("oAlice", DAY)) <= 3 * 86400


def test_the_cap_counts_turns_in_flight_and_then_refuses(store):
    allowances = Allowances(store, 1000, Clock())
    first, second, third = (allowances.payer("oBob") for _ in range(3))
    assert first.reserve(700, 100) == 700
    assert second.reserve(700, 100) == 300  # only what is left, while the first is still answering
    with pytest.raises(ChatError) as refused:
        third.reserve(700, 100)
    assert refused.value.failure is Failure.QUOTA_EXHAUSTED
    assert "还剩 0" in refused.value.message
    first.settle(700, 0)  # a failed call gives its reservation back
    assert third.reserve(700, 100) == 700


def test_an_answer_past_its_reservation_counts_in_full_and_the_next_turn_is_refused(store):
    allowances = Allowances(store, 100, Clock())
    payer = allowances.payer("oCarol")
    reserved = payer.reserve(100, 20)
    payer.settle(reserved, 130)
    assert allowances.used_today("oCarol") == 130
    with pytest.raises(ChatError):
        allowances.payer("oCarol").reserve(10, 1)


def test_zero_means_no_cap_but_use_is_still_counted(store):
    allowances = Allowances(store, 0, Clock())
    payer = allowances.payer("oDave")
    assert payer.reserve(10**9, 10**9) == 10**9
    payer.settle(10**9, 5)
    assert allowances.used_today("oDave") == 5


def test_a_new_day_starts_a_new_allowance_and_a_turn_settles_on_its_own_day(store, redis):
    clock = Clock()
    allowances = Allowances(store, 100, clock)
    late = allowances.payer("oEve")
    late.reserve(100, 10)
    clock.now += 12 * 3600  # past midnight in China
    assert allowances.payer("oEve").reserve(100, 10) == 100  # today's allowance is whole again
    late.settle(100, 40)
    assert redis.hgetall(keyspace.follower_day("oEve", DAY)) == {"reserved": "0", "used": "40"}
    assert allowances.used_today("oEve") == 0


def test_followers_do_not_share_an_allowance(store):
    allowances = Allowances(store, 100, Clock())
    allowances.payer("oFrank").reserve(100, 100)
    assert allowances.payer("oGrace").reserve(100, 100) == 100


def test_concurrent_turns_never_reserve_past_the_cap(redis_server, store):
    allowances = Allowances(store, 1000, Clock())

    def reserve(_):
        try:
            return allowances.payer("oHeidi").reserve(90, 90)
        except ChatError:
            return 0

    with ThreadPoolExecutor(20) as pool:
        granted = list(pool.map(reserve, range(40)))
    assert sum(granted) == 990 and granted.count(90) == 11


def test_the_chat_core_charges_a_follower_exactly_the_reported_usage(store):
    allowances = Allowances(store, 20_000, Clock())
    chat = ChatService(OfflineProvider(), "", 1000)
    completion = chat.complete([Turn("user", "你好，今天天气怎么样？")], allowances.payer("oIvan"))
    assert allowances.used_today("oIvan") == completion.usage.total_tokens > 0
