"""`stream: true` on the spec's door: events as the model writes them, usage in the last one."""

from __future__ import annotations

import json

from bot.chat.sse import iter_data
from bot.chat.usage import estimate_tokens
from bot.services import services
from tests.helpers import ask

QUESTION = "一二三四五六七八九十"


def events(response):
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    return [json.loads(data) for data in iter_data([response.data])]


def spent(app, key):
    with app.app_context():
        store = services().keys
        info = store.info(store.fingerprint(key))
    assert info.reserved == 0
    return 10_000 - info.balance


def test_events_carry_the_answer_in_pieces_and_the_last_the_usage(app, client, issue_key):
    key = issue_key()
    received = events(ask(client, key, QUESTION, stream=True))
    assert all(e["code"] == 0 and e["msg"] == "" for e in received) and len({e["id"] for e in received}) == 1
    assert received[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in received)
    # 4 pieces of 4 characters, the tail the banned-word filter held back (bot/safety/stream.py), the last
    assert text == "回答：" + QUESTION and len(received) == 6
    last = received[-1]
    assert last["choices"] == [{"delta": {}, "index": 0, "finish_reason": "stop"}]
    usage = {"prompt_tokens": estimate_tokens(QUESTION), "completion_tokens": estimate_tokens(text)}
    assert last["usage"] == {**usage, "total_tokens": sum(usage.values())}
    assert all("usage" not in e for e in received[:-1])
    assert spent(app, key) == last["usage"]["total_tokens"]


def test_a_failure_before_the_first_piece_is_the_usual_json_error_and_free(app, client, issue_key, upstream):
    key = issue_key()
    upstream.reset(status=500)
    response = ask(client, key, QUESTION, stream=True)
    assert (response.status_code, response.mimetype, response.get_json()["code"]) == (502, "application/json", 50201)
    assert spent(app, key) == 0


def test_a_failure_midway_is_a_last_event_with_its_code_and_the_usage_billed(app, client, issue_key, upstream):
    key = issue_key()
    upstream.reset(stream_mode="error", break_after=1)
    received = events(ask(client, key, QUESTION, stream=True))
    last = received[-1]
    assert (last["code"], last["msg"]) == (50201, "上游模型调用失败：the upstream reported an error mid-answer")
    assert "choices" not in last
    assert last["usage"]["completion_tokens"] == estimate_tokens("回答：一")
    assert spent(app, key) == last["usage"]["total_tokens"]
