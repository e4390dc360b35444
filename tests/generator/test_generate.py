"""The generator's output: determinism, formats the ingest stage reads, tenants, assets, volume."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from openmdr.generator import GeneratorConfig, Manifest, generate
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Rejection, TenantInfo
from openmdr.models.tenant import ASSET_CLASSES
from openmdr.pipeline import parse_record
from openmdr.store.assets_csv import parse_assets_csv
from tests.generator.conftest import telemetry_dirs

EXPECTED_FILES = {
    "windows/security.jsonl": "winevent_json",
    "windows/sysmon.jsonl": "winevent_json",
    "linux/auth.log": "syslog",
    "firewall/fortigate.cef": "cef",
    "zeek/conn.log": "zeek_tsv",
    "zeek/dns.log": "zeek_tsv",
    "zeek/http.log": "zeek_tsv",
    "zeek/ssl.log": "zeek_tsv",
}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_same_seed_same_bytes_other_seed_other_bytes(week: Manifest, tmp_path: Path) -> None:
    config = GeneratorConfig(tenants=3, days=7, seed=11, scale=0.2)
    small = generate(tmp_path / "a", config)
    assert small.total_records < 0.5 * week.total_records, "scale shrinks the background"
    a = _digest(small.out)
    b = _digest(generate(tmp_path / "b", config).out)
    c = _digest(generate(tmp_path / "c", GeneratorConfig(tenants=3, days=7, seed=12, scale=0.2)).out)
    assert a == b
    assert a.keys() == c.keys()
    assert a["acme/windows/sysmon.jsonl"] != c["acme/windows/sysmon.jsonl"]


def test_every_record_is_detected_and_parsed_without_rejection(week: Manifest) -> None:
    for tenant in week.tenants:
        formats: Counter[str] = Counter()
        rejected: list[str] = []
        now = datetime.now(UTC)
        for item in read_sources(plan_sources(telemetry_dirs(week.out, tenant))):
            if isinstance(item, Rejection):
                rejected.append(f"{item.origin}: {item.reason}")
                continue
            origin_file = item.origin.rsplit(":", 1)[0]
            rel = str(Path(origin_file).relative_to(week.out / tenant))
            assert item.format == EXPECTED_FILES[rel], rel
            event = parse_record(item, tenant, now)
            if isinstance(event, Rejection):
                rejected.append(f"{event.origin}: {event.reason}")
                continue
            formats[item.format] += 1
            assert event.time.tzinfo is not None
        assert rejected == []
        assert sum(formats.values()) == sum(week.counts[tenant].values())
        assert set(formats) == set(EXPECTED_FILES.values())


def test_volume_fits_the_demo_budget(week: Manifest) -> None:
    assert 130_000 <= week.total_records <= 300_000
    assert week.seconds < 60


def test_tenants_json_holds_tenant_info(week: Manifest) -> None:
    rows = orjson.loads((week.out / "tenants.json").read_bytes())
    assert [r["name"] for r in rows] == ["acme", "globex", "initech"]
    for row in rows:
        info = TenantInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()
                             if k in TenantInfo.__slots__})  # fmt: skip
        assert info.timezone and info.networks and info.domains
        assert len(info.working_hours) == 2


def test_assets_csv_imports_and_leaves_shadow_it_out(week: Manifest) -> None:
    for tenant in week.tenants:
        text = (week.out / tenant / "assets.csv").read_text()
        assets, problems = parse_assets_csv(text)
        assert problems == []
        names = {a.hostname.lower() for _line, a in assets}
        assert {a.asset_class for _line, a in assets} <= set(ASSET_CLASSES)
        assert {"server", "workstation", "domain_controller"} <= {a.asset_class for _line, a in assets}
        assert any(not a.has_edr for _line, a in assets), "some inventoried machines lack the EDR agent"
        shadow = week.shadow_it[tenant]
        assert shadow and not {d["name"].lower() for d in shadow} & names
        # The unlisted devices are really on the wire (Zeek sees them open connections).
        conn = (week.out / tenant / "zeek" / "conn.log").read_text()
        talkers = {row.split("\t")[2] for row in conn.splitlines() if not row.startswith("#")}
        assert {d["ip"] for d in shadow} <= talkers


def test_tenants_are_separated(week: Manifest) -> None:
    rows = {r["name"]: r for r in orjson.loads((week.out / "tenants.json").read_bytes())}
    for tenant in week.tenants:
        others = [d for name, r in rows.items() if name != tenant for d in r["domains"]]
        for rel in ("windows/security.jsonl", "windows/sysmon.jsonl"):
            computers = set()
            for line in (week.out / tenant / rel).read_bytes().splitlines():
                computers.add(orjson.loads(line)["Event"]["System"]["Computer"])
            assert all(c.lower().endswith(rows[tenant]["domains"][1]) for c in computers), rel
        for rel in EXPECTED_FILES:
            data = (week.out / tenant / rel).read_text()
            assert not any(d in data for d in others), f"{tenant}/{rel} mentions another tenant"


def test_working_hours_shape_the_volume(week: Manifest) -> None:
    from zoneinfo import ZoneInfo

    rows = {r["name"]: r for r in orjson.loads((week.out / "tenants.json").read_bytes())}
    for tenant in week.tenants:
        zone = ZoneInfo(rows[tenant]["timezone"])
        start, end = rows[tenant]["working_hours"]
        by_hour: Counter[str] = Counter()
        for line in (week.out / tenant / "windows" / "sysmon.jsonl").read_bytes().splitlines():
            when = orjson.loads(line)["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"]
            local = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(zone)
            office = local.weekday() < 5 and start <= local.hour < end
            by_hour["office" if office else "other"] += 1
        office_share = by_hour["office"] / sum(by_hour.values())
        assert office_share > 0.6, f"{tenant}: only {office_share:.0%} of endpoint activity in working hours"


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(tenants=0)
    with pytest.raises(ValueError):
        GeneratorConfig(scale=0)


def test_short_runs_skip_the_chains_that_do_not_fit(tmp_path: Path) -> None:
    manifest = generate(tmp_path, GeneratorConfig(tenants=1, days=2, scale=0.2))
    assert manifest.chains == []
    assert "acme-dormant-contractor" in manifest.skipped_chains
    assert "not generated" in manifest.summary()
