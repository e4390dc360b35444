"""The analytics on the built-in generator's week: labelled attack chains flagged, background quiet.

Six days of the default generator (acme and globex, seed 7, Monday to Saturday) are written
to a temporary folder, read back with the project's own file framer and parsers, enriched
with the tenant networks,
inventories and the packaged geolocation database, and analysed in one batch.  The
generator's ``labels.json`` names, per attack step, the analytics expected to fire.
The tenants' VPN client pools and NAT egress addresses come from ``tenants.json``: they
are configured as shadow-IT ignore lists, as an MDR would at onboarding.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from openmdr.detect.analytics import AnalyticsEngine, AnalyticsSettings
from openmdr.enrich.enricher import Enricher
from openmdr.enrich.geo import GeoLocator
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Alert, AssetInfo, Event, ParseError, RawRecord, TenantInfo, make_event_id
from openmdr.models.event import events_to_table
from openmdr.normalize import get_parser
from openmdr.store.assets_csv import parse_assets_csv, read_csv_source

HOUR = 3600.0
#: A spray is reported as a spray, not also as brute force from its source (by design).
TOLD_APART = {"analytics.password_spray": "analytics.brute_force_source"}


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _read_tenant(root: Path, info: TenantInfo, assets: list[AssetInfo], geo: GeoLocator | None) -> list[Event]:
    events: list[Event] = []
    rejected = 0
    for item in read_sources(plan_sources([root / info.name])):
        if not isinstance(item, RawRecord):
            rejected += 1
            continue
        try:
            event = get_parser(item.format).parse(item)
        except ParseError:
            rejected += 1
            continue
        event.tenant = info.name
        event.event_id = make_event_id(info.name, item.format, event.natural_key, item.payload)
        events.append(event)
    assert rejected <= len(events) // 1000, f"{rejected} records of {info.name} could not be read"
    Enricher(info, assets, geo).enrich(events)
    return events


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generate, read and analyse the week once for all tests of this module."""
    generator = pytest.importorskip("openmdr.generator")
    root = tmp_path_factory.mktemp("generated")
    # Monday to Saturday: the acme chain runs on Saturday night, the globex one on Thursday
    generator.generate(root, generator.GeneratorConfig(tenants=2, days=6))
    tenants: list[TenantInfo] = []
    overrides: dict[str, dict[str, Any]] = {}
    for record in orjson.loads((root / "tenants.json").read_bytes()):
        tenants.append(
            TenantInfo(
                name=record["name"],
                timezone=record["timezone"],
                working_hours=tuple(record["working_hours"]),
                working_days=tuple(record["working_days"]),
                networks=tuple(record["networks"]),
                domains=tuple(record["domains"]),
            )
        )
        pools = [record["vpn_pool"], *(f"{ip}/32" for ip in record.get("egress_ips", []))]
        overrides[record["name"]] = {"shadow_it": {"ignore_cidrs": pools}}
    geo = GeoLocator.open_default()
    assets: dict[str, list[AssetInfo]] = {}
    events: list[Event] = []
    try:
        for info in tenants:
            parsed, problems = parse_assets_csv(read_csv_source(root / info.name / "assets.csv"))
            assert not problems
            assets[info.name] = [asset for _, asset in parsed]
            events += _read_tenant(root, info, assets[info.name], geo)
    finally:
        if geo is not None:
            geo.close()
    events.sort(key=lambda e: e.time)
    engine = AnalyticsEngine(AnalyticsSettings(tenants=overrides), tenants=tenants, assets=assets)
    alerts = engine.analyze(events_to_table(events))
    labels = [c for c in orjson.loads((root / "labels.json").read_bytes()) if c["tenant"] in overrides]
    return {"alerts": alerts, "labels": labels, "assets": assets, "events": len(events)}


def _chain_entities(chain: dict[str, Any]) -> set[str]:
    names = {u.lower() for u in chain["users"]} | set(chain["external"]["ips"])
    for host in chain["hosts"]:
        names |= {host["name"].lower(), host["fqdn"].lower(), host["ip"]}
    for step in chain["steps"]:
        names |= {u.lower() for u in step["users"]} | {step["host"].lower()}
    return names


