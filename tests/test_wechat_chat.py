"""Followers on the official account: chat with history, keys by keyword, events, other messages."""

from __future__ import annotations

import re

import pytest

from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.store import keyspace
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded

OPENID = "oFollower0000000000000000001"


@pytest.fixture
def follower(client):
    return Follower(flask_post(client), ACCOUNT, OPENID)


def history(redis, openid=OPENID):
    assert recorded(redis, openid)
    return redis.lrange(keyspace.history(openid), 0, -1)


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_a_follower_chats_in_every_mode(client_in_mode, upstream, mode):
    follower = Follower(flask_post(client_in_mode(mode)), ACCOUNT, OPENID, mode=mode)
    assert follower.say("你好") == "回答：你好"
    assert upstream.received[0].body["messages"][-1] == {"role": "user", "content": "你好"}


def test_encrypted_messages_get_encrypted_replies(client_in_mode):
    from bot.wechat import simulate

    client = client_in_mode("compatible")  # takes deliveries of all three kinds
    xml = simulate.message_xml(ACCOUNT, OPENID, "text", Content="hi", MsgId=1)
    for mode, encrypted in (("safe", True), ("compatible", True), ("plain", False)):
        params, body = simulate.sign(ACCOUNT, xml, mode)
        data = client.post("/wechat", query_string=params, data=body).data.decode()
        assert ("<Encrypt>" in data) is encrypted
        assert ("回答：hi" in data) is not encrypted


def test_history_carries_the_dialogue_and_alternates(follower, upstream, redis):
    follower.say("第一问")
    follower.say("第二问")
    sent = [m for m in upstream.received[-1].body["messages"] if m["role"] != "system"]
    assert sent == [
        {"role": "user", "content": "第一问"},
        {"role": "assistant", "content": "回答：第一问"},
        {"role": "user", "content": "第二问"},
    ]
    assert history(redis) == ["第一问", "回答：第一问", "第二问", "回答：第二问"]
    assert 86000 < redis.ttl(keyspace.history(OPENID)) <= 86400


def test_history_keeps_within_2000_characters_forgetting_whole_pairs(follower, redis, upstream):
    upstream.reset(answer=lambda messages: "答" * 500)
    for question in ("一" * 300, "二" * 300, "三" * 300):
        follower.say(question)
    assert history(redis) == ["二" * 300, "答" * 500, "三" * 300, "答" * 500]


def test_history_expires_after_the_configured_idle_time(client, config, redis, make_app):
    app = make_app({**config, "BOT_HISTORY_IDLE_SECONDS": "120"})
    Follower(flask_post(app.test_client()), ACCOUNT, OPENID).say("hi")
    assert recorded(redis, OPENID) and 110 < redis.ttl(keyspace.history(OPENID)) <= 120


@pytest.mark.parametrize(
    ("behaviour", "calls"),
    [({"status": 500}, 2), ({"status": 429}, 2), ({"latency": 2.5}, 1), ({"mode": "empty"}, 1), ({"mode": "drop"}, 1)],
)
def test_a_failed_model_call_leaves_history_and_allowance_unchanged(app, follower, upstream, redis, behaviour, calls):
    follower.say("记住这个")
    assert recorded(redis, OPENID)
    with app.app_context():
        used = services().conversation.used_today(OPENID)
    assert used > 0  # the answered turn was charged: the failed one must add nothing to it
    upstream.reset(**behaviour)
    reply = follower.say("这次会失败")
    assert reply.startswith("抱歉")
    assert upstream.calls == calls  # a 429/5xx is retried once; a timeout or junk is not
    assert history(redis) == ["记住这个", "回答：记住这个"]
    with app.app_context():
        assert services().conversation.used_today(OPENID) == used  # the failed turn cost nothing


def test_a_question_over_2000_characters_is_answered_politely(follower, upstream):
    assert "2000" in follower.say("长" * 2001)
    assert upstream.calls == 0


