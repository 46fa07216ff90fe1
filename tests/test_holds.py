"""A key's reservations are holds with a lease: one never settled (Redis or its worker went away
mid-call) goes back to the balance on the key's next request after the lease, and a late settle
charges the balance instead, so balance + used + reserved is always what the key was granted."""

from __future__ import annotations

import gc

import pytest

from bot.store import keyspace
from bot.store.apikeys import KeyStore
from bot.store.connection import connect
from bot.store.quota import KeyLedger
from bot.store.vault import Vault
from tests.conftest import TEST_SECRET
from tests.helpers import Clock

GRANT = 10_000


@pytest.fixture
def setup(redis_server, redis):
    client = connect(redis_server.url)
    keys, clock = KeyStore(client, Vault(TEST_SECRET), GRANT), Clock()
    fingerprint = keys.fingerprint(keys.issue("oHolder")[0])
    yield keys, KeyLedger(client, clock=clock, lease_seconds=60), clock, fingerprint
    client.close()


def request(ledger, fingerprint, actual: int) -> None:
    """One request that settles: reserve 100, charge `actual`."""
    payer = ledger.payer(fingerprint)
    payer.settle(payer.reserve(100, 20), actual)


def ledger_of(keys, fingerprint) -> tuple[int, int, int]:
    info = keys.info(fingerprint)
    return info.balance, info.used, info.reserved


def test_a_stranded_reservation_returns_after_the_lease(setup):
    keys, ledger, clock, fp = setup
    ledger.payer(fp).reserve(100, 20)  # never settled: Redis went away mid-call
    clock.now += 59
    request(ledger, fp, 30)
    assert ledger_of(keys, fp) == (GRANT - 100 - 30, 30, 100)  # within its lease, still held
    clock.now += 2
    request(ledger, fp, 30)
    assert ledger_of(keys, fp) == (GRANT - 60, 60, 0)


def outlived(setup):
    """A request whose hold a later request returned, its lease over: the payer and its reservation."""
    keys, ledger, clock, fp = setup
    slow = ledger.payer(fp)
    reserved = slow.reserve(100, 20)
    clock.now += 61  # the slow request (or its renewal) is late: the next reserve returns the hold
    request(ledger, fp, 0)
    return slow, reserved


def test_a_settle_after_its_hold_was_returned_charges_the_balance_once(setup):
    keys, ledger, clock, fp = setup
    slow, reserved = outlived(setup)
    assert ledger_of(keys, fp) == (GRANT, 0, 0)
    assert slow.settle(reserved, 40) == 40
    assert ledger_of(keys, fp) == (GRANT - 40, 40, 0)


def test_a_live_requests_hold_is_renewed_once_a_third_of_its_lease_is_gone(setup, redis):
    keys, ledger, clock, fp = setup
    long = ledger.payer(fp)
    reserved = long.reserve(100, 20)
    clock.now += 19  # less than a third of the 60 s lease: nothing to renew, no round trip
    assert ledger.keeper.renew_due() == 0
    clock.now += 2
    assert ledger.keeper.renew_due() == 1
    clock.now += 50  # 71 s after the reserve, 50 after the renewal
    request(ledger, fp, 30)  # a reserve that returns stranded holds: this one is not
    assert ledger_of(keys, fp) == (GRANT - 100 - 30, 30, 100)
    assert long.settle(reserved, 80) == 80
    assert ledger_of(keys, fp) == (GRANT - 110, 110, 0)


def test_a_renewal_after_the_hold_was_returned_does_not_bring_it_back(setup, redis):
    keys, ledger, clock, fp = setup
    slow, reserved = outlived(setup)  # the renewal came too late: this worker stalled
    assert ledger.keeper.renew_due() == 0
    assert redis.zcard(keyspace.api_key_holds(fp)) == 0 and ledger_of(keys, fp) == (GRANT, 0, 0)
    assert slow.settle(reserved, 40) == 40  # charged on the balance, once
    assert ledger_of(keys, fp) == (GRANT - 40, 40, 0)


def test_a_request_dropped_without_settling_is_not_renewed_and_its_hold_returns(setup, redis):
    keys, ledger, clock, fp = setup
    ledger.payer(fp).reserve(100, 20)  # its worker lost the request (a response never sent, say)
    gc.collect()
    clock.now += 30
    assert ledger.keeper.renew_due() == 0
    clock.now += 31
    request(ledger, fp, 30)
    assert ledger_of(keys, fp) == (GRANT - 30, 30, 0)
