"""What the operator sees of the upstreams (/healthz?upstreams=1, /upstreams on WeChat, the draw among
equals), and what nobody sees: an upstream's key or password, in any log, page or error."""

from __future__ import annotations

import logging

from bot.chat.health import Health
from bot.chat.providers import OpenAIProvider
from bot.chat.routing import Router, Upstream
from config.upstreams import UpstreamSpec
from tests.conftest import ACCOUNT, ADMIN
from tests.doubles.upstream import refusing_url
from tests.follower import Follower, flask_post
from tests.helpers import ask, ask_openai
from tests.test_failover import BACKUP_KEY, PRIMARY_KEY, streamed_text, two_upstreams

QUESTION = [{"role": "user", "content": "q"}]


def test_healthz_with_upstreams_reports_each_one_to_the_operator_only(config, make_app, upstream, backup, issue_key):
    upstream.reset(status=500)
    app = make_app(two_upstreams(config, upstream.url, backup.url, BOT_UPSTREAM_FAILURES="1"))
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}  # the liveness probe is unchanged
    ask(client, issue_key(), "q")
    report = client.get("/healthz?upstreams=1").get_json()
    states = {u["name"]: (u["state"], u["failures"]) for u in report["upstreams"]}
    assert states == {"primary": ("down", 1), "backup": ("up", 0)}
    assert 0 < report["upstreams"][0]["retry_in"] <= 30 and isinstance(report["worker"], int)
    # Whoever may not read /metrics may not read this either: a request a proxy relayed, a wrong token.
    assert client.get("/healthz?upstreams=1", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    locked = make_app({**two_upstreams(config, upstream.url, backup.url), "BOT_METRICS_TOKEN": "t" * 32}).test_client()
    assert locked.get("/healthz?upstreams=1").status_code == 403
    assert locked.get("/healthz?upstreams=1", headers={"Authorization": "Bearer " + "t" * 32}).status_code == 200
    assert locked.get("/healthz").status_code == 200


def test_the_admin_reads_the_upstreams_on_wechat_and_a_follower_cannot(config, make_app, upstream, backup):
    upstream.reset(status=500)
    app = make_app(two_upstreams(config, upstream.url, backup.url, BOT_UPSTREAM_FAILURES="1"))
    client = app.test_client()
    follower = Follower(flask_post(client), ACCOUNT, "oFollower00000000000000000001")
    assert follower.say("/upstreams") == "备用：/upstreams"  # a follower's "/…" is a question like any other
    reply = Follower(flask_post(client), ACCOUNT, ADMIN).say("/upstreams")
    lines = reply.splitlines()
    assert lines[0] == "模型上游（本工作进程所见）："
    assert lines[1].startswith("primary：暂停使用，") and lines[1].endswith("s 后试探（优先级 0，权重 1）")
    assert lines[2] == "backup：正常（优先级 1，权重 1）"


def test_no_key_or_password_reaches_a_log_line_a_page_or_an_error(
    config, make_app, upstream, backup, issue_key, caplog
):
    upstream.reset(status=401)  # refuses our key: its answer and our logs must still not show it
    backup.reset(status=500)
    primary = upstream.url.replace("http://", "http://gate:hunter2-password@")
    app = make_app(two_upstreams(config, primary, backup.url, BOT_UPSTREAM_FAILURES="1"))
    client, key = app.test_client(), issue_key()
    seen = []
    with caplog.at_level(logging.DEBUG):
        seen.append(ask(client, key, "q").get_data(as_text=True))
        seen.append(ask_openai(client, key, "q", stream=True).get_data(as_text=True))
        backup.reset()
        seen.append(streamed_text(ask(client, key, "q", stream=True)))
        seen.append(Follower(flask_post(client), ACCOUNT, "oFollower00000000000000000002").say("q"))
        seen.append(Follower(flask_post(client), ACCOUNT, ADMIN).say("/upstreams"))
        seen.append(client.get("/metrics").get_data(as_text=True))
        seen.append(client.get("/healthz?upstreams=1").get_data(as_text=True))
    seen.append(caplog.text)
    assert "failed=primary:http_401,backup:http_500" in caplog.text  # the logs name what happened…
    everything = "\n".join(seen)
    for secret in (PRIMARY_KEY, BACKUP_KEY, "hunter2"):  # …and never with what
        assert secret not in everything
    assert upstream.calls >= 1 and backup.received[0].headers["Authorization"] == f"Bearer {BACKUP_KEY}"


def router_of(*upstreams: tuple[str, str, int, int]) -> Router:
    """A Router over real doubles: (name, base URL, priority, weight) each."""
    return Router(
        [
            Upstream(
                UpstreamSpec(name, url, "", "m", priority, weight, 2.0),
                OpenAIProvider(url, "", "m", 2.0, retry=False),
                Health(3, 30),
            )
            for name, url, priority, weight in upstreams
        ]
    )


def test_equal_priorities_share_the_calls_by_weight(upstream, backup):
    router = router_of(("a", upstream.url, 0, 1), ("b", backup.url, 0, 3))
    try:
        for _ in range(200):
            router.complete(QUESTION, 10)
    finally:
        router.close()
    assert upstream.calls + backup.calls == 200
    assert 25 <= upstream.calls <= 80  # a quarter expected (50); ±4 standard deviations


def test_among_equals_one_that_failed_lately_goes_after_the_healthy(upstream, backup):
    upstream.reset(status=500, fail_times=1)
    router = router_of(("a", upstream.url, 0, 1), ("b", backup.url, 0, 1))
    try:
        while upstream.calls == 0:  # until a draw puts it first and it fails once
            router.complete(QUESTION, 10)
        calls = upstream.calls
        for _ in range(10):
            assert router.complete(QUESTION, 10).content == "备用：q"
    finally:
        router.close()
    assert upstream.calls == calls  # within its cool-down it is tried only if the healthy one fails


def test_every_upstream_down_is_still_tried_rather_than_refused_untried(backup):
    router = router_of(("a", refusing_url(), 0, 1), ("b", backup.url, 1, 1))
    for upstream in router.upstreams:
        for _ in range(3):
            upstream.health.failed()
    try:
        assert router.complete(QUESTION, 10).content == "备用：q"
    finally:
        router.close()


def test_each_upstreams_own_warning_names_it_by_name_never_by_url_or_key(
    config, make_app, upstream, backup, issue_key, caplog
):
    upstream.reset(status=503)
    backup.reset(mode="malformed")
    primary = upstream.url.replace("http://", "http://gate:hunter2-password@")
    app = make_app(two_upstreams(config, primary, backup.url, BOT_UPSTREAM_FAILURES="100"))
    client, key = app.test_client(), issue_key()
    with caplog.at_level(logging.WARNING, logger="bot.chat"):
        ask(client, key, "q")
        backup.reset(mode="drop")
        ask(client, key, "q", stream=True)
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("bot.chat")]
    assert "upstream primary answered HTTP 503" in warnings  # which of the two, as the operator named it
    assert any(w.startswith("upstream backup answered malformed JSON") for w in warnings)
    assert any(w.startswith("upstream backup unreachable: ") for w in warnings)
    for secret in (PRIMARY_KEY, BACKUP_KEY, "hunter2", "127.0.0.1"):
        assert not any(secret in w for w in warnings)
