"""Long answers shown while the model writes them, for real: two gunicorn instances (2 gevent workers
each) on one Redis, WeChat's deliveries of a message alternating between them, and a model that
streams its answer, scaled 5 times faster than life (WeChat's deadline here is 1 s): its first text
after 0.7 s (no whole sentence by the first window), then 150 characters a second."""

from __future__ import annotations

import subprocess
import time

import pytest

from bot.ids import today
from bot.store import keyspace
from bot.wechat import texts
from bot.wechat.parts import ENDS
from tests.conftest import ACCOUNT
from tests.procs import free_port, service_env, start_gunicorn, stop, wait_for
from tests.wechat_servers import WeChatServers, body

pytestmark = pytest.mark.slow

SCALE = 0.2  # WeChat's 5 s deadline becomes 1 s
SENTENCES = [f"这是第{i:02d}句，它说了一点事情。" for i in range(30)]  # 15 characters each
ANSWER = "".join(SENTENCES)  # 450 characters: 3 s of writing, which ends after the third delivery's window
STORY = "讲个长故事"  # the question the long ANSWER is written for; anything else is answered 短答。


def answer_to(messages) -> str:
    return ANSWER if messages[-1]["content"] == STORY else "短答。"


STREAM = {"latency": 0.7, "piece_chars": 4, "chunk_delay": 0.027, "answer": answer_to}


def instances(redis_server, upstream_server, wechat_api_server, **settings):
    env = service_env(
        redis_server.url, upstream_server.url, OPENAI_TIMEOUT="30", WECHAT_SECRET="wechat-app-secret",
        WECHAT_API_BASE_URL=wechat_api_server.url, BOT_WECHAT_TIMEOUT=str(5 * SCALE), BOT_WECHAT_WINDOW="0.75",
        **settings,
    )  # fmt: skip
    ports = [free_port(), free_port()]
    return [start_gunicorn(env, port) for port in ports], [f"http://127.0.0.1:{port}" for port in ports]


@pytest.fixture(scope="module", params=["last", "first", "customer_service"])
def service(request, redis_server, upstream_server, wechat_api_server):
    """Two instances, as two hosts behind a load balancer: passive mode with each partial setting, or
    customer-service mode."""
    mode = "customer_service" if request.param == "customer_service" else "passive"
    partial = "last" if mode == "customer_service" else request.param
    processes, urls = instances(
        redis_server, upstream_server, wechat_api_server, WECHAT_REPLY_MODE=mode, BOT_WECHAT_PARTIAL=partial
    )
    yield request.param, urls
    for process in processes:
        stop(process)


def openid(name: str) -> str:
    return f"o{name:0>27}"


def text_of(replies: list[str]) -> str:
    """The answer the follower has read: the replies without their notes (and without a 继续 that found
    nothing new yet)."""
    return "".join(body(r)[0] for r in replies if r != texts.WAITING)


def read_all(urls: list[str], who: str, first: str, msg_id: int) -> list[str]:
    """继续 after `first` until the answer says it is complete or cut off; deliveries alternate hosts."""
    replies = [first]
    for i in range(60):
        if body(replies[-1])[1] in (texts.COMPLETE, texts.CUT_OFF):
            return replies
        wechat = WeChatServers(urls[::-1] if i % 2 == 0 else urls, ACCOUNT, timeout=5 * SCALE)
        outcome = wechat.say(who, "继续", msg_id + i)
        assert outcome.attempts == ["answered"] and outcome.reply_took < 5 * SCALE
        replies.append(outcome.reply)
    raise AssertionError(f"the answer did not end: {replies[-3:]}")


def history(redis, who: str) -> list[str]:
    return redis.lrange(keyspace.history(who), 0, -1)


def test_the_follower_reads_the_answer_as_it_is_written(service, redis, upstream, wechat_api):
    setting, urls = service
    upstream.reset(**STREAM)
    who = openid(f"stream{setting}")
    outcome = WeChatServers(urls, ACCOUNT, timeout=5 * SCALE).say(who, STORY, 9700)
    assert outcome.reply_took < 5 * SCALE
    if setting == "customer_service":
        # `success` when the first window closes; then stretches are pushed while the model writes.
        assert outcome.attempts == ["answered"] and outcome.reply == ""
        assert wait_for(lambda: pushed(wechat_api, who))
        assert history(redis, who) == []  # the first stretch came while the answer was still being written
        assert wait_for(lambda: pushed(wechat_api, who)[-1:] and pushed(wechat_api, who)[-1].endswith(texts.COMPLETE))
        parts = pushed(wechat_api, who)
        assert 2 <= len(parts) <= 5
        assert all(len(p) >= 300 and p[-1] in ENDS for p in parts[:-1])  # whole stretches of sentences
    else:
        # `last`: the third delivery (this host again). `first`: no whole sentence by the first window;
        # the second delivery, on the other host, shows what the first host checkpointed, unless that
        # checkpoint held no whole sentence yet on a loaded machine: then the third does.
        if setting == "last":
            assert outcome.attempts == ["timeout", "timeout", "answered"]
        else:
            assert outcome.attempts in (["timeout", "answered"], ["timeout", "timeout", "answered"])
        shown, note = body(outcome.reply)
        assert note == texts.STILL_WRITING and shown and shown[-1] in ENDS and ANSWER.startswith(shown)
        parts = read_all(urls, who, outcome.reply, 9710)
    assert text_of(parts) == ANSWER  # nothing lost, repeated or reordered
    assert wait_for(lambda: history(redis, who) == [STORY, ANSWER])
    assert upstream.calls_about(STORY) == 1


