"""The operator console: who gets in, the audit log of every admin action, and acting on keys."""

from __future__ import annotations

import csv
import io

import pytest

from bot.ids import today
from bot.services import services
from bot.store import keyspace
from bot.store.audit import AuditLog
from tests.conftest import ACCOUNT, ADMIN
from tests.console import admin_client, entries
from tests.follower import Follower, flask_post
from tests.portal import ask_link, csrf_of

FOLLOWER = "oConsoleUser0000000000000001"
PAGES = ["/admin", "/admin/keys", f"/admin/keys?q={FOLLOWER}", "/admin/audit", "/admin/audit.csv",
         f"/admin/keys/{FOLLOWER}/revoke", "/admin/export/usage.csv?start=2026-01-01&end=2026-01-02",
         "/admin/assets/console.css", "/admin/menu", "/admin/panels", "/admin/content",
         "/admin/content/words", "/admin/export"]  # fmt: skip
ACTIONS = [(f"/admin/keys/{FOLLOWER}/{a}", {"tokens": "5"}) for a in ("grant", "revoke", "rotate", "block", "reset")]
ACTIONS += [
    ("/admin/menu", {"b0_name": "x", "b0_type": "click", "b0_value": "K"}),
    ("/admin/keys", {"q": FOLLOWER}),
    ("/admin/content/prompt/save", {"prompt": "x"}),
    ("/admin/content/prompt/reset", {}),
    ("/admin/content/words/apply", {"action": "add", "words": "词"}),
    ("/admin/menu/publish", {"menu": '{"button": [{"type": "click", "name": "x", "key": "K"}]}'}),
]


def test_the_console_link_lands_an_admin_on_the_dashboard_with_the_portals_headers(app, client, issue_key):
    browser = admin_client(app, client)
    page = browser.get("/admin")
    assert page.status_code == 200 and "运营控制台" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Cache-Control"] == "no-store"
    assert [(e.who, e.via, e.action) for e in entries(app)] == [(ADMIN, "wechat", "console link")]
    assert "/login/" not in str(entries(app))  # the link itself is nowhere in the log


def test_a_follower_gets_403_on_every_page_and_action_and_no_session_gets_401(app, client, issue_key):
    issue_key(FOLLOWER)
    follower = app.test_client()
    landed = follower.get(ask_link(client, FOLLOWER))
    assert landed.headers["Location"].endswith("/me")  # a follower's link lands on /me, as before
    csrf = csrf_of(follower.get("/me").text)
    for path in PAGES:
        assert follower.get(path).status_code == 403, path
        assert app.test_client().get(path).status_code == 401, path
    for path, form in ACTIONS:
        assert follower.post(path, data={**form, "csrf_token": csrf}).status_code == 403, path
    assert entries(app) == []
    with app.app_context():
        assert services().keys.info(services().keys.fingerprint_of(FOLLOWER)).balance == 10000


def test_an_openid_taken_off_the_admin_list_is_refused_on_its_next_request(app, client, config, make_app):
    browser = admin_client(app, client)
    assert browser.get("/admin").status_code == 200
    restarted = make_app({**config, "BOT_ADMIN_OPENIDS": "oSomeoneElse0000000000000001"})  # same secret, new list
    cookie = browser.get_cookie("xiaoyi_session")
    other = restarted.test_client()
    other.set_cookie("xiaoyi_session", cookie.value)
    assert other.get("/admin").status_code == 403
    assert other.get("/me").status_code == 200  # still a follower with a valid session


def test_an_action_needs_the_csrf_token_and_its_confirmation_page_changes_nothing(app, client, issue_key):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    confirm = browser.get(f"/admin/keys/{FOLLOWER}/grant?tokens=500")
    assert confirm.status_code == 200 and "确认增加额度" in confirm.text and "500" in confirm.text
    assert browser.post(f"/admin/keys/{FOLLOWER}/grant", data={"tokens": "500"}).status_code == 400  # no token
    with app.app_context():
        assert services().keys.info(services().keys.fingerprint_of(FOLLOWER)).balance == 10000
    assert [e.action for e in entries(app)] == ["console link"]


