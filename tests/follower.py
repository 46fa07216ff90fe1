"""A follower on WeChat, as the service sees one: messages signed and encrypted by WeChat's rules."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from bot.store import keyspace
from bot.wechat import simulate
from tests.procs import wait_for

Post = Callable[[dict[str, str], bytes], tuple[int, bytes]]
_msg_ids = itertools.count(10**17)


def flask_post(client) -> Post:
    def post(params: dict[str, str], body: bytes) -> tuple[int, bytes]:
        response = client.post("/wechat", query_string=params, data=body, content_type="text/xml")
        return response.status_code, response.data

    return post


class Follower:
    def __init__(self, post: Post, account: simulate.Account, openid: str, mode: str = "safe"):
        self.post, self.account, self.openid, self.mode = post, account, openid, mode
        self.last_status = 0
        self.clock = int(time.time())  # each new message a second after the last, as when typed

    def deliver(self, msg_type: str, **fields: object) -> dict[str, str] | None:
        """Send one message; the reply's fields as the follower's WeChat reads them (None: no reply)."""
        self.clock += 1
        xml = simulate.message_xml(self.account, self.openid, msg_type, created=self.clock, **fields)
        params, body = simulate.sign(self.account, xml, self.mode)
        status, data = self.post(params, body)
        self.last_status = status
        assert status == 200, f"/wechat answered {status}: {data[:200]!r}"
        reply = simulate.open_reply(self.account, data, encrypted=self.mode != "plain")
        if reply is not None:
            assert reply["ToUserName"] == self.openid and reply["MsgType"] == "text"
        return reply

    def say(self, text: str, msg_id: int | None = None) -> str | None:
        reply = self.deliver("text", Content=text, MsgId=msg_id or next(_msg_ids))
        return None if reply is None else reply["Content"]

    def event(self, event: str, **fields: object) -> str | None:
        reply = self.deliver("event", Event=event, **fields)
        return None if reply is None else reply["Content"]

    def click(self, key: str) -> str | None:
        return self.event("CLICK", EventKey=key)


def recorded(redis, openid: str) -> bool:
    """Whether the follower's last answer is recorded in Redis (its model slot is free again).

    A reply goes to WeChat as soon as the script recording its turn is sent to Redis, so a test that
    reads Redis the moment the reply arrives may look just before Redis has run that script."""
    return wait_for(lambda: not redis.exists(keyspace.busy(openid)), timeout=5)
