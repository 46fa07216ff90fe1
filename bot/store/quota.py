"""Who pays for a chat turn, charged atomically: reserve before the upstream call, settle after.

Two payers share the Payer contract of bot/chat/core.py: an API key's balance (KeyPayer) and a
follower's daily allowance for WeChat chat (TurnAllowance). Each step is one Lua script on one
owner's keys, so concurrent requests on any number of workers can never overdraw, and the sum of
what is charged is the sum of the usage reported. A refund is a settle of 0.

A key's reservation is also a hold with an expiry (the lease): a request that never settles, because
Redis went away mid-call or its worker died, has its tokens returned by the key's next reserve once
the lease has passed. While the request lives its hold is renewed (store/holds.py), so a stream
longer than the lease keeps what it reserved. A settle that comes after its hold was returned
charges the balance instead. A request in flight when its key is revoked charges the follower's
funds, wherever they are now (store/funds.py), and gives back the rest of its reservation there.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import redis

from bot.errors import ChatError, Failure
from bot.ids import today, valid_openid
from bot.store import keyspace
from bot.store.funds import Funds
from bot.store.holds import Hold, HoldKeeper
from bot.store.keyspace import DAY_TTL
from bot.store.limits import WINDOW_MS, now_ms, rate_limited, request_member
from bot.store.quota_lua import Reservation, Reserve, Reserved, Settle
from bot.store.usage import KeyHistory
from bot.tally import Tally

Clock = Callable[[], float]


class KeyLedger:
    """The scripts that charge API keys; `payer(fp)` binds them to one key for one request."""

    def __init__(
        self, client: redis.Redis, key_rpm: int = 0, user_rpm: int = 0, clock: Clock = time.time,
        lease_seconds: float = 90.0, tally: Tally | None = None,
    ):  # fmt: skip
        self.tally = tally  # the console's active followers: a key's owner, once a request is admitted
        self.key_rpm = key_rpm
        self.user_rpm = user_rpm
        self.lease_ms = int(lease_seconds * 1000)
        self.clock = clock
        self._reserve = Reserve(client)
        self._settle = Settle(client)
        self.keeper = HoldKeeper(client, self.lease_ms, clock)
        self.funds = Funds(client)

    def payer(
        self, fingerprint: str, user: str | None = None, user_blocked: bool = False,
        adopt: Callable[[], bool] | None = None,
    ) -> KeyPayer:  # fmt: skip
        """The key paying for one request made for `user` (the API's optional end-user id).
        `adopt`: asked for a key the ledger does not find; moves it from a previous BOT_SECRET if it
        is there (KeyStore.adopt: nothing to do, and no Redis, unless a rotation is under way)."""
        return KeyPayer(self, fingerprint, user, user_blocked, adopt)


class KeyPayer:
    """One API key paying for one request: reserve, then settle (a refund is a settle of 0).

    Reserving also admits the request: blocks and the per-key and per-user rate limits are checked
    and counted in the same script, so a request costs Redis two round trips, reserve and settle.
    """

    kind = "key"  # on /metrics: tokens charged to API keys

    def __init__(
        self, ledger: KeyLedger, fingerprint: str, user: str | None = None, user_blocked: bool = False,
        adopt: Callable[[], bool] | None = None,
    ):  # fmt: skip
        self.ledger = ledger
        self.adopt = adopt
        self.fingerprint = fingerprint
        self.user = user
        self.user_blocked = user_blocked
        self.owner = ""
        self.hold = secrets.token_hex(8)  # names this request's reservation in the key's holds
        self.history = KeyHistory(fingerprint)  # the key's days and recent requests, written by both scripts
        self.held: Hold | None = None  # the reservation, renewed while this request lives

    def reserve(self, wanted: int, minimum: int) -> int:
        """Set aside up to `wanted` tokens, or ChatError: unknown key, blocked, rate limited, too poor."""
        ledger, now, fp = self.ledger, now_ms(self.ledger.clock), self.fingerprint
        holds = keyspace.api_key_holds(fp)
        got = ledger._reserve(
            record=keyspace.api_key(fp), holds=holds, key_window=keyspace.api_key_rate(fp),
            recent=keyspace.api_key_recent(fp),
            user_window=keyspace.api_key_user_rate(fp, self.user) if self.user else None,
            wanted=wanted, minimum=minimum, now_ms=now, window_ms=WINDOW_MS, key_rpm=ledger.key_rpm,
            user_rpm=ledger.user_rpm, member=request_member(now), user_blocked=int(self.user_blocked),
            hold=self.hold, lease_ms=ledger.lease_ms, **self.history.reserve_inputs(now),
        )  # fmt: skip
        if got.status is Reserved.UNKNOWN_KEY:
            adopt, self.adopt = self.adopt, None
            if adopt is not None and adopt():  # a key from before a BOT_SECRET rotation, moved now
                return self.reserve(wanted, minimum)
            raise ChatError(Failure.INVALID_KEY)
        if got.status is not Reserved.RESERVED:
            raise self._refusal(got, minimum)
        self.owner = got.owner
        if ledger.tally is not None and valid_openid(got.owner):
            ledger.tally.saw(got.owner)
        self.held = Hold(holds, f"{self.hold}:{got.amount}", now + ledger.lease_ms)
        ledger.keeper.watch(self.held)
        return got.amount

    def _refusal(self, got: Reservation, minimum: int) -> ChatError:
        if got.status is Reserved.BLOCKED:
            return ChatError(Failure.BLOCKED)
        if got.status is Reserved.KEY_RATE:
            return rate_limited(got.wait_ms, f"该 key 每分钟最多 {self.ledger.key_rpm} 次")
        if got.status is Reserved.USER_RATE:
            return rate_limited(got.wait_ms, f"该 user 每分钟最多 {self.ledger.user_rpm} 次")
        return ChatError(Failure.QUOTA_EXHAUSTED, f"余额 {got.balance}，本次请求至少需要 {minimum}")

    def settle(self, reserved: int, actual: int) -> int:
        """Charge `actual` tokens against `reserved` and return the rest; answers what was charged."""
        if self.held is not None:
            self.ledger.keeper.release(self.held)  # first: a settle that fails leaves a hold to return
        fp = self.fingerprint
        settled = self.ledger._settle(
            record=keyspace.api_key(fp), day=keyspace.api_key_day(fp, today()), holds=keyspace.api_key_holds(fp),
            revoked_holds=keyspace.api_key_revoked_holds(fp), reserved=reserved, actual=actual, day_ttl=DAY_TTL,
            hold=f"{self.hold}:{reserved}", **self.history.settle_inputs(now_ms(self.ledger.clock)),
        )  # fmt: skip
        if settled.returned is not None and valid_openid(self.owner):  # its key was revoked meanwhile
            self.ledger.funds.deposit(self.owner, settled.returned, settled.charged)
        return settled.charged


class TurnAllowance:
    """A follower's daily allowance for WeChat chat, paying for one turn.

    It is read when the turn takes the follower's single model slot (bot/store/conversation.py), so
    no other turn of theirs can spend it meanwhile: checking it here is exact, and the charge is
    recorded with the turn itself, in the same script. An answer longer than what was left is
    counted in full, so a day can pass the cap by one answer; the next question is then refused."""

    kind = "follower"  # on /metrics: tokens charged to followers' daily allowance

    def __init__(self, cap: int, used_today: int):
        self.cap = cap
        self.used_today = used_today
        self.charged = 0

    def reserve(self, wanted: int, minimum: int) -> int:
        if self.cap <= 0:
            return wanted
        left = self.cap - self.used_today
        if left < minimum:
            detail = f"今日额度 {self.cap}，还剩 {max(left, 0)}，本次至少需要 {minimum}"
            raise ChatError(Failure.QUOTA_EXHAUSTED, detail)
        return min(wanted, left)

    def settle(self, reserved: int, actual: int) -> int:
        self.charged = actual
        return actual
