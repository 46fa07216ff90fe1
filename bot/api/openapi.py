"""The OpenAPI 3.1 document of both JSON doors, served at `GET /api/v1/openapi.json`.

Its schemas are generated from the models the doors validate and answer with (bot/api/bodies.py),
and each operation's error statuses and codes from the failures table (bot/errors.py) through each
door's own mapping: only the paths below are written by hand. tests/test_openapi.py fuzzes the
doors against the document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from bot.api import bodies
from bot.api.openai_format import error_body
from bot.errors import Failure

REF = "#/components/schemas/{model}"
REQUESTS = (bodies.SpecChatRequest, bodies.OpenAIChatRequest)
ANSWERS = (
    bodies.SpecCompletion,
    bodies.SpecChunk,
    bodies.SpecError,
    bodies.OpenAICompletion,
    bodies.OpenAIChunk,
    bodies.OpenAIError,
    bodies.ModelList,
)
# Failures of a request no route matched, not of an operation.
_NOT_OPERATIONS = (Failure.NOT_FOUND, Failure.METHOD_NOT_ALLOWED)
CHAT_FAILURES = tuple(f for f in Failure if f not in _NOT_OPERATIONS)
SPEC_FAILURES = tuple(f for f in CHAT_FAILURES if f is not Failure.MODEL_NOT_FOUND)  # the spec names no model
MODEL_FAILURES = (Failure.MISSING_KEY, Failure.INVALID_KEY, Failure.INTERNAL, Failure.SERVICE_UNAVAILABLE)
_ANY_OBJECT = {"application/json": {"schema": {"type": "object"}}}
INFO = {
    "title": "小一机器人 chat API",
    "version": "1.0.0",
    "description": "The spec's chat API (`/api/v1/…`, key in the body) and the OpenAI-compatible API "
    "(`/v1/…`, `Authorization: Bearer`). One key, one balance, the same dialogue rules. Rules a schema "
    "cannot state (roles alternate, an odd number of messages, the last at most 2000 characters, and "
    "2000 in all after trimming) are in the API guide.",
}


class _Untitled(GenerateJsonSchema):
    """No `title` on every field: the field's name says it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schemas() -> dict[str, Any]:
    """components.schemas: each request as it is validated, each answer as it is written."""
    models: list[tuple[type[bodies.BaseModel], JsonSchemaMode]] = [(m, "validation") for m in REQUESTS]
    models += [(m, "serialization") for m in ANSWERS]
    _, top = models_json_schema(models, ref_template=REF, schema_generator=_Untitled)
    return top["$defs"]


def _json(*names: str) -> dict[str, Any]:
    refs = [{"$ref": REF.format(model=name)} for name in names]
    return {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}}


def _events(chunk: dict[str, Any], description: str, last: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "string", "contentMediaType": "application/json", "contentSchema": chunk}
    if last is not None:  # a last event that is not JSON: OpenAI's [DONE]
        data = {"anyOf": [{"const": last}, data]}
    schema = {"type": "object", "required": ["data"], "properties": {"data": data | {"description": description}}}
    return {"text/event-stream": {"schema": schema}}


def _errors(spec: tuple[Failure, ...] = (), openai: tuple[Failure, ...] = ()) -> dict[str, Any]:
    """One response per HTTP status the failures answer with, in the shape(s) of the door(s) answering."""
    shapes: dict[int, dict[str, list[str]]] = {}
    for failure in spec:
        shapes.setdefault(failure.http_status, {}).setdefault("SpecError", []).append(
            f"{failure.code} {failure.default_message}"
        )
    for failure in openai:
        body, status = error_body(failure, "")
        said = body.error.type + (f"/{body.error.code}" if body.error.code else "")
        shapes.setdefault(status, {}).setdefault("OpenAIError", []).append(said)
    responses = {}
    for status, by_shape in sorted(shapes.items()):
        description = "; ".join(f"{shape}: {', '.join(dict.fromkeys(said))}" for shape, said in by_shape.items())
        responses[str(status)] = {"description": description, "content": _json(*by_shape)}
        if status == 429:
            seconds = {"description": "seconds until a request would pass the limit", "schema": {"type": "string"}}
            responses[str(status)]["headers"] = {"Retry-After": seconds}
    return responses


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _spec_chat() -> dict[str, Any]:
    events = _events(_ref("SpecChunk"), "a piece; the last has usage")
    return {
        "operationId": "specChatCompletions",
        "summary": "Answer the last user message of a dialogue (the spec's door)",
        "security": [],
        "requestBody": {"required": True, "content": _json("SpecChatRequest")},
        "responses": {"200": {"description": "the answer, or its events", "content": _json("SpecCompletion") | events}}
        | _errors(spec=SPEC_FAILURES),
    }


def _openai_chat() -> dict[str, Any]:
    chunk = {"anyOf": [_ref("OpenAIChunk"), _ref("OpenAIError")]}
    answer = _json("OpenAICompletion", "SpecCompletion") | _events(chunk, "a chunk, an error, or [DONE]", "[DONE]")
    body = {"anyOf": [_ref("OpenAIChatRequest"), _ref("SpecChatRequest")]}
    return {
        "operationId": "openaiChatCompletions",
        "summary": "OpenAI's chat completions; a spec body without Authorization is the spec's door",
        "security": [{"bearer": []}, {}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": {"description": "chat.completion, or chunks ending with [DONE]", "content": answer}}
        | _errors(spec=SPEC_FAILURES, openai=CHAT_FAILURES),
    }


def _model_list() -> dict[str, Any]:
    return {
        "operationId": "listModels",
        "summary": "The public models: those the upstreams list, or the one configured",
        "security": [{"bearer": []}],
        "responses": {"200": {"description": "the models served", "content": _json("ModelList")}}
        | _errors(openai=MODEL_FAILURES),
    }


def _model() -> dict[str, Any]:
    model_id = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    return {
        "operationId": "retrieveModel",
        "summary": "One model, if it is served",
        "security": [{"bearer": []}],
        "parameters": [model_id],
        "responses": {"200": {"description": "the model", "content": _json("Model")}}
        | _errors(openai=(*MODEL_FAILURES, Failure.MODEL_NOT_FOUND)),
    }


def _paths() -> dict[str, Any]:
    document = {"operationId": "openapiDocument", "summary": "This document", "security": []}
    document["responses"] = {"200": {"description": "OpenAPI 3.1", "content": _ANY_OBJECT}}
    return {
        "/api/v1/chat/completions": {"post": _spec_chat()},
        "/v1/chat/completions": {"post": _openai_chat()},
        "/v1/models": {"get": _model_list()},
        "/v1/models/{model_id}": {"get": _model()},
        "/api/v1/openapi.json": {"get": document},
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Built on first request, not at start-up: generating the schemas takes a few milliseconds."""
    bearer = {
        "type": "http",
        "scheme": "bearer",
        "description": "the follower's API key, `sk-` and 48 letters or digits",
    }
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {"securitySchemes": {"bearer": bearer}, "schemas": schemas()},
    }
