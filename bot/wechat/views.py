"""`/wechat`: URL verification (GET) and message delivery (POST) in all three modes."""

from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot import metrics, observe
from bot.services import services
from bot.wechat import texts
from bot.wechat.courier import NO_REPLY
from bot.wechat.dispatch import Dispatcher
from bot.wechat.protocol import Delivery, WebhookError, WeChatProtocol

logger = logging.getLogger(__name__)
bp = Blueprint("wechat", __name__)

# WeChat's messages are a few KB; anything far larger is not from WeChat.
MAX_BODY_BYTES = 64 * 1024


def _plain(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype="text/plain")


@bp.errorhandler(WebhookError)
def on_webhook_error(error: WebhookError) -> Response:
    logger.warning("wechat delivery refused (%s): %s from %s", error.status, error.reason, request.remote_addr)
    return _plain("forbidden" if error.status == 403 else "bad request", error.status)


def _protocol() -> WeChatProtocol:
    protocol = services().wechat
    if protocol is None:
        logger.error("wechat delivery but WECHAT_TOKEN is not configured")
        raise WebhookError(503, "WECHAT_TOKEN is not configured")
    return protocol


def _bind_query(delivery: Delivery) -> None:
    """Refuse a signed query that already came with another message (see bot/store/replays.py)."""
    if not services().signed_queries.bind(delivery.pair, delivery.identity):
        raise WebhookError(403, "signed query reused with another message: refused as a replay")


def _reply(protocol: WeChatProtocol, delivery: Delivery, arrived: float) -> str | None:
    """The dispatcher's reply (None: stay silent); a follower sees a polite note, never a Python error."""
    try:
        if protocol.guards_replays:
            _bind_query(delivery)
        dispatcher: Dispatcher = current_app.extensions["dispatcher"]  # built by create_app
        return dispatcher.reply(delivery.message, arrived)
    except WebhookError:
        raise
    except redis.RedisError as error:
        logger.error("wechat reply for %s: redis unavailable (%s)", delivery.message.source, type(error).__name__)
        metrics.count_redis_error("wechat")
        return texts.BUSY
    except Exception:
        logger.exception("wechat reply for %s failed", delivery.message.source)
        return texts.UPSTREAM_FAILED


@bp.get("/wechat")
def verify_url() -> Response:
    """The console's URL check: echo `echostr` if the signature is ours."""
    _protocol().check_signature(request.args)
    return _plain(request.args.get("echostr", ""))


@bp.post("/wechat")
def receive() -> Response:
    arrived = time.monotonic()
    protocol = _protocol()
    protocol.check_signature(request.args)  # before reading a byte of the body
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise WebhookError(413, f"body over {MAX_BODY_BYTES} bytes") from None
    delivery = protocol.read(request.args, body)
    g.openid = delivery.message.source  # the request's log line names the follower
    observe.note_content(str(getattr(delivery.message, "content", "") or ""))
    clock = current_app.extensions["dispatcher"].courier.clock
    clock.begin()
    text = _reply(protocol, delivery, arrived)
    if text is None:
        # Not ready within this delivery's window: stay silent past WeChat's deadline, so that it sends
        # the message again (any reply now, even an empty one, would end the retries).
        time.sleep(max(0.0, arrived + services().settings.wechat_timeout + 1.0 - time.monotonic()))
        return _plain("")
    response = (
        _plain("success") if text == NO_REPLY else Response(protocol.render(delivery, text), mimetype="application/xml")
    )
    # Once written out: how late a reply decided at its deadline left (bot/wechat/deadline.py).
    response.call_on_close(clock.sent)
    return response
