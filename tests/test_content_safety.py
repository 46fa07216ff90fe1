"""Banned words on every door: a question holding one never reaches the model, and an answer holding
one reaches no reader, whole or streamed (tests/test_sensitive_words.py covers the matching itself)."""

from __future__ import annotations

import json
import logging
import random
import time

import pytest

from bot.chat.sse import iter_data
from bot.metrics import SENSITIVE_HITS
from bot.store import keyspace
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded
from tests.helpers import ask, ask_openai, key_info, one

FOLLOWER = "oFollower0000000000000000013"
WORD = "敏感词"


@pytest.fixture
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# test list\n敏感词\nABC\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def safe_config(config, words_file):
    return {**config, "BOT_SENSITIVE_WORDS_FILES": words_file}


@pytest.fixture
def client(safe_config, make_app):
    return make_app(safe_config).test_client()


@pytest.fixture
def blocking(safe_config, make_app):
    return make_app({**safe_config, "BOT_SENSITIVE_ANSWER_ACTION": "block"}).test_client()


def answering(text):
    return lambda messages: text


def events(response):
    assert response.status_code == 200
    return [d if d == "[DONE]" else json.loads(d) for d in iter_data([response.data])]


def streamed_text(chunks):
    return "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c != "[DONE]" and c["choices"])


def hits(direction, action):
    return SENSITIVE_HITS.labels(direction, action)._value.get()


# --- questions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["敏 感 词是什么", "说说敏*感*词", "敏、感、词", "ａｂｃ", "A.B.C"])
def test_the_spec_door_refuses_a_question_with_40006_and_never_asks_the_model(client, issue_key, upstream, question):
    key = issue_key()
    before = hits("question", "refuse")
    response = ask(client, key, question)
    assert response.status_code == 400
    assert response.get_json() == {"code": 40006, "msg": "问题包含本服务不接受的内容"}
    assert upstream.calls == 0 and hits("question", "refuse") == before + 1


def test_a_banned_word_in_an_earlier_turn_or_the_system_message_is_refused_too(client, issue_key, upstream):
    key = issue_key()
    dialogue = [{"role": "user", "content": "敏感词"}, {"role": "assistant", "content": "好"}, *one("hi")]
    assert ask(client, key, dialogue).get_json()["code"] == 40006
    system = [{"role": "system", "content": "always say A B C"}, *one("hi")]
    response = ask_openai(client, key, system)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "content_filter"
    assert upstream.calls == 0


def test_the_openai_door_refuses_with_400_content_filter_and_costs_nothing(app, client, issue_key, upstream):
    key = issue_key()
    response = ask_openai(client, key, "敏\u200b感词", stream=True)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "content_filter"
    assert upstream.calls == 0


def test_a_refused_question_costs_the_caller_nothing(safe_config, make_app, issue_key, upstream):
    app = make_app(safe_config)
    key = issue_key()
    ask(app.test_client(), key, "敏感词")
    assert key_info(app, key).balance == 10_000 and key_info(app, key).used == 0


# --- answers -----------------------------------------------------------------------------------


def test_an_answer_is_masked_on_both_doors_and_the_rest_delivered(client, issue_key, upstream):
    upstream.reset(answer=answering("这是敏 感 词，还有ＡＢＣ。"))
    key = issue_key()
    before = hits("answer", "mask")
    spec = ask(client, key, "hi").get_json()
    assert spec["choices"][0]["message"]["content"] == "这是＊ ＊ ＊，还有＊＊＊。"
    openai = ask_openai(client, key, "hi").get_json()
    assert openai["choices"][0]["message"]["content"] == "这是＊ ＊ ＊，还有＊＊＊。"
    assert openai["choices"][0]["finish_reason"] == "stop" and hits("answer", "mask") == before + 2


def test_block_withholds_the_answer_behind_a_notice_and_openai_says_content_filter(blocking, issue_key, upstream):
    upstream.reset(answer=answering("前面很正常，然后敏感词"))
    key = issue_key()
    spec = ask(blocking, key, "hi").get_json()
    assert spec["choices"][0]["message"]["content"] == texts.ANSWER_BLOCKED
    assert spec["choices"][0]["finish_reason"] == "content_filter"
    openai = ask_openai(blocking, key, "hi").get_json()["choices"][0]
    assert openai["message"]["content"] == "" and openai["finish_reason"] == "content_filter"


@pytest.mark.parametrize("piece_chars", [1, 2, 3, 4, 5])
def test_no_streamed_event_carries_the_word_wherever_the_pieces_cut_it(client, issue_key, upstream, piece_chars):
    upstream.reset(answer=answering("开头一段话，敏感词在中间，结尾"), piece_chars=piece_chars)
    key = issue_key()
    for response in (ask(client, key, "hi", stream=True), ask_openai(client, key, "hi", stream=True)):
        chunks = events(response)
        pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c != "[DONE]" and c["choices"]]
        assert "".join(pieces) == "开头一段话，＊＊＊在中间，结尾"
        assert not any(ch in piece for piece in pieces for ch in "敏感词")


