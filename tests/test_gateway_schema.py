"""Schemathesis against the gateway's own OpenAPI, over real HTTP: generated requests (valid
and not) never get a 5xx, and every answer matches the documented schema and status codes."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from tests.engine_server import MASTER, EngineThread
from tests.policy_cases import SEED_BODIES


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with EngineThread(tmp_path_factory.mktemp("schema")) as engine:
        for body in SEED_BODIES:
            httpx.post(f"{engine.url}/v1/policies", json=body, headers={"X-Master-Password": MASTER})
        yield engine


@pytest.fixture(scope="module")
def api_schema(running):
    return schemathesis.openapi.from_url(f"{running.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case, running):
    case.call_and_validate(base_url=running.url, headers={"X-Master-Password": MASTER},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
