"""What a model or a follower might send a WeChat answer that is read as it is written, and what the
follower then reads: every character once, in order, whatever the text holds."""

from __future__ import annotations

import pytest

from bot.store import keyspace
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post
from tests.procs import wait_for

WHO = "oHostile00000000000000000001"


@pytest.fixture
def follower(client) -> Follower:
    return Follower(flask_post(client), ACCOUNT, WHO)


def test_an_emoji_streamed_in_two_halves_reaches_the_follower_whole(follower, upstream, redis):
    # A server that splits 😀 between two events sends each half as a JSON escape (\ud83d, \ude00).
    upstream.reset(answer=lambda m: "好的\ud83d\ude00。]]>\x00完", piece_chars=3)
    assert follower.say("来个表情") == "好的😀。]]>完"
    assert wait_for(lambda: redis.lrange(keyspace.history(WHO), 0, -1) == ["来个表情", "好的😀。]]>完"], timeout=5)