def test_a_blocked_stream_stops_with_content_filter_having_shown_nothing_of_the_word(blocking, issue_key, upstream):
    # after the word the model goes on writing, a piece every 10 ms, so hanging up on it can be seen
    upstream.reset(
        answer=answering("一二三四五六七八九十敏感词" + "之后还有很多字" * 20), piece_chars=2, chunk_delay=0.01
    )
    key = issue_key()
    chunks = events(ask_openai(blocking, key, "hi", stream=True))
    shown = streamed_text(chunks)
    assert "敏" not in shown and "一二三四五六" in shown  # what came before the word was streamed
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"]][-1] == "content_filter"
    spec = events(ask(blocking, key, "hi", stream=True))
    assert streamed_text(spec).endswith(texts.ANSWER_BLOCKED) and "敏" not in streamed_text(spec)
    assert spec[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert upstream.wait_for_streams(2)[1].hung_up  # the model was stopped, not read to the end


# --- WeChat ------------------------------------------------------------------------------------


@pytest.fixture
def follower(client):
    return Follower(flask_post(client), ACCOUNT, FOLLOWER)


def test_a_follower_asking_a_banned_word_gets_a_fixed_text_no_turn_and_no_cost(follower, upstream, redis):
    reply = follower.say("请 告 诉 我 敏 感 词")
    assert reply == texts.QUESTION_REFUSED and "敏" not in reply
    assert upstream.calls == 0 and redis.llen(keyspace.history(FOLLOWER)) == 0
    assert follower.say("你好") == "回答：你好"  # the next question is answered, with no refused turn before it
    assert (
        upstream.received[0].body["messages"][-1]["content"] == "你好"
        and len(upstream.received[0].body["messages"]) == 2
    )


def test_a_followers_answer_is_masked_and_the_history_records_what_they_saw(follower, upstream, redis):
    upstream.reset(answer=answering("答案里有敏感词。"))
    assert follower.say("问") == "答案里有＊＊＊。"
    assert recorded(redis, FOLLOWER)
    assert redis.lrange(keyspace.history(FOLLOWER), 0, -1) == ["问", "答案里有＊＊＊。"]


def test_a_blocked_answer_shows_the_notice_and_the_history_records_it(blocking, upstream, redis):
    upstream.reset(answer=answering("答案里有敏感词。"))
    assert Follower(flask_post(blocking), ACCOUNT, FOLLOWER).say("问") == texts.ANSWER_BLOCKED
    assert recorded(redis, FOLLOWER)
    assert redis.lrange(keyspace.history(FOLLOWER), 0, -1) == ["问", texts.ANSWER_BLOCKED]


@pytest.mark.parametrize("piece_chars", [1, 2, 3])
def test_a_followers_streamed_answer_is_masked_wherever_the_pieces_cut_the_word(
    safe_config, make_app, upstream, redis, piece_chars
):
    upstream.reset(answer=answering("前文。敏感词在这里。"), piece_chars=piece_chars)
    follower = Follower(flask_post(make_app(safe_config).test_client()), ACCOUNT, FOLLOWER)
    assert follower.say("问") == "前文。＊＊＊在这里。"
    assert recorded(redis, FOLLOWER)
    assert redis.lrange(keyspace.history(FOLLOWER), 0, -1) == ["问", "前文。＊＊＊在这里。"]


def test_a_blocked_answer_ready_in_time_shows_nothing_of_what_came_before_the_word(blocking, upstream, redis):
    # The rest of the answer takes the model another 0.5 s to write: long enough to see it cut off.
    upstream.reset(answer=answering("前面很正常。然后是敏感词，之后还有很多。" * 3), piece_chars=2, chunk_delay=0.02)
    assert Follower(flask_post(blocking), ACCOUNT, FOLLOWER).say("问") == texts.ANSWER_BLOCKED
    assert recorded(redis, FOLLOWER)
    assert redis.lrange(keyspace.history(FOLLOWER), 0, -1) == ["问", texts.ANSWER_BLOCKED]
    assert upstream.wait_for_streams(1)[0].hung_up  # the model was stopped at the word


def read_until_complete(follower: Follower, first: str | None) -> list[str]:
    """The replies a follower reads: the first, then 继续 until one says the answer is complete."""
    replies = [first or ""]
    ends = (texts.COMPLETE.strip(), texts.CUT_OFF.strip())  # a reply of a note alone reads without its blank lines
    while not replies[-1].endswith(ends) and len(replies) < 40:
        reply = follower.say("继续")
        replies.append("" if reply == texts.WAITING else reply)
    return replies


@pytest.mark.slow
@pytest.mark.parametrize("action", ["mask", "block"])
def test_an_answer_shown_while_written_is_screened_before_any_part_of_it_is_shown(
    safe_config, make_app, upstream, redis, action
):
    settings = {"BOT_WECHAT_TIMEOUT": "1", "BOT_WECHAT_WINDOW": "0.5", "BOT_WECHAT_PARTIAL": "first"}
    app = make_app({**safe_config, **settings, "BOT_SENSITIVE_ANSWER_ACTION": action})
    follower = Follower(flask_post(app.test_client()), ACCOUNT, FOLLOWER)
    # The first sentence is written within the first window (0.5 s), the word after it, split in pieces.
    upstream.reset(answer=answering("第一句话。第二句有敏感词。第三句。"), piece_chars=2, chunk_delay=0.1)
    first = follower.say("问", msg_id=77)
    assert first == "第一句话。" + texts.STILL_WRITING
    replies = read_until_complete(follower, first)
    notes = (texts.STILL_WRITING, texts.COMPLETE, texts.COMPLETE.strip())
    read = "".join(next((r.removesuffix(n) for n in notes if r.endswith(n)), r) for r in replies)
    shown = "第一句话。第二句有＊＊＊。第三句。" if action == "mask" else "第一句话。" + texts.ANSWER_BLOCKED
    assert read == shown and "敏" not in "".join(replies)
    assert recorded(redis, FOLLOWER)
    assert redis.lrange(keyspace.history(FOLLOWER), 0, -1) == ["问", shown]


# --- visibility --------------------------------------------------------------------------------


def test_a_hit_is_logged_without_its_text_unless_content_logging_is_on(safe_config, make_app, issue_key, caplog):
    caplog.set_level(logging.INFO, logger="bot.safety.guard")
    key = issue_key()
    ask(make_app(safe_config).test_client(), key, "我要问敏感词")
    line = next(r.getMessage() for r in caplog.records if r.name == "bot.safety.guard" and "content " in r.getMessage())
    assert "question refuse" in line and "door=api who=key#" in line and "matches=1" in line
    assert "敏感词" not in line
    caplog.clear()
    ask(make_app({**safe_config, "BOT_LOG_CONTENT": "1"}).test_client(), key, "我要问敏感词")
    assert any("我要问敏感词" in r.getMessage() for r in caplog.records if r.name == "bot.safety.guard")


def counted(client, direction, action):
    """The hits /metrics shows for a direction and an action (0 before the first)."""
    line = f'xiaoyi_sensitive_hits_total{{action="{action}",direction="{direction}"}} '
    found = [row for row in client.get("/metrics").data.decode().splitlines() if row.startswith(line)]
    return float(found[0][len(line) :]) if found else 0.0


def test_metrics_count_hits_by_direction_and_action(client, blocking, issue_key, upstream):
    key, before = issue_key(), {(d, a): counted(client, d, a) for d, a in HIT_KINDS}
    ask(client, key, "敏感词")
    upstream.reset(answer=answering("有敏感词"))
    ask(client, key, "hi")
    ask(blocking, key, "hi")
    ask(blocking, key, "hi")
    after = {(d, a): counted(client, d, a) - before[d, a] for d, a in HIT_KINDS}
    assert after == {("question", "refuse"): 1, ("answer", "mask"): 1, ("answer", "block"): 2}


HIT_KINDS = [("question", "refuse"), ("answer", "mask"), ("answer", "block")]


def test_the_openapi_document_names_the_refusal_on_both_doors(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    refused = {path: paths[path]["post"]["responses"]["400"]["description"] for path in paths if "chat" in path}
    assert "40006 问题包含本服务不接受的内容" in refused["/api/v1/chat/completions"]
    assert "invalid_request_error/content_filter" in refused["/v1/chat/completions"]


def test_a_long_refused_request_costs_about_what_a_check_costs(client, issue_key, upstream):
    """A caller's 250 KB of text with a banned word at its end is refused at the check's cost (a scan),
    not at the per-character cost of locating the word in it, which only a shown answer needs."""
    rng = random.Random(13)
    filler = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(80_000))  # 240 KB as UTF-8
    earlier = [{"role": "user", "content": filler + WORD}, {"role": "assistant", "content": "好"}]
    key, body = issue_key(), [*earlier, *one("hi")]
    started = time.perf_counter()
    response = ask_openai(client, key, body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "content_filter"
    assert time.perf_counter() - started < 0.05  # locating it took 0.1-0.2 s, all of it holding the worker
