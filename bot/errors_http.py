"""How failures look over HTTP: JSON `{code, msg}` on the JSON doors, never a stack trace."""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from bot import metrics
from bot.api.openai_format import error_response as openai_error_response
from bot.errors import ChatError, Failure

logger = logging.getLogger(__name__)

_HTTP_FAILURES = {
    400: Failure.BAD_REQUEST,
    404: Failure.NOT_FOUND,
    405: Failure.METHOD_NOT_ALLOWED,
    413: Failure.BODY_TOO_LARGE,
}


def failure_response(failure: Failure, message: str | None = None, retry_after: int | None = None) -> Response:
    """The spec's error shape: a stable code, a human msg, and the matching HTTP status.

    On the OpenAI-compatible door (`/v1/…`) the same failure takes OpenAI's shape instead.
    """
    g.failure = failure  # the request's outcome on /metrics and in its log line
    if g.get("error_shape", "openai" if request.path.startswith("/v1/") else "spec") == "openai":
        return openai_error_response(failure, message or failure.default_message, retry_after)
    response = jsonify(code=failure.code, msg=message or failure.default_message)
    response.status_code = failure.http_status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def chat_error_response(error: ChatError) -> Response:
    return failure_response(error.failure, error.message, error.retry_after)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/v1/"))


def register(app: Flask) -> None:
    @app.errorhandler(ChatError)
    def on_chat_error(error: ChatError):
        return chat_error_response(error)

    @app.errorhandler(redis.RedisError)
    def on_redis_error(error: redis.RedisError):
        logger.error("redis unavailable on %s %s: %s", request.method, request.path, type(error).__name__)
        metrics.count_redis_error(metrics.door_of(request.path))
        if _wants_json():
            return failure_response(Failure.SERVICE_UNAVAILABLE)
        return Response("service unavailable\n", 503, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException):
        failure = _HTTP_FAILURES.get(error.code or 0)
        if failure and _wants_json():
            return failure_response(failure)
        return error

    @app.errorhandler(Exception)
    def on_unexpected(error: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return failure_response(Failure.INTERNAL)
        return Response("internal error\n", 500, mimetype="text/plain")
