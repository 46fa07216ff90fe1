"""Two model upstreams: when the primary fails before its first token, every door is answered by the
backup within the same request, charged once; never after a streamed token, never on a 4xx about the
request; a primary that keeps failing is skipped for a cool-down, then tried again with one request."""

from __future__ import annotations

import json
import time

import openai
import pytest

from bot.chat.sse import iter_data
from bot.chat.usage import estimate_tokens
from bot.services import services
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.doubles.upstream import refusing_url
from tests.follower import Follower, flask_post, recorded
from tests.helpers import OPENAI_URL, ask, ask_openai, bearer, key_info, one
from tests.procs import wait_for
from tests.servers import werkzeug_server

PRIMARY_KEY = "sk-primary-" + "p" * 24
BACKUP_KEY = "sk-backup-" + "b" * 24


def two_upstreams(config, primary_url: str, backup_url: str, primary_timeout: float = 0.4, **settings) -> dict:
    """The app's settings with a primary and a backup (its key from another variable)."""
    entries = [
        {"name": "primary", "base_url": primary_url, "api_key": PRIMARY_KEY, "timeout": primary_timeout},
        {"name": "backup", "base_url": backup_url, "api_key_env": "BACKUP_KEY", "timeout": 2},
    ]
    config = {k: v for k, v in config.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    return {**config, "BOT_UPSTREAMS": json.dumps(entries), "BACKUP_KEY": BACKUP_KEY, **settings}


def spent(app, key: str) -> int:
    info = key_info(app, key)
    assert info.reserved == 0
    return 10_000 - info.balance


def charge_of(question: str, answer: str) -> int:
    """What one answer costs: the question and the answer, as the chat core counts them."""
    return estimate_tokens(["", question]) + estimate_tokens(answer)


def streamed_text(response) -> str:
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = [json.loads(d) for d in iter_data([response.data]) if d.strip() != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


FAILURES = {
    "refused": {},
    "http_500": {"status": 500},
    "http_429": {"status": 429},
    "http_401": {"status": 401},  # our key for it is wrong: its problem, not the request's
    "malformed": {"mode": "malformed"},
    "hangs": {"latency": 1.5},  # past its 0.4 s timeout
}


@pytest.mark.parametrize("failure", FAILURES)
def test_every_door_is_answered_by_the_backup_and_charged_once(config, make_app, upstream, backup, issue_key, failure):
    upstream.reset(**FAILURES[failure])
    primary = refusing_url() if failure == "refused" else upstream.url
    app = make_app(two_upstreams(config, primary, backup.url, BOT_UPSTREAM_FAILURES="100"))
    client, key = app.test_client(), issue_key()

    answer = ask(client, key, "q1").get_json()
    assert answer["choices"][0]["message"]["content"] == "备用：q1"
    assert spent(app, key) == answer["usage"]["total_tokens"] == charge_of("q1", "备用：q1")
    assert streamed_text(ask(client, key, "q2", stream=True)) == "备用：q2"
    answer = ask_openai(client, key, "q3").get_json()
    assert answer["choices"][0]["message"]["content"] == "备用：q3"
    assert streamed_text(ask_openai(client, key, "q4", stream=True)) == "备用：q4"
    assert spent(app, key) == sum(charge_of(q, "备用：" + q) for q in ("q1", "q2", "q3", "q4"))

    follower = Follower(flask_post(client), ACCOUNT, "oFailover000000000000000001")
    assert follower.say("q5") == "备用：q5"
    assert recorded(app.extensions["bot"].redis, follower.openid)
    with app.app_context():
        assert services().conversation.used_today(follower.openid) == charge_of("q5", "备用：q5")
    assert backup.calls == 5
    assert upstream.calls == (0 if failure == "refused" else 5)  # each request tried it once, then moved on
    assert all(r.headers["Authorization"] == f"Bearer {BACKUP_KEY}" for r in backup.received)


def test_a_primary_that_keeps_the_stream_alive_but_writes_no_text_is_failed_over_at_its_timeout(
    config, make_app, upstream, backup, issue_key
):
    upstream.reset(keepalive=30, chunk_delay=0.1)  # a comment every 0.1 s for 3 s: each read is well in time
    app = make_app(two_upstreams(config, upstream.url, backup.url, BOT_UPSTREAM_FAILURES="100"))
    client, key = app.test_client(), issue_key()
    started = time.monotonic()
    assert streamed_text(ask(client, key, "q1", stream=True)) == "备用：q1"
    assert time.monotonic() - started < 1.5  # the primary's 0.4 s, not its 3 s of comments
    assert Follower(flask_post(client), ACCOUNT, "oFailover000000000000000003").say("q2") == "备用：q2"
    assert upstream.calls == backup.calls == 2
    assert spent(app, key) == charge_of("q1", "备用：q1")


def test_a_primary_whose_first_text_is_due_mid_read_is_failed_over_when_it_is_due_not_a_read_later(
    config, make_app, upstream, backup, issue_key
):
    upstream.reset(keepalive=1, chunk_delay=0.9, piece_chars=100)  # a comment at 0.9 s, its text at 1.8 s
    app = make_app(two_upstreams(config, upstream.url, backup.url, primary_timeout=1.0))
    client, key = app.test_client(), issue_key()
    started = time.monotonic()
    assert streamed_text(ask(client, key, "q", stream=True)) == "备用：q"
    assert time.monotonic() - started < 1.6  # its 1 s, not the 1.8 s its next read would have waited


def test_a_model_reasoning_longer_than_its_timeout_before_its_first_word_is_not_failed_over(
    config, make_app, upstream, backup, issue_key
):
    # 0.8 s of reasoning (each delta well within a read) before the answer; the primary's timeout is 0.4 s.
    upstream.reset(reasoning=["想一想"] * 8, reasoning_delay=0.1, answer=lambda m: "想好了。")
    app = make_app(two_upstreams(config, upstream.url, backup.url))
    client, key = app.test_client(), issue_key()
    assert streamed_text(ask(client, key, "q", stream=True)) == "想好了。"
    assert Follower(flask_post(client), ACCOUNT, "oFailover000000000000000004").say("q2") == "想好了。"
    assert (upstream.calls, backup.calls) == (2, 0)


def test_a_4xx_about_the_request_is_not_sent_to_the_backup_and_costs_nothing(
    config, make_app, upstream, backup, issue_key
):
    upstream.reset(status=400)
    app = make_app(two_upstreams(config, upstream.url, backup.url))
    client, key = app.test_client(), issue_key()
    response = ask_openai(client, key, "q")
    assert response.status_code == 502 and response.get_json()["error"]["code"] == "upstream_error"
    assert "HTTP 400" in response.get_json()["error"]["message"]
    assert (upstream.calls, backup.calls, spent(app, key)) == (1, 0, 0)


@pytest.mark.parametrize("door", ["spec", "openai"])
def test_a_primary_that_dies_after_three_tokens_is_a_mid_stream_failure_not_a_spliced_answer(
    config, make_app, upstream, backup, issue_key, door
):
    upstream.reset(stream_mode="cut", break_after=3, piece_chars=1)  # 回, 答, ： then the body ends
    app = make_app(two_upstreams(config, upstream.url, backup.url))
    client, key = app.test_client(), issue_key()
    response = (ask if door == "spec" else ask_openai)(client, key, "一二三四五", stream=True)
    events = [json.loads(d) for d in iter_data([response.data]) if d.strip() != "[DONE]"]
    if door == "spec":
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
        assert (events[-1]["code"], events[-1]["msg"]) == (50201, "上游模型调用失败：the answer was cut off")
    else:
        text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        assert events[-1]["error"]["code"] == "upstream_error" and "cut off" in events[-1]["error"]["message"]
    assert text == "回答："  # the three tokens it sent, and nothing from the backup after them
    assert backup.calls == 0
    assert spent(app, key) == charge_of("一二三四五", "回答：")


def test_on_wechat_a_primary_that_dies_after_three_tokens_gives_the_written_text_cut_off_not_a_spliced_answer(
    config, make_app, upstream, backup
):
    upstream.reset(stream_mode="cut", break_after=3, piece_chars=1)  # 回, 答, ： then the body ends
    app = make_app(two_upstreams(config, upstream.url, backup.url))
    follower = Follower(flask_post(app.test_client()), ACCOUNT, "oFailover000000000000000002")
    assert follower.say("一二三四五") == "回答：" + texts.CUT_OFF  # what it wrote, said to be cut off
    assert backup.calls == 0
    assert recorded(app.extensions["bot"].redis, follower.openid)
    with app.app_context():  # charged once, for what it wrote
        assert services().conversation.used_today(follower.openid) == charge_of("一二三四五", "回答：")


def test_a_failing_primary_is_skipped_for_its_cool_down_then_one_request_finds_it_recovered(
    config, make_app, upstream, backup, issue_key
):
    upstream.reset(status=503)
    settings = {"BOT_UPSTREAM_FAILURES": "2", "BOT_UPSTREAM_COOLDOWN": "0.5"}
    app = make_app(two_upstreams(config, upstream.url, backup.url, **settings))
    client, key = app.test_client(), issue_key()
    for question in ("a", "b", "c"):
        assert ask(client, key, question).get_json()["choices"][0]["message"]["content"] == "备用：" + question
    assert upstream.calls == 2  # two failures in a row: the third request went straight to the backup
    assert state_of(app, "primary") == "down"

    upstream.reset()  # it recovers
    assert wait_for(lambda: state_of(app, "primary") == "trial", timeout=3)  # its cool-down is over
    assert ask(client, key, "d").get_json()["choices"][0]["message"]["content"] == "回答：d"
    assert state_of(app, "primary") == "up"
    assert ask(client, key, "e").get_json()["choices"][0]["message"]["content"] == "回答：e"
    assert (upstream.calls, backup.calls) == (2, 3)


def test_a_trial_that_fails_sends_it_back_to_its_cool_down(config, make_app, upstream, backup, issue_key):
    upstream.reset(status=500)
    settings = {"BOT_UPSTREAM_FAILURES": "1", "BOT_UPSTREAM_COOLDOWN": "0.3"}
    app = make_app(two_upstreams(config, upstream.url, backup.url, **settings))
    client, key = app.test_client(), issue_key()
    ask(client, key, "a")
    assert wait_for(lambda: state_of(app, "primary") == "trial", timeout=3)
    assert ask(client, key, "b").get_json()["choices"][0]["message"]["content"] == "备用：b"
    assert state_of(app, "primary") == "down" and upstream.calls == 2  # one trial request, then skipped again
    ask(client, key, "c")
    assert upstream.calls == 2


def test_when_every_upstream_is_cooling_down_they_are_still_tried_rather_than_refused_untried(
    config, make_app, upstream, backup, issue_key
):
    upstream.reset(status=500)
    backup.reset(status=503)
    settings = {"BOT_UPSTREAM_FAILURES": "1", "BOT_UPSTREAM_COOLDOWN": "600"}
    app = make_app(two_upstreams(config, upstream.url, backup.url, **settings))
    client, key = app.test_client(), issue_key()
    assert ask(client, key, "a").status_code == 502
    assert (state_of(app, "primary"), state_of(app, "backup")) == ("down", "down")
    backup.reset(answer=lambda messages: "备用：" + messages[-1]["content"])  # recovered, its cool-down far off
    assert ask(client, key, "b").get_json()["choices"][0]["message"]["content"] == "备用：b"
    assert (upstream.calls, backup.calls) == (2, 1) and state_of(app, "backup") == "up"
    assert spent(app, key) == charge_of("b", "备用：b")


def state_of(app, name: str) -> str:
    response = app.test_client().get("/healthz?upstreams=1")
    return {u["name"]: u["state"] for u in response.get_json()["upstreams"]}[name]


def test_a_comma_separated_base_url_is_tried_in_order_with_the_shared_key(config, make_app, backup, issue_key):
    app = make_app({**config, "OPENAI_BASE_URL": f"{refusing_url()}, {backup.url}"})
    client, key = app.test_client(), issue_key()
    assert ask(client, key, "q").get_json()["choices"][0]["message"]["content"] == "备用：q"
    assert backup.received[0].headers["Authorization"] == "Bearer sk-upstream-test"
    assert backup.received[0].body["model"] == "test-model"


def test_the_request_log_line_names_the_upstream_that_answered_and_those_that_failed(
    config, make_app, upstream, backup, issue_key, caplog
):
    upstream.reset(status=502)
    app = make_app(two_upstreams(config, upstream.url, backup.url))
    client, key = app.test_client(), issue_key()
    with caplog.at_level("INFO", logger="bot.request"):
        ask(client, key, "q")
        assert streamed_text(ask_openai(client, key, "q", stream=True)) == "备用：q"
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.request"]
    assert len(lines) == 2
    assert all(line.endswith(" upstream=backup failed=primary:http_502") for line in lines)


def test_metrics_count_calls_failures_failovers_and_latency_per_upstream(config, make_app, upstream, backup, issue_key):
    app = make_app(two_upstreams(config, refusing_url(), backup.url))
    client, key = app.test_client(), issue_key()

    def sample(name: str, labels: str) -> float:
        for line in client.get("/metrics").get_data(as_text=True).splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.split()[-1])
        return 0.0

    names = {
        ("xiaoyi_upstream_calls_total", 'upstream="primary"'),
        ("xiaoyi_upstream_calls_total", 'upstream="backup"'),
        ("xiaoyi_upstream_failures_total", 'reason="unreachable",upstream="primary"'),
        ("xiaoyi_upstream_failovers_total", 'upstream="primary"'),
        ("xiaoyi_upstream_attempt_seconds_count", 'upstream="backup"'),
    }
    before = {n: sample(*n) for n in names}
    ask(client, key, "q")
    assert {n: sample(*n) - before[n] for n in names} == dict.fromkeys(names, 1.0)
    assert sample("xiaoyi_upstream_failures_total", 'reason="unreachable",upstream="backup"') == 0


def test_a_model_picks_the_upstreams_that_list_it(config, make_app, upstream, backup, issue_key):
    entries = [
        {"name": "primary", "base_url": upstream.url, "models": ["fast", "shared"]},
        {"name": "backup", "base_url": backup.url, "models": ["smart", "shared"], "model": "big-model"},
    ]
    app = make_app({**config, "BOT_UPSTREAMS": json.dumps(entries)})
    client, key = app.test_client(), issue_key()
    models = client.get("/v1/models", headers=bearer(key)).get_json()
    assert [m["id"] for m in models["data"]] == ["fast", "shared", "smart"]
    assert ask_openai(client, key, "q", model="smart").get_json()["choices"][0]["message"]["content"] == "备用：q"
    assert backup.received[0].body["model"] == "big-model"  # the upstream is sent its own model name
    answer = ask_openai(client, key, "q", model="fast").get_json()
    assert answer["choices"][0]["message"]["content"] == "回答：q" and answer["model"] == "fast"
    upstream.reset(status=500)
    assert ask_openai(client, key, "q", model="shared").get_json()["choices"][0]["message"]["content"] == "备用：q"
    response = ask_openai(client, key, "q", model="fast")  # its route has no other upstream
    assert response.status_code == 502 and backup.calls == 2
    # The spec door and WeChat take the default route: every upstream.
    assert ask(client, key, "q").get_json()["choices"][0]["message"]["content"] == "备用：q"


def test_an_unknown_model_is_404_model_not_found_as_openai_answers_and_costs_nothing(
    config, make_app, upstream, issue_key
):
    entries = [{"name": "primary", "base_url": upstream.url, "models": ["fast"]}]
    app = make_app({**config, "BOT_UPSTREAMS": json.dumps(entries)})
    client, key = app.test_client(), issue_key()
    for stream in (False, True):
        response = ask_openai(client, key, "q", model="gpt-5", stream=stream)
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "model_not_found", None)
        assert "'gpt-5'" in error["message"]
    assert client.get("/v1/models/gpt-5", headers=bearer(key)).get_json()["error"]["code"] == "model_not_found"
    assert upstream.calls == 0 and spent(app, key) == 0
    unknown_key = client.post(OPENAI_URL, json={"model": "gpt-5", "messages": [{"role": "user", "content": "q"}]},
                              headers=bearer("sk-" + "0" * 48))  # fmt: skip
    assert unknown_key.status_code == 401  # who asks is settled before what they ask for