def pushed(wechat_api, who: str) -> list[str]:
    calls = wechat_api.calls_to("/cgi-bin/message/custom/send")
    return [c.body["text"]["content"] for c in calls if c.body["touser"] == who]


@pytest.mark.parametrize("service", ["last"], indirect=True)
def test_an_answer_cut_off_halfway_is_shown_and_recorded_as_written(service, redis, upstream):
    urls = service[1]
    upstream.reset(**STREAM, stream_mode="cut", break_after=80)  # 320 characters, then the connection ends
    who = openid("cutoff")
    outcome = WeChatServers(urls, ACCOUNT, timeout=5 * SCALE).say(who, STORY, 9800)
    assert body(outcome.reply)[1] == texts.STILL_WRITING
    parts = read_all(urls, who, outcome.reply, 9810)
    assert body(parts[-1])[1] == texts.CUT_OFF
    written = text_of(parts)
    assert written == ANSWER[:320]
    assert history(redis, who) == [STORY, written]  # the turn records what the follower was shown
    assert int(redis.hget(keyspace.follower_day(who, today()), "used")) > 0  # charged for the text produced


@pytest.mark.parametrize("service", ["last"], indirect=True)
def test_a_new_question_while_the_answer_is_written_gets_the_owed_text_first(service, redis, upstream):
    urls = service[1]
    upstream.reset(**STREAM)
    who = openid("queued")
    wechat = WeChatServers(urls, ACCOUNT, timeout=5 * SCALE)
    first = wechat.say(who, STORY, 9900).reply
    queued = wechat.say(who, "还有一个问题", 9901)
    assert queued.attempts == ["answered"] and queued.reply.endswith(texts.QUEUED_NOTE)
    more = queued.reply.removesuffix(texts.QUEUED_NOTE)  # what was written since, or that it is still written
    assert more == texts.WAITING or body(more)[1] == texts.STILL_WRITING
    parts = read_all(urls, who, more, 9910)
    assert text_of([first, *parts]) == ANSWER
    # The new question is answered in turn, after the first answer, and owed to the next 继续.
    assert wait_for(lambda: history(redis, who) == [STORY, ANSWER, "还有一个问题", "短答。"])
    assert wechat.say(who, "继续", 9990).reply == "短答。"


@pytest.fixture
def short_lease(redis_server, upstream_server, wechat_api_server):
    """Two instances whose claims' lease is 2 s: a worker that stops checkpointing is taken over soon."""
    processes, urls = instances(redis_server, upstream_server, wechat_api_server, BOT_LEASE_SECONDS="2")
    yield processes, urls
    for process in processes:
        stop(process)


def kill_workers(process: subprocess.Popen) -> None:
    """The instance's workers die (killed: no cleanup, no drain); its master starts new ones."""
    subprocess.run(["pkill", "-KILL", "-P", str(process.pid)], check=True)


def test_when_the_writing_worker_dies_the_follower_never_reads_the_same_text_twice(short_lease, redis, upstream):
    (writer, _), urls = short_lease
    upstream.reset(**{**STREAM, "chunk_delay": 0.08})  # 9 s of writing: the worker dies long before the end
    who = openid("dies")
    outcome = WeChatServers(urls[:1], ACCOUNT, timeout=5 * SCALE).say(who, STORY, 9950)
    shown = body(outcome.reply)[0]
    assert shown and body(outcome.reply)[1] == texts.STILL_WRITING
    msg = keyspace.message(who, "9950")
    assert wait_for(lambda: len(redis.hget(msg, "text") or "") > len(shown), timeout=5)  # checkpointed since
    kill_workers(writer)
    assert wait_for(lambda: int(redis.hget(msg, "lease")) < time.time() * 1000, timeout=5)  # no one renews it
    parts = read_all(urls[1:], who, outcome.reply, 9960)
    assert body(parts[-1])[1] == texts.CUT_OFF  # what was written before the host died, then the note
    written = "".join(body(p)[0] for p in parts)
    assert ANSWER.startswith(written) and len(written) > len(shown)
    assert history(redis, who) == [STORY, written]
    assert upstream.calls_about(STORY) == 1  # not asked again: a new answer would repeat what was read