@pytest.mark.parametrize("keyword", ["key", " API Key ", "apikey", "密钥", "获取KEY"])
def test_the_keyword_issues_a_key_once_and_shows_it_after(follower, client, keyword, upstream):
    first = follower.say(keyword)
    key = re.search(r"sk-[A-Za-z0-9]{48}", first).group(0)
    assert "已生成" in first and "10000" in first
    assert "/api/v1/chat/completions" in first and "curl -XPOST" in first
    second = follower.say(keyword)
    assert key in second and "已生成" not in second
    response = client.post(
        "/api/v1/chat/completions", json={"api_secret_key": key, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.get_json()["code"] == 0
    assert upstream.calls == 1  # the keyword never reached the model


def test_custom_keywords(config, redis, make_app):
    app = make_app({**config, "BOT_KEY_KEYWORDS": "给我钥匙, token"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, OPENID)
    assert "sk-" in follower.say("TOKEN")
    assert "sk-" not in follower.say("key")


def test_subscribe_welcomes_and_unsubscribe_keeps_everything(follower, redis):
    assert "欢迎" in follower.event("subscribe")
    assert "欢迎" in follower.event("subscribe", EventKey="qrscene_123", Ticket="TICKET")
    key_reply = follower.say("key")
    assert follower.event("unsubscribe") is None
    assert follower.last_status == 200
    assert re.search(r"sk-\w+", key_reply).group(0) in follower.say("key")


def test_menu_clicks(follower, redis, upstream):
    assert "还没有" in follower.click("MY_USAGE")
    assert "sk-" in follower.click("GET_KEY")
    follower.say("聊一句")
    usage = follower.click("MY_USAGE")
    assert "10000" in usage
    assert "已清空" in follower.click("RESET_CHAT")
    assert history(redis) == []
    assert follower.event("VIEW", EventKey="https://example.com") is None
    assert follower.click("SOMETHING_ELSE") is None


@pytest.mark.parametrize(
    ("msg_type", "fields"),
    [
        ("image", {"PicUrl": "http://x/y.jpg", "MediaId": "m", "MsgId": 1}),
        ("voice", {"MediaId": "m", "Format": "amr", "MsgId": 2}),
        ("video", {"MediaId": "m", "ThumbMediaId": "t", "MsgId": 3}),
        ("location", {"Location_X": "23.1", "Location_Y": "113.3", "Scale": 20, "Label": "x", "MsgId": 4}),
        ("link", {"Title": "t", "Description": "d", "Url": "http://x", "MsgId": 5}),
        ("file", {"Title": "t", "FileKey": "k", "MsgId": 6}),
    ],
)
def test_other_message_types_get_a_polite_note(follower, upstream, msg_type, fields):
    assert "文字" in follower.deliver(msg_type, **fields)["Content"]
    assert upstream.calls == 0


def test_recognised_voice_is_a_question(follower, upstream):
    reply = follower.deliver("voice", MediaId="m", Format="amr", Recognition="今天天气如何", MsgId=7)
    assert reply["Content"] == "回答：今天天气如何"


def test_model_answers_cannot_break_the_reply_xml(follower, upstream):
    upstream.reset(answer=lambda m: "a]]><ToUserName>evil</ToUserName>\x00\x07b")
    assert follower.say("inject") == "a]]><ToUserName>evil</ToUserName>b"


def test_long_answers_come_in_parts_within_the_passive_limit(follower, upstream):
    answer = "".join(f"第{i}段" + "汉" * 40 + "\n" for i in range(100))
    upstream.reset(answer=lambda m: answer)
    parts = [follower.say("long")]
    while "继续" in parts[-1]:
        parts.append(follower.say("继续"))
    assert len(parts) > 2
    assert all(len(p.encode()) <= 2047 for p in parts)
    marker = "\n\n（未完，回复「继续」查看后续）"
    # Each part ends at a line's end and keeps it (the reader strips the very last one, as XML readers do).
    assert "".join(p.removesuffix(marker) for p in parts) == answer.rstrip("\n")
    assert follower.say("继续") == "没有待查看的回答啦，直接提问吧～"
    assert upstream.calls == 1


def test_redis_down_gives_followers_a_busy_message(config, upstream, make_app):
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, OPENID)
    assert follower.say("hi") == "服务繁忙，请稍后再试。"


def test_stats_count_messages(app, follower):
    follower.say("one")
    follower.say("two")
    with app.app_context():
        day = services().stats.today()
    assert day.messages == 2 and day.chat_tokens > 0


def test_a_follower_writing_too_fast_is_told_to_slow_down(config, make_app, upstream):
    app = make_app({**config, "BOT_RATE_OPENID_RPM": "2"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, OPENID)
    assert [follower.say("一"), follower.say("二")] == ["回答：一", "回答：二"]
    assert follower.say("三") == "发得太快啦，请稍等一会儿再发。"
    assert follower.say("key") == "发得太快啦，请稍等一会儿再发。"  # every message counts, not only questions
    assert follower.click("GET_KEY") is None  # an event over the rate is acknowledged silently
    assert upstream.calls == 2


def test_a_blocked_follower_is_told_and_the_model_is_not_asked(app, follower, upstream):
    with app.app_context():
        services().blocks.block_openid(OPENID)
    assert "暂停" in follower.say("你好")
    assert upstream.calls == 0


def test_the_daily_chat_allowance_is_enforced_politely(config, make_app, upstream, redis):
    app = make_app({**config, "BOT_DAILY_CHAT_TOKENS": "40"})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, OPENID)
    assert follower.say("你好") == "回答：你好"
    replies = [follower.say(f"第{i}个问题") for i in range(4)]
    assert replies[-1].startswith("今天的免费聊天额度已经用完啦")
    answered = 1 + sum(r.startswith("回答") for r in replies)
    assert upstream.calls == answered  # refused before the model was asked
    charged = sum(  # what each answered turn used: its dialogue (no system prompt) and its answer
        estimate_tokens(m["content"] for m in r.body["messages"] if m["role"] != "system")
        + estimate_tokens("回答：" + r.body["messages"][-1]["content"])
        for r in upstream.received
    )
    assert recorded(redis, OPENID)
    with app.app_context():
        assert services().conversation.used_today(OPENID) == charged