def test_a_grant_is_audited_and_shown_on_the_keys_page(app, client, issue_key):
    key = issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get(f"/admin/keys/{FOLLOWER}/grant?tokens=500").text)
    done = browser.post(f"/admin/keys/{FOLLOWER}/grant", data={"tokens": "500", "csrf_token": csrf})
    assert done.status_code == 303
    page = browser.get(done.headers["Location"])
    assert "10500 tokens" in page.text and "已完成：增加额度" in page.text and key not in page.text
    newest = entries(app)[0]
    assert (newest.who, newest.via, newest.action, newest.target) == (ADMIN, "console", "grant", FOLLOWER)
    assert "+500" in newest.detail and "10500" in newest.detail
    for bad in ("0", "-5", "1e3", "１２", "10000000000", ""):
        assert browser.post(f"/admin/keys/{FOLLOWER}/grant", data={"tokens": bad, "csrf_token": csrf}).status_code \
            == 400, bad  # fmt: skip


def test_a_key_found_by_its_value_by_fingerprint_or_by_openid_never_puts_the_key_in_a_url(app, client, issue_key):
    key = issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/keys").text)
    found = browser.post("/admin/keys", data={"q": key, "csrf_token": csrf})
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/admin/keys?q={FOLLOWER}")
    with app.app_context():
        fingerprint = services().keys.fingerprint(key)
    assert FOLLOWER in browser.get(f"/admin/keys?q={fingerprint}").text
    assert FOLLOWER in browser.get(f"/admin/keys?q=key%23{fingerprint[:10]}").text
    refused = browser.get(f"/admin/keys?q={key}")  # a key typed into the URL is not looked up
    assert "没有找到" in refused.text and key not in refused.text
    missing = browser.post("/admin/keys", data={"q": "sk-" + "x" * 48, "csrf_token": csrf})
    assert missing.status_code == 200 and "没有找到" in missing.text and "x" * 48 not in missing.text


def test_revoke_rotate_block_and_reset_each_do_what_they_say_and_are_audited(app, client, issue_key):
    key = issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/keys").text)
    for action in ("rotate", "block", "unblock", "reset", "revoke"):
        assert browser.post(f"/admin/keys/{FOLLOWER}/{action}", data={"csrf_token": csrf}).status_code == 303
    with app.app_context():
        svc = services()
        assert svc.keys.current_key(FOLLOWER) == (None, True) and svc.keys.fingerprint(key) is not None
    assert [e.action for e in entries(app)][:5] == ["revoke", "reset", "unblock", "block", "rotate"]
    assert not any("sk-" in f"{e.target}{e.detail}" for e in entries(app))
    assert browser.post(f"/admin/keys/{FOLLOWER}/revoke", data={"csrf_token": csrf}).status_code == 404  # no key now
    assert browser.post(f"/admin/keys/{FOLLOWER}/delete", data={"csrf_token": csrf}).status_code == 404


def test_wechat_admin_commands_and_the_cli_are_audited_without_key_values(app, client, admin, issue_key):
    key = issue_key(FOLLOWER)
    admin.say(f"/grant {key} 7")
    admin.say(f"/reset {FOLLOWER}")
    admin.say("/ban add 违禁词甲")
    admin.say("/stats")  # a read: not an action
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["keys", "grant", key, "3"])
        assert result.exit_code == 0, result.output
        app.test_cli_runner().invoke(args=["block", "openid", FOLLOWER])
    seen = [(e.via, e.action, e.target) for e in entries(app)]
    assert seen[:5] == [("cli", "block", FOLLOWER), ("cli", "grant", seen[1][2]), ("wechat", "ban add", ""),
                        ("wechat", "reset", FOLLOWER), ("wechat", "grant", FOLLOWER)]  # fmt: skip
    assert seen[1][2].startswith("key#")
    assert not any(key in f"{e.target}{e.detail}" or "违禁词甲" in e.detail for e in entries(app))