def _alert_entities(alert: Alert) -> set[str]:
    out: set[str] = set()
    for value in alert.entities.values():
        for item in value if isinstance(value, list) else [value]:
            text = str(item).lower()
            out |= {text, text.split(".", 1)[0]}
    return out


def _about(alert: Alert, chain: dict[str, Any], slack: float) -> bool:
    start, end = _time(chain["first_event"]) - slack, _time(chain["last_event"]) + slack
    in_time = alert.first_seen.timestamp() <= end and alert.last_seen.timestamp() >= start
    return alert.tenant == chain["tenant"] and in_time and bool(_alert_entities(alert) & _chain_entities(chain))


def test_every_labelled_step_is_flagged_by_its_analytics(week: dict[str, Any]) -> None:
    alerts: list[Alert] = week["alerts"]
    checked: set[str] = set()
    for chain in week["labels"]:
        for step in chain["steps"]:
            wanted = [r for r in step["analytics"] if r.startswith("analytics.")]
            wanted = [r for r in wanted if not any(a in wanted and b == r for a, b in TOLD_APART.items())]
            start, end = _time(step["start"]) - HOUR, _time(step["end"]) + HOUR
            for rule in wanted:
                checked.add(rule)
                hits = [
                    a
                    for a in alerts
                    if a.rule_id == rule
                    and a.first_seen.timestamp() <= end
                    and a.last_seen.timestamp() >= start
                    and _about(a, chain, 60.0)
                ]
                assert hits, f"{step['id']}: no {rule} alert"
                assert all(a.explanation and a.evidence for a in hits)
    # the labels name at least these (the generator may add more; every one named is checked above)
    assert {
        "analytics.beacon",
        "analytics.lateral_movement",
        "analytics.exfiltration_volume",
        "analytics.password_spray",
        "analytics.logon_after_failures",
        "analytics.new_country_logon",
        "analytics.offhours_logon",
    } <= checked


def test_the_chains_are_reported_with_their_entities(week: dict[str, Any]) -> None:
    by_rule = {(a.tenant, a.rule_id): a for a in week["alerts"]}
    beacon = by_rule[("acme", "analytics.beacon")]
    assert beacon.entities["dst_ip"] == "185.137.80.106" and beacon.severity in ("medium", "high")
    assert beacon.entities.get("domain") == "cdn-metrics-sync.net"  # named from the TLS SNI
    travel_login = by_rule[("acme", "analytics.new_country_logon")]
    assert travel_login.entities["user"] == "ext.pnowak"
    spray = by_rule[("globex", "analytics.password_spray")]
    assert spray.entities["src_ip"] == "200.98.23.244" and spray.severity == "high"
    success = by_rule[("globex", "analytics.logon_after_failures")]
    assert success.entities["user"] == "jmoore"
    # the contractor's night-time remote desktop to a workstation, with a barely known account
    rdp = by_rule[("acme", "analytics.first_seen_host")]
    assert rdp.entities["user"] == "ext.pnowak" and rdp.details["logon_type"] == "10"


def test_background_is_quiet(week: dict[str, Any]) -> None:
    inventory = {ip: a for assets in week["assets"].values() for a in assets for ip in a.ips}
    background = [a for a in week["alerts"] if not any(_about(a, c, 6 * HOUR) for c in week["labels"])]
    for alert in background:
        if alert.source == "analytics:shadow_it":
            # only true findings: a host missing from the inventory, or listed without EDR
            ip = alert.entities["src_ip"]
            listed = inventory.get(ip)
            assert (listed is None) == (alert.details["finding"] == "unmanaged"), alert.title
            assert listed is None or not listed.has_edr, alert.title
            continue
        assert alert.severity in ("informational", "low"), f"{alert.title}: {alert.explanation}"
    noisy = [a for a in background if a.source != "analytics:shadow_it"]
    # about 95,000 records of six ordinary days: a handful of low/informational findings at most
    # (the helpdesk's new-hire account, an employee's first VPN day from a new home network)
    assert len(noisy) <= 6, [a.title for a in noisy]
    assert week["events"] > 80_000
