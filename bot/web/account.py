"""What /me shows a follower: their key (masked), balance and use, 30 days of tokens, recent requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.ids import CHINA, today
from bot.services import services
from bot.store import keyspace
from bot.store.apikeys import KeyInfo
from bot.store.usage import Request, day_before, read_history

CHART_DAYS = 30


def mask(key: str) -> str:
    """What a page shows of a key before "show": its prefix and last four characters."""
    return f"{key[:3]}{'•' * 8}{key[-4:]}"


@dataclass(frozen=True)
class Day:
    day: str  # YYYYMMDD, China time
    api: int
    wechat: int

    @property
    def label(self) -> str:
        return f"{self.day[4:6]}-{self.day[6:]}"

    @property
    def total(self) -> int:
        return self.api + self.wechat


@dataclass(frozen=True)
class Account:
    openid: str
    masked: str | None  # None: no key now
    revoked: bool  # had a key, which was revoked: /me offers a new one, keeping the balance
    info: KeyInfo | None
    parked: int  # the balance waiting for the next key (revoked)
    wechat_today: int
    days: list[Day] = field(default_factory=list)
    recent: list[Request] = field(default_factory=list)


def account_of(openid: str) -> Account:
    """Everything /me shows, read for this request (nothing cached: a rotation shows at once)."""
    svc = services()
    key, had_key = svc.keys.current_key(openid)
    fp = svc.keys.fingerprint(key) if key else None
    info = svc.keys.info(fp) if fp else None
    api, wechat, recent = read_history(svc.redis, svc.keys.history_keys(openid), openid)
    parked = 0 if key else int(svc.redis.hget(keyspace.account(openid), "balance") or 0)
    return Account(
        openid=openid,
        masked=mask(key) if key else None,
        revoked=had_key and key is None,
        info=info,
        parked=parked,
        wechat_today=svc.conversation.used_today(openid),
        days=last_days(api, wechat),
        recent=recent,
    )


def last_days(api: dict[str, int], wechat: dict[str, int], count: int = CHART_DAYS) -> list[Day]:
    """The last `count` days in China time, oldest first, with each door's tokens (0 when idle)."""
    now = today()
    days = [day_before(now, back) for back in range(count - 1, -1, -1)]
    return [Day(d, api.get(d, 0), wechat.get(d, 0)) for d in days]


def china_time(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%m-%d %H:%M:%S")
