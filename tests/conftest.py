"""Fixtures shared by the whole suite: reference data in ../shared and the machine's services."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (outside CI) or fail (in CI) when a service the test needs is not reachable."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: service tests never skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_root() -> Path:
    """The ../shared folder beside the repository (SigmaHQ data and public captures)."""
    if not SHARED.is_dir():
        if IN_CI:
            pytest.fail(f"{SHARED} is missing (CI=true)")
        pytest.skip(f"reference data not found at {SHARED}")
    return SHARED


POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_BASE_URL = os.environ.get("OPENMDR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_schema_url() -> tuple[str, str]:
    """A fresh PostgreSQL schema in the ``test`` database, and a URL whose search_path is it."""
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_BASE_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{POSTGRES_BASE_URL}?options=-csearch_path%3D{schema}"


def _drop_postgres_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_BASE_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A state-store URL on each backend: SQLite in tmp_path, PostgreSQL in a throw-away schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    schema, url = _postgres_schema_url()
    try:
        yield url
    finally:
        _drop_postgres_schema(schema)


@pytest.fixture()
def state_store(state_url: str, tmp_path: Path):
    """A migrated :class:`openmdr.store.state.StateStore` on each backend."""
    from openmdr.store.state import StateStore

    store = StateStore(state_url, blob_dir=tmp_path / "blobs")
    store.migrate()
    try:
        yield store
    finally:
        store.close()
