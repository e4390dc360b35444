"""Property-based fuzzing of every operation of the OpenAPI document with schemathesis.

Generated requests (valid and invalid bodies, paths and queries) go to the app holding
two populated tenants, as the provider administrator; no answer may be a server error
and every documented answer must match its schema.  Bounded to a few examples per
operation so the run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from openmdr.api.app import create_app
from openmdr.runtime import Platform
from openmdr.store.identity import IdentityStore

from .conftest import World, build_world, sqlite_only

EXAMPLES_PER_OPERATION = 4
#: Fuzzing phase only (valid and invalid data), a few examples per operation: bounded run time.
FUZZ_CONFIG = SchemathesisConfig.from_str(f"""
[phases.coverage]
enabled = false
[phases.stateful]
enabled = false
[generation]
max-examples = {EXAMPLES_PER_OPERATION}
""")


@pytest.fixture()
def fuzz_world(platform: Platform, identity: IdentityStore) -> World:
    """Two populated tenants (data for the generated ids to hit)."""
    return build_world(platform, identity)


@pytest.fixture()
def fuzz_app(platform: Platform, identity: IdentityStore, fuzz_world: World) -> Iterator[FastAPI]:
    """The app under test with the provider admin's token recorded for the calls."""
    app = create_app(platform, identity=identity)
    app.state.fuzz_headers = fuzz_world.headers("root")
    yield app


@pytest.fixture()
def api_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    """The published OpenAPI document, loaded from the running app."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=FUZZ_CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@sqlite_only
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_answers_match_the_schema(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    """Whatever is sent, the API answers without a 5xx and within its documented schemas."""
    case.call_and_validate(
        headers=dict(fuzz_app.state.fuzz_headers),
        checks=[not_a_server_error, response_schema_conformance],
    )
