"""One extraction query per multi-tenant batch gives exactly the per-tenant views."""

from __future__ import annotations

from openmdr.detect.analytics.frame import Extractor
from openmdr.models.event import events_to_table
from tests.analytics.builders import conn, dns, logon


def test_multi_tenant_batch_splits_into_the_same_views_as_per_tenant_batches() -> None:
    events = []
    for i in range(30):
        tenant = ("acme", "globex", "initech")[i % 3]
        events.append(conn(i * 10.0, "10.10.0.5", "198.51.100.7", 443, tenant=tenant))
        events.append(dns(i * 10.0 + 1, "10.10.0.5", f"q{i}.example.com", tenant=tenant))
        events.append(logon(i * 10.0 + 2, f"user{i % 4}", tenant=tenant))
    table = events_to_table(events)
    extractor = Extractor()
    views = extractor.views_by_tenant(table)
    assert [t for t, _, _ in views] == ["acme", "globex", "initech"]
    for tenant, identity, network in views:
        own = events_to_table([e for e in events if e.tenant == tenant])
        assert identity.equals(extractor.identity(own)), tenant
        expected = extractor.network(own)
        order = ["ts", "event_id"]
        assert network.sort_by([(c, "ascending") for c in order]).equals(
            expected.sort_by([(c, "ascending") for c in order])
        ), tenant
