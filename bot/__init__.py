"""小一机器人: a WeChat official account and an HTTP API in front of one chat core."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from flask import Flask

from bot.services import Services, build_services
from config.settings import OFFLINE_WARNING, Settings, load_settings

if TYPE_CHECKING:
    from bot.wechat.courier import Courier
    from bot.wechat.dispatch import Dispatcher


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """The WSGI app. `config` replaces the environment entirely (tests pass their own settings)."""
    settings = load_settings(config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.ensure_ascii = False  # Chinese answers stay readable, as in the spec's example
    app.json.sort_keys = False
    _configure_logging(settings)
    if settings.offline and not os.environ.get("BOT_STARTUP_CHECKED"):
        logging.getLogger(__name__).warning(OFFLINE_WARNING)
    app.extensions["bot"] = svc = build_services(settings)
    app.extensions["courier"], app.extensions["dispatcher"] = _wechat_door(svc)

    from bot import cli, console, edge, errors_http, metrics, observe, ops, web
    from bot.api import openai_door, spec_door
    from bot.wechat.views import bp as wechat_bp

    # A request's door is its blueprint's. The spec's door answers every /api/… path, /api/v1's or
    # not, so that a caller who misses the version still gets `{code, msg}`, as before the doors split.
    for door, claims in ((spec_door.bp, "/api"), (openai_door.bp, openai_door.bp.url_prefix or "")):
        app.register_blueprint(door)
        metrics.name_door(claims, door.name)
    app.register_blueprint(wechat_bp)
    app.register_blueprint(ops.bp)
    observe.register(app, settings.log_content)
    errors_http.register(app)
    cli.register(app)
    web.register(app, svc, exempt=[spec_door.bp, openai_door.bp, wechat_bp, ops.bp])
    console.register(app)
    app.wsgi_app = edge.BodyDeadline(app.wsgi_app, settings.body_timeout)  # type: ignore[method-assign]
    return app


def _wechat_door(svc: Services) -> tuple[Courier, Dispatcher]:
    """The WeChat door's courier (its model calls outlive a delivery) and dispatcher, each given only
    the clients and settings it uses."""
    from flask import request

    from bot.chat.routing import upstream_states
    from bot.store.audit import AuditLog
    from bot.store.drafts import Drafts
    from bot.web.signins import SignIns
    from bot.wechat.admin import AdminCommands
    from bot.wechat.courier import Courier
    from bot.wechat.deadline import ReplyClock
    from bot.wechat.dispatch import Dispatcher
    from bot.wechat.partials import Partials
    from bot.wechat.waits import LocalWaits

    settings = svc.settings
    waits = LocalWaits()
    drafts = Drafts(svc.redis, settings.lease_seconds, settings.reply_retention_seconds)
    courier = Courier(
        svc.conversation, svc.chat, svc.wakeups, svc.wechat_client, waits,
        window=settings.wechat_window,
        push_mode=settings.wechat_reply_mode == "customer_service",
        daily_tokens=settings.limits.daily_chat_tokens,
        guard=svc.guard,
        drafts=drafts,
        partials=Partials(svc.conversation, drafts, waits, settings.wechat_partial),
        clock=ReplyClock(settings.wechat_window, settings.wechat_timeout),
    )  # fmt: skip
    admin = AdminCommands(
        svc.keys, svc.conversation, svc.stats, svc.wechat_client, guard=svc.guard,
        upstreams=lambda: upstream_states(svc.provider), audit=AuditLog(svc.redis), menu_redis=svc.redis,
    )  # fmt: skip
    dispatcher = Dispatcher(
        svc.conversation, svc.keys, courier, admin,
        admins=settings.admin_openids,
        key_keywords=settings.key_keywords,
        public_url=settings.public_url,
        reset_words=settings.reset_keywords,
        base_url=lambda: request.url_root,  # the request's own, when BOT_PUBLIC_URL is not set
        guard=svc.guard,
        login_keywords=settings.portal.login_keywords,
        login_link=SignIns(svc.redis).issue_link,
        tally=svc.tally,
    )  # fmt: skip
    return courier, dispatcher


def _configure_logging(settings: Settings) -> None:
    from bot.observe import install_log_context

    install_log_context()  # before any handler whose format names %(request_id)s sees a record
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )
