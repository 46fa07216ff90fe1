"""The OpenAPI document, and schemathesis fuzzing both JSON doors against it: no server errors.

schemathesis runs in-process against the WSGI app (real Redis, the upstream double answering), with
a bounded number of examples per operation. Every response must be documented (status, content
type, body shape); none may be a 5xx: the model answers, so 502/503/504 cannot be honest here.
Rules a schema cannot state (roles alternate, odd length, the character budget) make some valid-looking
bodies a 400, so schemathesis's positive/negative-acceptance checks are not run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.extensions import services

# Per operation and mode: the whole run stays well under a minute (FUZZ_EXAMPLES=500 for a long hunt).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


def test_the_document_is_served_and_describes_both_doors(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/chat/completions", "/v1/chat/completions", "/v1/models"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    spec_door = document["paths"]["/api/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "402", "429", "502", "504"} <= set(spec_door)


OPERATIONS = [
    ("POST", "/api/v1/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
]
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzzed(config, make_app):
    """The app (no rate limits: hypothesis sends many requests) and a key with a huge balance."""
    app = make_app({**config, "BOT_RATE_KEY_RPM": "0", "BOT_RATE_USER_RPM": "0"})
    with app.app_context():
        keys = services().keys
        key, _ = keys.issue("oFuzz")
        keys.grant(keys.fingerprint(key), 10**9)
    return app, key


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzing_finds_no_server_error(fuzzed, method, path, mode):
    app, key = fuzzed
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exchange(case):
        if path.startswith("/v1/"):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        elif isinstance(case.body, dict) and mode is GenerationMode.POSITIVE:
            case.body["api_secret_key"] = key
        response = case.call_and_validate(checks=CHECKS)
        said = f"{case.method} {case.path} answered {response.status_code}: {response.text[:300]}"
        assert response.status_code < 500, said
        statuses.append(response.status_code)

    statuses: list[int] = []
    exchange()
    print(method, path, mode, sorted(statuses))
