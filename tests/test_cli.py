"""Operator commands through Flask's CLI runner: what an admin types and sees."""

from __future__ import annotations

from bot.services import services
from tests.helpers import ask


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result.exit_code, result.output


def test_keys_show_tells_owner_and_balance_never_the_key(app, client, issue_key):
    key = issue_key("oShown")
    ask(client, key)
    code, out = run(app, "keys", "show", "oShown")
    with app.app_context():
        info = services().keys.info(services().keys.fingerprint(key))
    assert code == 0 and f"owner=oShown key={info.fingerprint[:10]} balance={info.balance} " in out
    assert f"used={10_000 - info.balance}" in out and key not in out
    assert run(app, "keys", "show", key)[1] == out  # the key itself finds the same record


def test_block_and_unblock_a_user_value(app, client, issue_key):
    key = issue_key()
    assert run(app, "block", "user", "bad actor") == (0, "user 'bad actor' is now blocked\n")
    assert run(app, "block", "user", "bad actor") == (0, "user 'bad actor' was already blocked\n")
    assert ask(client, key, user="bad actor").status_code == 403
    assert ask(client, key, user="good actor").status_code == 200
    assert run(app, "unblock", "user", "bad actor")[0] == 0
    assert ask(client, key, user="bad actor").status_code == 200
    code, out = run(app, "unblock", "user", "bad actor")
    assert code == 1 and "was not blocked" in out


def test_block_and_unblock_a_follower_stops_and_restarts_their_key(app, client, issue_key):
    key = issue_key("oNaughty")
    assert run(app, "block", "openid", "oNaughty")[0] == 0
    assert ask(client, key).status_code == 403
    assert run(app, "keys", "show", "oNaughty")[1].rstrip().endswith("BLOCKED")
    with app.app_context():
        assert services().blocks.openid_blocked("oNaughty")
    assert run(app, "unblock", "openid", "oNaughty")[0] == 0
    assert ask(client, key).status_code == 200
    code, out = run(app, "block", "openid", "not an openid!")
    assert code == 2 and "not an openid" in out


def test_an_openid_with_a_trailing_newline_is_refused_not_blocked_as_another_follower(app, client, issue_key):
    key = issue_key("oNaughty")
    code, out = run(app, "block", "openid", "oNaughty\n")
    assert code == 2 and "not an openid" in out
    assert ask(client, key).status_code == 200
