"""Endpoints external systems poll with their own credentials: EDL block lists and the TAXII collection."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openmdr.api.app import TAXII_CREDENTIALS_ENV, create_app
from openmdr.config import load_settings
from openmdr.models import TenantInfo
from openmdr.runtime import Platform


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    p = Platform(load_settings(data_dir=tmp_path / "data"))
    yield p
    p.close()


def test_taxii_is_served_only_to_configured_clients(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TAXII_CREDENTIALS_ENV, raising=False)
    assert TestClient(create_app(platform)).get("/taxii2/").status_code == 404  # never anonymous
    monkeypatch.setenv(TAXII_CREDENTIALS_ENV, "partner:s3cret-pass")
    client = TestClient(create_app(platform))
    assert client.get("/taxii2/").status_code == 401
    assert client.get("/taxii2/", auth=("partner", "wrong")).status_code == 401
    answer = client.get(
        "/taxii2/", auth=("partner", "s3cret-pass"), headers={"Accept": "application/taxii+json;version=2.1"}
    )
    assert answer.status_code == 200 and "api_roots" in answer.json()
    assert not any(path.startswith(("/taxii2", "/edl")) for path in client.get("/openapi.json").json()["paths"])


def test_block_lists_need_their_tenant_token(platform: Platform) -> None:
    platform.state.create_tenant(TenantInfo(name="acme"), actor="test")
    client = TestClient(create_app(platform))
    assert client.get("/edl/acme/ip.txt").status_code in (401, 403)
    assert client.get("/edl/acme/ip.txt", params={"token": "guessed"}).status_code in (401, 403)
