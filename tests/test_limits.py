"""Rate limits and blocks in a real Redis: shared by every client, exact over any 60 seconds."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from bot.chat.dialogue import MAX_CHARS
from bot.errors import ChatError, Failure
from bot.store import keyspace
from bot.store.apikeys import KeyStore
from bot.store.blocks import Blocklist
from bot.store.connection import connect
from bot.store.conversation import Conversation
from bot.store.quota import KeyLedger
from bot.store.vault import Vault
from bot.wechat import texts
from tests.conftest import TEST_SECRET
from tests.helpers import Clock


@pytest.fixture
def store(redis_server, redis):
    client = connect(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def keys(store):
    return KeyStore(store, Vault(TEST_SECRET), 10_000)


def refused(call) -> ChatError:
    with pytest.raises(ChatError) as error:
        call()
    return error.value


def conversation(client, rpm, clock):
    return Conversation(
        client, lease_seconds=60, retention_seconds=3600, idle_seconds=3600, rpm=rpm, clock=clock,
        word=texts.owed_reply, history_chars=MAX_CHARS,
    )  # fmt: skip


_ids = iter(range(10**6))


def claim(conv, openid):
    """A new question from `openid`: its refusal (None if admitted)."""
    return conv.claim(openid, f"m{next(_ids)}", "问题", ask=True).refusal


def test_a_follower_gets_rpm_messages_in_any_minute_and_the_next_once_the_oldest_leaves(store):
    clock = Clock()
    conv = conversation(store, 3, clock)
    for _ in range(3):
        assert claim(conv, "oAlice") is None
        clock.now += 10
    assert claim(conv, "oAlice") is Failure.RATE_LIMITED  # the first, at t=0, leaves at t=60; now t=30
    clock.now += 29.5
    assert claim(conv, "oAlice") is Failure.RATE_LIMITED
    clock.now += 0.5
    assert claim(conv, "oAlice") is None
    clock.now += 9.5
    assert claim(conv, "oAlice") is Failure.RATE_LIMITED  # the next oldest is from t=10
    clock.now += 0.5
    assert claim(conv, "oAlice") is None


def test_refused_messages_do_not_count(store):
    clock = Clock()
    conv = conversation(store, 2, clock)
    assert [claim(conv, "oBob") for _ in range(7)] == [None, None] + [Failure.RATE_LIMITED] * 5
    clock.now += 60
    assert [claim(conv, "oBob") for _ in range(3)] == [None, None, Failure.RATE_LIMITED]


def test_every_worker_shares_the_same_window(redis_server, store):
    other = connect(redis_server.url)
    clock = Clock()
    assert claim(conversation(store, 2, clock), "oCarol") is None
    assert claim(conversation(other, 2, clock), "oCarol") is None
    assert claim(conversation(store, 2, clock), "oCarol") is Failure.RATE_LIMITED
    assert claim(conversation(other, 2, clock), "oDave") is None  # another follower has their own window
    other.close()


def test_zero_turns_the_follower_limit_off(store):
    conv = conversation(store, 0, Clock())
    assert all(claim(conv, "oEve") is None for _ in range(200))
    assert not store.exists(keyspace.follower_rate("oEve"))


def test_a_blocked_follower_is_refused_until_unblocked_and_refusals_count_like_any_message(store):
    clock = Clock()
    conv, blocks = conversation(store, 1, clock), Blocklist(store)
    assert blocks.block_openid("oFrank") and not blocks.block_openid("oFrank")
    assert claim(conv, "oFrank") is Failure.BLOCKED
    assert blocks.unblock_openid("oFrank") and not blocks.openid_blocked("oFrank")
    assert claim(conv, "oFrank") is Failure.RATE_LIMITED  # the refused question was a message of the minute
    clock.now += 61
    assert claim(conv, "oFrank") is None


def reserve(ledger, keys, openid, user=None, user_blocked=False):
    fingerprint = keys.fingerprint(keys.issue(openid)[0])
    return ledger.payer(fingerprint, user, user_blocked).reserve(20, 20)


def test_a_key_gets_key_rpm_requests_and_a_refused_one_reserves_nothing(store, keys):
    ledger = KeyLedger(store, key_rpm=3, user_rpm=0, clock=Clock())
    for _ in range(3):
        reserve(ledger, keys, "oGrace")
    error = refused(lambda: reserve(ledger, keys, "oGrace"))
    assert (error.failure, error.retry_after) == (Failure.RATE_LIMITED, 60)
    assert "该 key 每分钟最多 3 次" in error.message
    info = keys.info(keys.fingerprint_of("oGrace"))
    assert (info.balance, info.reserved) == (10_000 - 60, 60)


def test_each_user_value_of_a_key_has_its_own_limit_within_the_keys(store, keys):
    ledger = KeyLedger(store, key_rpm=5, user_rpm=2, clock=Clock())
    reserve(ledger, keys, "oHeidi", "alice")
    reserve(ledger, keys, "oHeidi", "alice")
    error = refused(lambda: reserve(ledger, keys, "oHeidi", "alice"))
    assert error.failure is Failure.RATE_LIMITED and "该 user 每分钟最多 2 次" in error.message
    reserve(ledger, keys, "oHeidi", "bob")
    reserve(ledger, keys, "oHeidi")  # no user: only the key's limit applies
    reserve(ledger, keys, "oHeidi", "dave")  # the key's fifth request of the minute
    assert "该 key" in refused(lambda: reserve(ledger, keys, "oHeidi", "carol")).message
    reserve(ledger, keys, "oIvan", "alice")  # another key's "alice" is another end user


def test_a_blocked_user_value_or_follower_is_refused_before_anything_is_counted(store, keys):
    ledger = KeyLedger(store, key_rpm=1, user_rpm=1, clock=Clock())
    assert refused(lambda: reserve(ledger, keys, "oJudy", "mallory", user_blocked=True)).failure is Failure.BLOCKED
    Blocklist(store).block_openid("oJudy")
    assert refused(lambda: reserve(ledger, keys, "oJudy")).failure is Failure.BLOCKED
    assert keys.info(keys.fingerprint_of("oJudy")).blocked
    Blocklist(store).unblock_openid("oJudy")
    assert reserve(ledger, keys, "oJudy") == 20  # the one request of the minute is still there


def test_a_blocked_followers_rotated_key_is_blocked(store, keys):
    keys.issue("oKen")
    Blocklist(store).block_openid("oKen")
    rotated = keys.fingerprint(keys.rotate("oKen"))
    assert refused(lambda: KeyLedger(store).payer(rotated).reserve(1, 1)).failure is Failure.BLOCKED


def test_a_block_racing_a_revoke_does_not_bring_the_revoked_key_back(redis_server, store, keys):
    revoked = keys.fingerprint(keys.issue("oLeo")[0])
    # Another worker revokes the key right after the block has read which key record to flag: the
    # one moment a block can reach a revoked key. Every command still runs in the real Redis.
    racing = connect(redis_server.url)
    read = racing.hget

    def read_then_revoke(name, field):
        value = read(name, field)
        if field == "key_fp":
            keys.revoke("oLeo")
        return value

    racing.hget = read_then_revoke
    assert Blocklist(racing).block_openid("oLeo")
    racing.close()
    assert keys.info(revoked) is None  # `keys show` finds no record
    error = refused(lambda: KeyLedger(store).payer(revoked).reserve(1, 1))
    assert error.failure is Failure.INVALID_KEY  # the caller is told the key is revoked, not blocked


def test_user_blocks_are_global_and_survive_odd_values(store):
    blocks = Blocklist(store)
    odd = "{weird}:user:值 with spaces"
    assert blocks.block_user(odd) and blocks.user_blocked(odd) and not blocks.user_blocked("other")
    assert store.get(keyspace.user_blocked(odd)) == odd  # an admin can read what was blocked
    assert blocks.unblock_user(odd) and not blocks.unblock_user(odd)


def test_every_script_touches_one_cluster_slot():
    fingerprint = "f" * 64
    api_keys = [keyspace.api_key(fingerprint), keyspace.api_key_rate(fingerprint)]
    api_keys += [keyspace.api_key_user_rate(fingerprint, "{x}"), keyspace.api_key_day(fingerprint, "20260101")]
    api_keys += [keyspace.api_key_holds(fingerprint), keyspace.api_key_revoked_holds(fingerprint)]
    follower = [keyspace.follower_blocked("oX"), keyspace.follower_rate("oX"), keyspace.follower_day("oX", "1")]
    follower += [keyspace.message("oX", "1"), keyspace.outbox("oX"), keyspace.busy("oX"), keyspace.history("oX")]
    for group in (api_keys, follower):
        assert len({key_slot(k.encode()) for k in group}) == 1, group
