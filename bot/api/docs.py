"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 document of both JSON doors (bot/api/openapi.json).

Hand-written beside the code it describes; tests/test_openapi.py fuzzes the doors against it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Response, jsonify

from bot.api import bp

DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def openapi_document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
