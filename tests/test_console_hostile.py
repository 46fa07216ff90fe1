"""What a hostile visitor, a follower, a cross-site page or an admin's own bad input sends the console:
each gets a 4xx (never a 500, never a success), nothing changes, and nothing it sent runs in a page,
a spreadsheet or a URL. Each test is one row of docs/security.md's "Operator console" section."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest
from itsdangerous import TimestampSigner

from bot.console.views import csv_download
from bot.services import services
from bot.store import menus
from bot.store.audit import AuditLog
from bot.web.session import signins
from tests.conftest import ACCOUNT, ADMIN
from tests.console import admin_client, entries
from tests.follower import Follower, flask_post
from tests.portal import ask_link, csrf_of, link_path

FOLLOWER = "oConsoleHostile0000000000001"
POSTS = ["/admin/keys", f"/admin/keys/{FOLLOWER}/grant", f"/admin/keys/{FOLLOWER}/block", "/admin/menu",
         "/admin/menu/publish", "/admin/content/prompt", "/admin/content/prompt/save", "/admin/content/prompt/reset",
         "/admin/content/words", "/admin/content/words/confirm", "/admin/content/words/apply"]  # fmt: skip
FORM = {"q": FOLLOWER, "tokens": "5", "prompt": "x", "action": "add", "words": "词", "b0_name": "x",
        "b0_type": "click", "b0_value": "K",
        "menu": '{"button": [{"type": "click", "name": "x", "key": "K"}]}'}  # fmt: skip


def balance(app, openid: str = FOLLOWER) -> int:
    with app.app_context():
        keys = services().keys
        return keys.info(keys.fingerprint_of(openid)).balance


def nothing_changed(app, redis) -> None:
    assert balance(app) == 10000 and [e.action for e in entries(app)] == ["console link"]
    assert redis.get("bot:system_prompt") is None and redis.get(menus.MENU_KEY) is None
    with app.app_context():
        assert not services().blocks.openid_blocked(FOLLOWER) and services().guard.store.count() == 0


def test_an_admins_post_without_a_csrf_token_or_with_another_sessions_is_refused(app, client, issue_key, redis):
    issue_key(FOLLOWER)
    browser, other = admin_client(app, client), admin_client(app, client)
    foreign = csrf_of(other.get("/admin/keys").text)  # a real token, of another browser's session
    for path in POSTS:
        assert browser.post(path, data=FORM).status_code == 400, path
        assert browser.post(path, data={**FORM, "csrf_token": "x" * 40}).status_code == 400, path
        assert browser.post(path, data={**FORM, "csrf_token": foreign}).status_code == 400, path
    assert [e.action for e in entries(app)] == ["console link"] * 2  # the two sign-ins, nothing else
    assert balance(app) == 10000 and redis.get("bot:system_prompt") is None


def _cookie_of(app, data: dict, seconds_ago: int, monkeypatch) -> str:
    """A session cookie as the service signs it, `seconds_ago` old."""
    serializer = app.session_interface.get_signing_serializer(app)
    real = TimestampSigner.get_timestamp
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: int(real(self)) - seconds_ago)
        return serializer.dumps(data)


def test_a_forged_expired_or_ended_session_gets_no_console(app, client, issue_key, redis, monkeypatch):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    real = browser.get_cookie("xiaoyi_session").value
    forged = app.test_client()
    forged.set_cookie("xiaoyi_session", real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB"))
    assert forged.get("/admin").status_code == 400
    payload = app.session_interface.get_signing_serializer(app).loads(real)
    old = app.test_client()
    old.set_cookie("xiaoyi_session", _cookie_of(app, payload, 8 * 86400, monkeypatch))  # signed 8 days ago: past its 7
    assert old.get("/admin").status_code == 401
    with app.app_context():
        signins().end_all(ADMIN)  # "sign out everywhere", from another device
    assert browser.get("/admin").status_code == 401
    assert browser.post("/admin/content/prompt/reset", data={"csrf_token": "x"}).status_code in (400, 401)
    nothing_changed(app, redis)


def test_a_link_with_a_next_parameter_lands_on_the_console_not_on_another_site(app, client):
    path = link_path(Follower(flask_post(client), ACCOUNT, ADMIN).say("/console"))
    landed = app.test_client().get(f"{path}?next=https://evil.example/&return_to=//evil.example")
    assert landed.status_code == 303 and landed.headers["Location"].endswith("/admin")


def test_a_follower_with_a_valid_csrf_token_is_refused_on_every_post(app, client, issue_key, redis):
    issue_key(FOLLOWER)
    follower = app.test_client()
    follower.get(ask_link(client, FOLLOWER))
    csrf = csrf_of(follower.get("/me").text)
    for path in POSTS:
        assert follower.post(path, data={**FORM, "csrf_token": csrf}).status_code == 403, path
    assert follower.get(f"/admin/keys/{FOLLOWER}/grant?tokens=5").status_code == 403
    assert entries(app) == [] and balance(app) == 10000


SCRIPT = "<script>alert(1)</script>\"'"


def test_stored_values_are_shown_as_text_never_as_markup(app, client, issue_key):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content/words").text)
    shown = browser.post("/admin/content/words/confirm", data={"action": "add", "words": SCRIPT, "csrf_token": csrf})
    assert "<script>alert" not in shown.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    browser.post("/admin/content/words/apply", data={"action": "add", "words": SCRIPT, "csrf_token": csrf})
    listed = browser.get("/admin/content/words").text
    assert "<script>alert" not in listed and "<td>scriptalert1script</td>" in listed  # stored as its reading
    prompt = "</textarea></pre><script>alert(2)</script>"
    preview = browser.post("/admin/content/prompt", data={"prompt": prompt, "csrf_token": csrf}).text
    assert "<script>alert(2)" not in preview and "&lt;/textarea&gt;" in preview
    browser.post("/admin/content/prompt/save", data={"prompt": prompt, "csrf_token": csrf})
    assert "<script>alert(2)" not in browser.get("/admin/content").text
    menu = {"b0_name": '"><script>x</script>', "b0_type": "click", "b0_value": '"onmouseover="alert(3)'}
    page = browser.post("/admin/menu", data={**menu, "csrf_token": csrf}).text
    assert "<script>x" not in page and 'value="&#34;onmouseover=&#34;alert(3)"' in page
    with app.app_context():
        AuditLog(services().redis).record("cli:" + SCRIPT, "cli", SCRIPT, SCRIPT, SCRIPT)
    audit = browser.get("/admin/audit").text
    assert "<script>alert" not in audit and audit.count("&lt;script&gt;alert(1)") == 4


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>", "//evil.example/",
                                 "https:alert(1)", "vbscript:msgbox(1)"])  # fmt: skip
def test_a_view_button_that_is_not_an_http_address_is_refused_typed_or_posted(app, client, url, wechat_api, redis):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/menu").text)
    typed = browser.post("/admin/menu", data={"b0_name": "x", "b0_type": "view", "b0_value": url, "csrf_token": csrf})
    assert "view 的网址须以" in typed.text and "确认保存并发布" not in typed.text
    posted = json.dumps({"button": [{"type": "view", "name": "x", "url": url}]})
    assert browser.post("/admin/menu/publish", data={"menu": posted, "csrf_token": csrf}).status_code == 400
    assert redis.get(menus.MENU_KEY) is None and wechat_api.calls_to("/cgi-bin/menu/create") == []


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1+2", "@SUM(A1)", "\t=1+2", "\r=1+2"])
def test_a_csv_cell_a_spreadsheet_would_run_is_written_as_text(app, cell):
    with app.test_request_context():
        body = "".join(csv_download("x.csv", ["a"], [[cell, 5]]).response).removeprefix("\ufeff")
    row = next(r for r in csv.reader(io.StringIO(body)) if r != ["a"])
    assert row == ["'" + cell, "5"]


def test_an_audit_entry_shaped_as_a_formula_leaves_the_audit_csv_as_text(app, client):
    with app.app_context():
        for value in ('=HYPERLINK("http://evil")', "+cmd", "-2+3", "@A1"):
            assert app.test_cli_runner().invoke(args=["block", "user", "--", value]).exit_code == 0
    rows = list(csv.reader(io.StringIO(admin_client(app, client).get("/admin/audit.csv").data.decode("utf-8-sig"))))
    targets = [r[4] for r in rows[1:] if r[3] == "block user"]
    assert sorted(targets) == sorted(['\'=HYPERLINK("http://evil")', "'+cmd", "'-2+3", "'@A1"])


def test_an_import_larger_than_a_request_may_be_is_refused_and_changes_nothing(app, client, issue_key, redis):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content/words").text)
    words = "\n".join(f"词{i}" for i in range(1_000_000))  # ~10 MB
    for path in ("/admin/content/words/confirm", "/admin/content/words/apply"):
        refused = browser.post(path, data={"action": "import", "words": words, "csrf_token": csrf})
        assert refused.status_code == 413
    assert "共 0 个" in browser.get("/admin/content/words").text
    nothing_changed(app, redis)


@pytest.mark.parametrize("menu", [
    json.dumps({"button": [{"type": "click", "name": f"b{i}", "key": "K"} for i in range(100)]}),
    json.dumps({"button": [{"name": "x", "sub_button": [{"type": "click", "name": "s", "key": "K"}] * 100}]}),
    "[" * 5_000 + "]" * 5_000, '{"button": ' * 3_000 + "1" + "}" * 3_000,
    '{"button": {"name": "x"}}', '{"button": [null]}', "[]", "", "not json",
    json.dumps({"button": [{"type": "click", "name": 7, "key": "K"}]}),
])  # fmt: skip
def test_a_menu_posted_to_the_previews_hidden_field_that_is_not_one_is_refused(app, client, menu, wechat_api, redis):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/menu").text)
    refused = browser.post("/admin/menu/publish", data={"menu": menu, "csrf_token": csrf})
    assert refused.status_code == 400 and "菜单" in refused.text
    assert redis.get(menus.MENU_KEY) is None and wechat_api.calls_to("/cgi-bin/menu/create") == []
    assert [e.action for e in entries(app)] == ["console link"]


@pytest.mark.parametrize("tokens", ["9" * 5000, "-5", "0", "1.5", "1e3", "０", "abc", " 5", "1000000001"])
def test_a_grant_of_a_huge_negative_or_non_integer_amount_is_refused_and_changes_nothing(
    app, client, issue_key, redis, tokens
):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    assert browser.get(f"/admin/keys/{FOLLOWER}/grant", query_string={"tokens": tokens}).status_code == 400
    csrf = csrf_of(browser.get("/admin/keys").text)
    done = browser.post(f"/admin/keys/{FOLLOWER}/grant", data={"tokens": tokens, "csrf_token": csrf})
    assert done.status_code == 400
    nothing_changed(app, redis)


def test_a_wechat_grant_or_ban_list_with_a_5000_digit_number_gets_its_usage_line(app, admin, issue_key):
    issue_key(FOLLOWER)
    assert "用法：/grant" in admin.say(f"/grant {FOLLOWER} {'9' * 5000}")
    assert "页码应为 1 到 1" in admin.say(f"/ban list {'9' * 5000}")
    assert balance(app) == 10000


@pytest.mark.parametrize("query", ["start=2026-11-02&end=2026-11-01", "start=2024-01-01&end=2026-09-27",
                                   "start=2026-02-30&end=2026-03-01", "start=2026-11-01", "start=&end=",
                                   "start=2026-11-01&end=2026-11-01T00:00", "start=99999-01-01&end=99999-01-02",
                                   "start=%00&end=2026-11-01", "start=2026-11-01&end=" + "9" * 5000])  # fmt: skip
def test_the_usage_export_refuses_a_bad_range_and_audits_nothing(app, client, query):
    browser = admin_client(app, client)
    assert browser.get(f"/admin/export/usage.csv?{query}").status_code == 400
    assert [e.action for e in entries(app)] == ["console link"]


@pytest.mark.parametrize("before", ["-1", "abc", "%00", "1-2-3", "0-0", "99999999999999999999-0",
                                    "1-99999999999999999999", "18446744073709551616-0", "1" * 39])  # fmt: skip
def test_the_audit_pages_cursor_never_breaks_the_page(app, client, before):
    page = admin_client(app, client).get(f"/admin/audit?before={before}")
    assert page.status_code == 200 and "<td>console link</td>" in page.text  # from the newest again


def test_the_largest_cursor_redis_takes_lists_every_entry_and_the_smallest_none(app, client):
    browser = admin_client(app, client)
    top = browser.get(f"/admin/audit?before={2**64 - 1}-{2**64 - 1}")
    assert top.status_code == 200 and "<td>console link</td>" in top.text
    bottom = browser.get("/admin/audit?before=0-1")
    assert bottom.status_code == 200 and "还没有操作记录" in bottom.text


@pytest.mark.parametrize("days", ["-1", "0", "99999999999999999999", "abc", "7.5", "%00"])
def test_the_keys_pages_range_falls_back_to_seven_days(app, client, days):
    page = admin_client(app, client).get(f"/admin/keys?days={days}")
    assert page.status_code == 200 and "用量最多的密钥（最近 7 天，北京时间）" in page.text  # the links name 7 always
    assert '<a href="/admin/keys?days=7" aria-current="true">' in page.text


def test_no_key_value_reaches_a_log_line_a_url_or_the_audit_log(app, client, issue_key, admin, caplog):
    key = issue_key(FOLLOWER)
    caplog.set_level(logging.DEBUG)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/keys").text)
    found = browser.post("/admin/keys", data={"q": key, "csrf_token": csrf})
    assert key not in found.headers["Location"]
    for action in ("grant", "rotate", "block", "unblock", "reset"):
        done = browser.post(f"/admin/keys/{FOLLOWER}/{action}", data={"tokens": "5", "csrf_token": csrf})
        assert done.status_code == 303 and "sk-" not in done.headers["Location"]
        assert "sk-" not in browser.get(done.headers["Location"]).text.replace('"sk-…"', "")
    with app.app_context():
        new_key = services().keys.current_key(FOLLOWER)[0]
    admin.say(f"/grant {new_key} 9")
    admin.say(f"/reset {new_key}")
    browser.post("/admin/keys", data={"q": new_key, "csrf_token": csrf})
    assert browser.get("/admin/export/usage.csv?start=2026-11-01&end=2026-11-02").status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert key[3:] not in logged and new_key[3:] not in logged
    audit = browser.get("/admin/audit.csv").data.decode("utf-8-sig") + browser.get("/admin/audit").text
    assert key[3:] not in audit and new_key[3:] not in audit
    assert [e.action for e in entries(app)][:2] == ["export usage", "reset"]


def test_banned_word_changes_from_the_cli_are_audited_without_the_word(app, client, tmp_path):
    listed = tmp_path / "words.txt"
    listed.write_text("违禁乙\n违禁丙\n", encoding="utf-8")
    runner = app.test_cli_runner()
    with app.app_context():
        for args in (["words", "add", "违禁甲"], ["words", "import", str(listed)], ["words", "remove", "违禁甲"]):
            assert runner.invoke(args=args).exit_code == 0, args
    audited = [(e.via, e.action, e.detail) for e in entries(app)]
    assert audited == [("cli", "ban remove", "1 word(s), 1 changed"), ("cli", "ban import", "2 word(s), 2 changed"),
                       ("cli", "ban add", "1 word(s), 1 changed")]  # fmt: skip
    page = admin_client(app, client).get("/admin/audit").text
    assert "ban import" in page and "违禁" not in page


def test_restoring_the_default_prompt_asks_first_and_the_asking_changes_nothing(app, client, redis):
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/content").text)
    assert browser.post("/admin/content/prompt/save", data={"prompt": "覆盖", "csrf_token": csrf}).status_code == 303
    page = browser.get("/admin/content").text
    assert 'action="/admin/content/prompt/reset"' not in page  # a link to the confirmation, not the action
    asked = browser.get("/admin/content/prompt/reset")
    assert asked.status_code == 200 and "确认恢复默认" in asked.text and redis.get("bot:system_prompt") == "覆盖"
    assert [e.action for e in entries(app)][0] == "system prompt"
    done = browser.post("/admin/content/prompt/reset", data={"csrf_token": csrf_of(asked.text)})
    assert done.status_code == 303 and redis.get("bot:system_prompt") is None
    assert [e.action for e in entries(app)][0] == "system prompt reset"


@pytest.mark.slow
def test_no_key_value_reaches_gunicorns_access_or_error_log(app, issue_key, redis_server, upstream_server, tmp_path):
    import requests

    from tests.procs import wait_for
    from tests.servers import Gunicorn

    key = issue_key(FOLLOWER)
    server = Gunicorn(tmp_path, redis_server.url, upstream_server.url, WEB_CONCURRENCY="1", BOT_ADMIN_OPENIDS=ADMIN)
    server.start()
    try:
        with app.app_context():
            token = signins().issue_link(ADMIN)
        browser = requests.Session()
        assert browser.get(f"{server.url}/login/{token}", timeout=5).url.endswith("/admin")
        csrf = csrf_of(browser.get(f"{server.url}/admin/keys", timeout=5).text)
        found = browser.post(f"{server.url}/admin/keys", data={"q": key, "csrf_token": csrf}, timeout=5)
        assert found.url.endswith(f"/admin/keys?q={FOLLOWER}")
        for action in ("grant", "rotate"):
            done = browser.post(f"{server.url}/admin/keys/{FOLLOWER}/{action}", timeout=5,
                                data={"tokens": "5", "csrf_token": csrf})  # fmt: skip
            assert done.status_code == 200 and "已完成" in done.text
        assert browser.get(f"{server.url}/admin/audit.csv", timeout=5).ok
        assert wait_for(lambda: any(path == "/admin/audit.csv" for _, _, path in server.served()), 5)
        with app.app_context():
            new_key = services().keys.current_key(FOLLOWER)[0]
        logs = server.logs()
        assert "/admin/keys/" in logs and key[3:] not in logs and new_key[3:] not in logs
    finally:
        server.stop()


def test_an_action_whose_audit_entry_redis_refuses_shows_no_success(app, client, issue_key, redis, wechat_api):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/keys").text)
    shown = browser.post("/admin/menu", data={"b0_name": "x", "b0_type": "click", "b0_value": "K", "csrf_token": csrf})
    carried = shown.text.split('name="menu" value="')[1].split('"')[0].replace("&#34;", '"')
    redis.delete("bot:audit")
    redis.set("bot:audit", "not a stream")  # XADD now fails (WRONGTYPE), as it would with Redis refusing writes
    for path, form in [(f"/admin/keys/{FOLLOWER}/grant", {"tokens": "5"}), (f"/admin/keys/{FOLLOWER}/block", {}),
                       ("/admin/content/prompt/save", {"prompt": "x"}), ("/admin/content/prompt/reset", {}),
                       ("/admin/content/words/apply", {"action": "add", "words": "词"}),
                       ("/admin/menu/publish", {"menu": carried})]:  # fmt: skip
        answer = browser.post(path, data={**form, "csrf_token": csrf})
        assert answer.status_code == 503 and "已完成" not in answer.text and "已发布" not in answer.text, path
    assert browser.get("/admin/export/usage.csv?start=2026-11-01&end=2026-11-02").status_code == 503
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["keys", "grant", FOLLOWER, "3"])
    assert result.exit_code != 0 and "balance is now" not in result.output


def test_a_crafted_link_cannot_show_an_action_as_done_and_a_real_one_says_so_once(app, client, issue_key):
    issue_key(FOLLOWER)
    browser = admin_client(app, client)
    for path in (f"/admin/keys?q={FOLLOWER}&done=revoke", "/admin/content?done=reset", "/admin/content/words?done=add"):
        page = browser.get(path)
        assert page.status_code == 200 and 'id="done"' not in page.text, path
    csrf = csrf_of(browser.get("/admin/keys").text)
    done = browser.post(f"/admin/keys/{FOLLOWER}/grant", data={"tokens": "5", "csrf_token": csrf})
    assert done.status_code == 303 and "done" not in done.headers["Location"]
    assert "已完成：增加额度" in browser.get(done.headers["Location"]).text
    assert "已完成" not in browser.get(done.headers["Location"]).text  # said once: a reload does not repeat it


def test_a_key_pasted_with_other_words_is_never_shown_back_and_a_pasted_header_finds_it(app, client, issue_key):
    key = issue_key(FOLLOWER)
    browser = admin_client(app, client)
    csrf = csrf_of(browser.get("/admin/keys").text)
    found = browser.post("/admin/keys", data={"q": f"Bearer {key}", "csrf_token": csrf})
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/admin/keys?q={FOLLOWER}")
    for pasted in (f"Authorization: Bearer {key}", f"key={key} please", f"{key}x"):
        page = browser.post("/admin/keys", data={"q": pasted, "csrf_token": csrf})
        assert page.status_code == 200 and key not in page.text and key[3:20] not in page.text, pasted


@pytest.mark.parametrize("span", ["year", "MONTH", "month ", "%00", "<script>x</script>", "9" * 5000])
def test_the_dashboards_span_falls_back_to_the_last_24_hours_and_is_never_shown_back(app, client, span):
    browser = admin_client(app, client)
    for path in ("/admin/panels", "/admin"):
        page = browser.get(f"{path}?span={span}")
        assert page.status_code == 200 and "最近 24 小时（每小时）" in page.text, path
        assert "最近 30 天（每天）" not in page.text, path
        assert "<script>x" not in page.text and "9" * 50 not in page.text, path


@pytest.mark.parametrize("find", ['"><script>alert(1)</script>', ".*", "%", "\x00", "违" * 20000])
def test_a_hostile_word_search_finds_only_what_it_holds_and_is_shown_back_escaped(app, client, find):
    browser = admin_client(app, client)
    with app.app_context():
        services().guard.store.add(["违禁甲"])
    csrf = csrf_of(browser.get("/admin/content/words").text)
    page = browser.post("/admin/content/words", data={"find": find, "csrf_token": csrf})
    assert page.status_code == 200 and "共 1 个，匹配 0 个" in page.text and 'id="words"' not in page.text
    assert "<script>alert" not in page.text


def test_a_word_search_put_in_the_url_is_not_run_the_search_is_posted_only(app, client):
    browser = admin_client(app, client)
    with app.app_context():
        services().guard.store.add(["违禁甲", "违禁乙"])
    page = browser.get("/admin/content/words?find=违禁甲")  # a link someone sent, or a URL in an access log
    assert page.status_code == 200 and "匹配" not in page.text and "违禁乙" in page.text
    csrf = csrf_of(page.text)
    found = browser.post("/admin/content/words", data={"find": "违禁甲", "csrf_token": csrf})
    assert "违禁乙" not in found.text.split('id="words"')[1].split("</table>")[0]