def test_the_audit_page_and_csv_list_every_entry_and_offer_no_way_to_delete(app, client):
    with app.app_context():
        log = AuditLog(services().redis)
        log.record("cli:ops", "cli", "grant", '=HYPERLINK("x")', "sk-" + "A" * 48)
    browser = admin_client(app, client)
    page = browser.get("/admin/audit")
    assert "cli:ops" in page.text and "sk-…" in page.text and "A" * 48 not in page.text
    assert '<form method="post"' not in page.text.split("<main")[1]  # nothing to submit: read only
    exported = browser.get("/admin/audit.csv")
    assert exported.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert exported.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[0][0] == "时间（北京时间）" and len(rows) == 3
    assert rows[1][1:5] == ["cli:ops", "命令行", "grant", '\'=HYPERLINK("x")']  # a formula stays text
    assert rows[2][1:4] == [ADMIN, "微信命令", "console link"]
    for method in ("delete", "post", "put"):
        assert getattr(browser, method)("/admin/audit").status_code in (400, 405)
    assert len(entries(app)) == 2


def test_the_export_page_offers_both_downloads_with_the_last_30_days_filled_in(app, client):
    from datetime import date, timedelta

    page = admin_client(app, client).get("/admin/export").text
    end = date(int(today()[:4]), int(today()[4:6]), int(today()[6:]))
    assert f'name="start" value="{end - timedelta(days=29)}"' in page and f'name="end" value="{end}"' in page
    assert 'action="/admin/export/usage.csv"' in page and 'href="/admin/audit.csv"' in page


@pytest.mark.parametrize("query", ["start=2026-01-02&end=2026-01-01", "start=x&end=2026-01-01",
                                   "start=2026-01-01&end=2026-06-01", ""])  # fmt: skip
def test_the_usage_export_refuses_a_range_it_cannot_give(app, client, query):
    assert admin_client(app, client).get(f"/admin/export/usage.csv?{query}").status_code == 400


def test_the_usage_export_has_a_row_per_key_and_day_with_its_tokens(app, client, issue_key, redis):
    with app.app_context():
        keys = services().keys
        fingerprints = [keys.fingerprint(issue_key(f"oConsoleCsv{i:017d}")) for i in range(3)]
    for i, fp in enumerate(fingerprints):
        redis.hset(keyspace.api_key_days(fp), mapping={"20261101": 10 + i, "20261102": 0, "20261031": 99})
    keys_revoked = fingerprints[2]
    with app.app_context():
        services().keys.revoke("oConsoleCsv00000000000000002")
    exported = admin_client(app, client).get("/admin/export/usage.csv?start=2026-11-01&end=2026-11-02")
    assert exported.status_code == 200 and exported.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[0] == ["日期", "密钥", "用户 openid", "tokens"]
    assert sorted(rows[1:]) == sorted([
        ["2026-11-01", f"key#{fingerprints[0][:10]}", "oConsoleCsv00000000000000000", "10"],
        ["2026-11-01", f"key#{fingerprints[1][:10]}", "oConsoleCsv00000000000000001", "11"],
        ["2026-11-01", f"key#{keys_revoked[:10]}", "（已撤销）", "12"],
    ])  # fmt: skip
    assert entries(app)[0].action == "export usage"


def test_the_dashboard_counts_what_was_sent_once_flushed_and_a_second_flush_adds_nothing(app, client, issue_key, admin):
    from bot.console.traffic import hour_key, hour_of, hours_back

    app.extensions["stats_flush"].flush()  # what earlier tests in this process counted is not ours
    redis = services_redis(app)
    redis.delete(*[hour_key(h) for h in hours_back(2)] or ["-"])
    key = issue_key(FOLLOWER)  # a new key
    issue_key(FOLLOWER)  # the same key shown again: not new
    follower = Follower(flask_post(client), ACCOUNT, FOLLOWER)
    for _ in range(2):
        follower.say("key")
    assert follower.say("你好")  # a chat: the follower is active today
    for _ in range(2):
        assert client.post("/api/v1/chat/completions", json={"api_secret_key": key, "messages": [
            {"role": "user", "content": "你好"}]}).status_code == 200  # fmt: skip
    assert client.post("/api/v1/chat/completions", json={"api_secret_key": "sk-" + "x" * 48, "messages": [
        {"role": "user", "content": "你好"}]}).status_code == 401  # fmt: skip
    flusher = app.extensions["stats_flush"]
    assert flusher.flush() > 0
    assert flusher.flush() == 0  # nothing grew: nothing written
    browser = admin_client(app, client)  # its /console message is counted after the flush: not in the figures
    page = browser.get("/admin").text
    assert '<dd id="today-wechat">3</dd>' in page and '<dd id="today-api">3</dd>' in page
    assert '<dd id="today-new-keys">1</dd>' in page and '<dd id="today-followers">1</dd>' in page
    panel = browser.get("/admin/panels?span=day").text
    assert "微信消息 3，API /api/v1 3，API /v1 0" in panel
    assert "微信消息 3，" in browser.get("/admin/panels?span=month").text
    with app.app_context():
        from bot.console.dashboard import latency_ms, merge
        from bot.console.traffic import read_hours

        counts = merge(read_hours(redis, [hour_of(__import__("datetime").datetime.now())]))
    assert latency_ms(counts, 0.95) is not None and latency_ms(counts, 0.5) <= latency_ms(counts, 0.95)


