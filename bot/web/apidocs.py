"""The API reference page's content, read from the service's own OpenAPI document (bot/api/openapi.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from bot.api.openapi import openapi_document


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    fields: list[Field]
    responses: list[tuple[str, str]]  # (status, description)


@functools.cache
def read() -> list[Operation]:
    """Every operation of the document, its request body's fields and its answers."""
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    return [
        Operation(method.upper(), path, op.get("summary", ""), _fields(op, schemas), _responses(op))
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
    ]


def _fields(op: dict[str, Any], schemas: dict[str, Any]) -> list[Field]:
    ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    schema = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else {}
    required = set(schema.get("required", ()))
    return [
        Field(name, _type(spec), name in required, spec.get("description", ""))
        for name, spec in schema.get("properties", {}).items()
    ]


def _type(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " | ".join(_type(s) for s in spec["anyOf"] if s.get("type") != "null")
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if spec.get("type") == "array":
        return f"array of {_type(spec.get('items', {}))}"
    return spec.get("type", "any")


def _responses(op: dict[str, Any]) -> list[tuple[str, str]]:
    return [(status, answer.get("description", "")) for status, answer in op.get("responses", {}).items()]