def test_an_unknown_model_is_refused_before_the_keys_rate_limit_counts_it(config, make_app, upstream, issue_key):
    entries = [{"name": "primary", "base_url": upstream.url, "models": ["fast"]}]
    app = make_app({**config, "BOT_UPSTREAMS": json.dumps(entries), "BOT_RATE_KEY_RPM": "2"})
    client, key = app.test_client(), issue_key()
    for stream in (False, True, False):  # a typo, retried: none of them is a request the key made
        assert ask_openai(client, key, "q", model="fsat", stream=stream).status_code == 404
    assert key_info(app, key).used == 0
    for _ in range(2):  # the key's two requests a minute are all still there
        assert ask_openai(client, key, "q", model="fast").get_json()["choices"][0]["message"]["content"] == "回答：q"
    assert ask_openai(client, key, "q", model="fast").status_code == 429
    assert upstream.calls == 2


def test_a_request_that_names_no_model_takes_the_default_route_when_upstreams_list_names(
    config, make_app, upstream, backup, issue_key
):
    entries = [  # OPENAI_MODEL (test-model) is listed by neither
        {"name": "primary", "base_url": upstream.url, "models": ["fast"]},
        {"name": "backup", "base_url": backup.url},
    ]
    app = make_app({**config, "BOT_UPSTREAMS": json.dumps(entries)})
    client, key = app.test_client(), issue_key()
    upstream.reset(status=500)
    unnamed = client.post(OPENAI_URL, json={"messages": one("q")}, headers=bearer(key))
    assert unnamed.status_code == 200 and unnamed.get_json()["choices"][0]["message"]["content"] == "备用：q"
    assert unnamed.get_json()["model"] == "test-model"
    assert ask_openai(client, key, "q", model="test-model").status_code == 404  # named, and served by none


def test_readyz_stays_about_this_service_when_every_upstream_is_down(config, make_app):
    app = make_app({**config, "OPENAI_BASE_URL": f"{refusing_url()},{refusing_url()}"})
    assert app.test_client().get("/readyz").status_code == 200


def test_the_sdk_lists_and_picks_models_and_raises_not_found_for_an_unknown_one(
    config, make_app, upstream, backup, issue_key
):
    entries = [
        {"name": "primary", "base_url": upstream.url, "models": ["fast"]},
        {"name": "backup", "base_url": backup.url, "models": ["smart"]},
    ]
    app = make_app({**config, "BOT_UPSTREAMS": json.dumps(entries)})
    with werkzeug_server(app) as url:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key=issue_key(), max_retries=0)
        assert [m.id for m in sdk.models.list()] == ["fast", "smart"]
        answer = sdk.chat.completions.create(model="smart", messages=one("q"))
        assert (answer.model, answer.choices[0].message.content) == ("smart", "备用：q")
        with pytest.raises(openai.NotFoundError) as error:
            sdk.chat.completions.create(model="gpt-5", messages=one("q"))
    assert error.value.status_code == 404 and error.value.code == "model_not_found"
