"""小一机器人: a WeChat official account and an HTTP API in front of one chat core."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask

from bot.extensions import build_services
from config.settings import OFFLINE_WARNING, Settings, load_settings


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

    from bot.wechat.courier import Courier, LocalWaits

    app.extensions["courier"] = Courier(svc, svc.conversation, LocalWaits())

    from bot import cli, edge, errors_http, metrics, observe, ops
    from bot.api import openai_door, spec_door
    from bot.wechat.views import bp as wechat_bp

    for door in (spec_door.bp, openai_door.bp):
        app.register_blueprint(door)
        metrics.name_door(door.url_prefix or "", door.name)  # a request's door is its blueprint's
    app.register_blueprint(wechat_bp)
    app.register_blueprint(ops.bp)
    observe.register(app, settings.log_content)
    errors_http.register(app)
    cli.register(app)
    app.wsgi_app = edge.BodyDeadline(app.wsgi_app, settings.body_timeout)  # type: ignore[method-assign]
    return app


def _configure_logging(settings: Settings) -> None:
    from bot.observe import install_log_context

    install_log_context()  # before any handler whose format names %(request_id)s sees a record
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )
