"""A key's history for the portal: tokens per day (90 days) and its last 50 requests, written by the
scripts that charge it; a follower's WeChat chat tokens per day; history that outlives a rotation."""

from __future__ import annotations

from bot.ids import today
from bot.services import services
from bot.store import keyspace
from bot.store.usage import day_before, read_history
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded
from tests.helpers import ask, ask_openai, key_info

OPENID = "oHistory00000000000000000001"


def _recent(app, key: str) -> list[str]:
    with app.app_context():
        return services().redis.lrange(keyspace.api_key_recent(services().keys.fingerprint(key)), 0, -1)


def test_each_api_request_is_noted_newest_first_with_door_outcome_and_tokens_and_no_content(app, client, issue_key):
    key = issue_key(OPENID)
    spec = ask(client, key, "第一个问题").json
    openai = ask_openai(client, key, "第二个问题").json
    lines = [line.split("|") for line in _recent(app, key)]
    assert [(door, outcome, int(tokens)) for _, door, _, outcome, tokens in lines] == [
        ("openai", "ok", openai["usage"]["total_tokens"]),
        ("api", "ok", spec["usage"]["total_tokens"]),
    ]
    assert all(int(ms) > 0 and int(latency) >= 0 for ms, _, latency, _, _ in lines)
    assert not any("问题" in line for line in _recent(app, key))


def test_refusals_and_upstream_failures_are_noted_with_no_tokens(app, client, issue_key, upstream):
    key = issue_key(OPENID)
    upstream.reset(status=500)
    assert ask(client, key).status_code == 502
    with app.app_context():
        services().redis.hset(keyspace.api_key(services().keys.fingerprint(key)), "balance", 1)
    assert ask(client, key).status_code == 402
    outcomes = [line.split("|")[3:] for line in _recent(app, key)]
    assert outcomes == [["too_poor", "0"], ["upstream_failed", "0"]]


def test_the_list_keeps_the_last_fifty(app, client, issue_key, upstream):
    key = issue_key(OPENID)
    for i in range(53):
        assert ask(client, key, f"q{i}").status_code == 200
    assert len(_recent(app, key)) == 50


def test_tokens_per_day_are_summed_and_days_older_than_ninety_are_dropped(app, client, issue_key, redis):
    key = issue_key(OPENID)
    with app.app_context():
        days = keyspace.api_key_days(services().keys.fingerprint(key))
    now = today()
    redis.hset(days, mapping={day_before(now, back): 1 for back in range(1, 100)})  # 99 old days
    used = [ask(client, key, q).json["usage"]["total_tokens"] for q in ("一", "二")]
    kept = redis.hgetall(days)
    assert int(kept[now]) == sum(used) == key_info(app, key).used
    assert day_before(now, 89) in kept and day_before(now, 90) not in kept and len(kept) == 90
    assert 0 < redis.ttl(days) <= 90 * 86400


def test_a_followers_wechat_chat_tokens_are_kept_per_day(app, client, redis):
    follower = Follower(flask_post(client), ACCOUNT, OPENID)
    assert follower.say("你好")
    assert recorded(redis, OPENID)
    used = int(redis.hget(keyspace.follower_day(OPENID, today()), "used"))
    assert used > 0 and int(redis.hget(keyspace.follower_days(OPENID), today())) == used


def test_the_history_outlives_a_rotation(app, client, issue_key):
    key = issue_key(OPENID)
    before = ask(client, key).json["usage"]["total_tokens"]
    with app.app_context():
        new = services().keys.rotate(OPENID)
    after = ask(client, new).json["usage"]["total_tokens"]
    assert ask(client, key).status_code == 401  # the old key fails, and is not noted: it has no record
    with app.app_context():
        svc = services()
        api, _, recent = read_history(svc.redis, svc.keys.history_keys(OPENID), OPENID)
    assert api[today()] == before + after and len(recent) == 2
