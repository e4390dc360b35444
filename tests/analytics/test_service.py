"""The analytics service over the state store, and thresholds from the TOML file."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from openmdr.detect.analytics.service import AnalyticsService
from openmdr.detect.analytics.settings import AnalyticsSettings, load_analytics_settings
from openmdr.models import AssetInfo, TenantInfo
from openmdr.store.state import StateStore

from .builders import conn, logon

DAY = 86_400.0
HOUR = 3600.0


def test_service_uses_the_stores_tenants_inventory_and_baselines(state_store: StateStore) -> None:
    # acme works 09-17 Seoul time; its inventory lists ws01 (with EDR)
    state_store.create_tenant(
        TenantInfo(name="acme", timezone="Asia/Seoul", working_hours=(9, 17), networks=("10.0.0.0/8",)), actor="t"
    )
    state_store.upsert_assets("acme", [AssetInfo(hostname="ws01", ips=("10.0.0.10",), has_edr=True)], actor="t")
    settings = AnalyticsSettings(warmup={"tenant_days": 1.0, "user_events": 5})
    service = AnalyticsService(state_store, settings)
    # three days of alice at 10:00 Seoul (01:00 UTC), and two hosts on the network
    history = [logon(d * DAY + 1 * HOUR + m * 60, "alice") for d in range(3) for m in range(3)]
    history += [conn(100, "10.0.0.10", "8.8.8.8", 53, proto="udp"), conn(200, "10.0.0.99", "8.8.8.8", 53, proto="udp")]
    history.sort(key=lambda e: e.time)
    alerts = service.analyze(history)
    # the inventory came from the store: only the unlisted host is shadow IT
    assert [a.entities["src_ip"] for a in alerts if a.source == "analytics:shadow_it"] == ["10.0.0.99"]
    # 10:00 Seoul is working time there (it is 01:00 UTC): no off-hours alert during the history
    assert not [a for a in alerts if a.source == "analytics:offhours_logon"]
    report = service.checkpoint()
    assert report.rows["acme"] > 0

    # a new process over the same store continues with the saved baselines
    restarted = AnalyticsService(state_store, settings)
    night = logon(3 * DAY + 19 * HOUR, "alice")  # 04:00 Seoul on Thursday: off-hours and unusual for alice
    fired = restarted.feed([night]) + restarted.flush()
    assert [a.source for a in fired] == ["analytics:offhours_logon"]
    assert fired[0].details["timezone"] == "Asia/Seoul" and fired[0].details["local_hour"] == 4
    assert restarted.engine.state_size()["identity.user"] == 1

    # a tenant unknown to the store (a capture scanned offline) is analysed with defaults
    service = AnalyticsService(state_store)
    events = [logon(5 * i, "root", src="45.13.113.7", failed=True, tenant="capture") for i in range(20)]
    assert sorted(a.source for a in service.analyze(events)) == [
        "analytics:brute_force_source",
        "analytics:brute_force_user",
    ]
    assert service.load_tenant("capture") == 0


def test_thresholds_per_tenant_from_the_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "openmdr.toml"
    config.write_text(
        "data_dir = '/tmp/x'\n"
        "[analytics.scan]\nvertical_fast = 30\n"
        "[analytics.tenants.globex.scan]\nvertical_fast = 80\n"
        "[analytics.tenants.globex.identity]\nbrute_source_failures = 5\n"
    )
    monkeypatch.setenv("OPENMDR_CONFIG", str(config))
    settings = load_analytics_settings()
    assert settings.scan.vertical_fast == 30
    globex = settings.for_tenant("globex")
    assert globex.scan.vertical_fast == 80 and globex.identity.brute_source_failures == 5
    assert settings.for_tenant("acme").scan.vertical_fast == 30
    assert load_analytics_settings(tmp_path / "missing.toml") == AnalyticsSettings()
    config.write_text("[analytics.tenants.globex.beacon]\nscore_threshold = 3\n")
    with pytest.raises(pydantic.ValidationError):
        load_analytics_settings()  # a bad tenant override fails at start-up, not at its first event
