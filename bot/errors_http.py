"""How failures look over HTTP: each JSON door answers its own in its own shape, never a stack trace.

A door hands its blueprint and its way of writing a Failure to `answer_failures`; requests outside
the doors (WeChat, ops) get plain text. This module knows no door.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from bot import metrics
from bot.errors import ChatError, Failure

logger = logging.getLogger(__name__)

# How a door writes a failure: (failure, message, Retry-After seconds or None) → its response.
Respond = Callable[[Failure, str, "int | None"], Response]
Handler = Callable[[Exception], "Response | HTTPException"]

_HTTP_FAILURES = {
    400: Failure.BAD_REQUEST,
    404: Failure.NOT_FOUND,
    405: Failure.METHOD_NOT_ALLOWED,
    413: Failure.BODY_TOO_LARGE,
}


def answer_failures(bp: Blueprint, respond: Respond) -> Handler:
    """Answer every failure of `bp`'s requests with `respond`, and those of requests under its
    prefix that match no route (a 404 or 405 is found before any blueprint is). Returns the
    handler, for a view serving another door's request in that door's shape."""

    def answer(error: Exception) -> Response | HTTPException:
        failure, message, retry_after = _failure_of(error)
        if failure is None:
            return error  # an HTTP answer the door has no code for: Werkzeug's own
        g.failure = failure  # the request's outcome on /metrics and in its log line
        return respond(failure, message or failure.default_message, retry_after)

    bp.register_error_handler(Exception, answer)  # HTTPException, ChatError, RedisError and the rest
    bp.record_once(lambda state: state.app.extensions.setdefault("door_failures", {}).update({bp.name: answer}))
    return answer


def _failure_of(error: Exception) -> tuple[Failure | None, str | None, int | None]:
    if isinstance(error, ChatError):
        return error.failure, error.message, error.retry_after
    if isinstance(error, HTTPException):
        return _HTTP_FAILURES.get(error.code or 0), None, None
    if isinstance(error, redis.RedisError):
        _note_redis_error(error)
        return Failure.SERVICE_UNAVAILABLE, None, None
    logger.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return Failure.INTERNAL, None, None


def _note_redis_error(error: redis.RedisError) -> None:
    logger.error("redis unavailable on %s %s: %s", request.method, request.path, type(error).__name__)
    metrics.count_redis_error(g.get("door", "other"))


def register(app: Flask) -> None:
    """The answers outside the doors: plain text, and HTTP errors as Werkzeug writes them."""

    @app.errorhandler(redis.RedisError)
    def on_redis_error(error: redis.RedisError) -> Response:
        _note_redis_error(error)
        return Response("service unavailable\n", 503, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException) -> Response | HTTPException:
        door = current_app.extensions.get("door_failures", {}).get(metrics.door_of(request.path))
        return door(error) if door is not None else error

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return Response("internal error\n", 500, mimetype="text/plain")