def test_the_dashboard_tells_the_models_failures_apart_from_refusals(app, client, issue_key, admin, upstream):
    from bot.console.traffic import hour_key, hours_back

    app.extensions["stats_flush"].flush()  # what earlier tests in this process counted is not ours
    redis = services_redis(app)
    redis.delete(*[hour_key(h) for h in hours_back(2)])
    key = issue_key(FOLLOWER)
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": "你好"}]}
    upstream.reset(status=500)
    assert [client.post("/api/v1/chat/completions", json=body).status_code for _ in range(2)] == [502, 502]
    upstream.reset()
    with app.app_context():
        services().blocks.block_openid(FOLLOWER)
    assert client.post("/api/v1/chat/completions", json=body).status_code == 403
    assert app.extensions["stats_flush"].flush() > 0
    panels = admin_client(app, client).get("/admin/panels?span=day").text
    assert "上游出错 2，上游超时 0，服务不可用 0，内部错误 0" in panels
    assert "频率限制 0，封禁 1，余额不足 0，内容过滤 0" in panels


def test_a_flush_that_redis_refuses_keeps_its_counts_for_the_next(app, client, issue_key):
    from bot.console.traffic import Flusher, hour_key, hours_back, read_hours

    key = issue_key(FOLLOWER)
    redis = services_redis(app)
    flusher = Flusher(redis)
    redis.delete(*[hour_key(h) for h in hours_back(2)])
    assert client.post("/api/v1/chat/completions", json={"api_secret_key": key, "messages": [
        {"role": "user", "content": "你好"}]}).status_code == 200  # fmt: skip
    redis.set(hour_key(hours_back(1)[0]), "not a hash")  # every HINCRBY of this flush fails
    assert flusher.flush() == 0
    redis.delete(hour_key(hours_back(1)[0]))
    assert flusher.flush() > 0
    from bot.console.dashboard import total

    assert total(read_hours(redis, hours_back(1))[0], "requests_total", door="api") == 1


def services_redis(app):
    with app.app_context():
        return services().redis


def test_without_a_search_the_keys_page_lists_the_top_keys_of_the_range_and_the_newest(app, client, issue_key, redis):
    from bot.ids import today
    from bot.store.usage import day_before

    with app.app_context():
        keys = services().keys
        fps = [keys.fingerprint(issue_key(f"oConsoleTop{i:017d}")) for i in range(3)]
    now = today()
    redis.hset(keyspace.api_key_days(fps[0]), mapping={now: 5, day_before(now, 10): 1000})  # busy 10 days ago
    redis.hset(keyspace.api_key_days(fps[1]), mapping={now: 50})
    redis.hset(keyspace.api_key(fps[2]), "created", 4102444800)  # the newest by far
    browser = admin_client(app, client)
    week = browser.get("/admin/keys").text.split('id="top"')[1].split("</table>")[0]
    assert week.index(f"key#{fps[1][:10]}") < week.index(f"key#{fps[0][:10]}") and f"key#{fps[2][:10]}" not in week
    month = browser.get("/admin/keys?days=30").text.split('id="top"')[1].split("</table>")[0]
    assert month.index(f"key#{fps[0][:10]}") < month.index(f"key#{fps[1][:10]}") and ">1005<" in month
    newest = browser.get("/admin/keys").text.split('id="newest"')[1].split("</table>")[0]
    assert newest.index(f"key#{fps[2][:10]}") < newest.index(f"key#{fps[0][:10]}")
