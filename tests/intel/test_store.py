"""The intel store on SQLite and PostgreSQL: merging, scope isolation, allow-lists, audit, refresh."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openmdr.intel import IndicatorMatcher
from openmdr.models.indicator import Indicator
from openmdr.store.errors import NotFoundError, ValidationError
from openmdr.store.intel import IntelStore
from openmdr.store.state import StateStore
from tests.intel.helpers import ACME, GLOBEX, NOW, Clock, event, table


@pytest.fixture()
def intel(state_store: StateStore) -> IntelStore:
    state_store.create_tenant(ACME, "test")
    state_store.create_tenant(GLOBEX, "test")
    return IntelStore(state_store)


def test_upsert_merges_repeated_indicators(intel: IntelStore) -> None:
    first = Indicator("domain", "Evil.Example", confidence=40, tlp="green", tags=["a"], first_seen=NOW, last_seen=NOW)
    again = Indicator("domain", "evil.example.", confidence=70, tlp="amber", tags=["b"],
                      first_seen=NOW - timedelta(days=3), last_seen=NOW + timedelta(days=1))  # fmt: skip
    assert intel.upsert_indicators([first], "t").added == 1
    report = intel.upsert_indicators([again], "t")
    assert (report.added, report.updated) == (0, 1)
    stored = intel.get_indicator(first.id)
    assert stored.value == "evil.example" and stored.confidence == 70 and stored.tlp == "amber"
    assert stored.tags == ["a", "b"]
    assert stored.first_seen == NOW - timedelta(days=3) and stored.last_seen == NOW + timedelta(days=1)
    actions = [r.action for r in intel.state.list_audit(provider_wide=True)]
    assert actions.count("intel.indicators.upsert") == 2


def test_tenant_scope_is_enforced_in_the_store(intel: IntelStore) -> None:
    own = Indicator("ip", "203.0.113.5", tenant="acme", tlp="red")
    shared = Indicator("ip", "203.0.113.6")
    intel.upsert_indicators([own, shared], "t")
    assert {i.value for i in intel.list_indicators("acme")} == {"203.0.113.5", "203.0.113.6"}
    assert {i.value for i in intel.list_indicators("globex")} == {"203.0.113.6"}
    assert {i.value for i in intel.list_indicators(None)} == {"203.0.113.6"}
    assert intel.get_indicator(own.id, "acme").tenant == "acme"
    with pytest.raises(NotFoundError):
        intel.get_indicator(own.id, "globex")  # the id is known, the scope is not
    with pytest.raises(NotFoundError):
        intel.retire_indicator(own.id, "t", "globex")
    intel.retire_indicator(own.id, "t", "acme", now=NOW)
    assert {i.value for i in intel.list_indicators("acme", active_at=NOW)} == {"203.0.113.6"}


def test_allow_listed_values_are_refused_and_reported(intel: IntelStore) -> None:
    intel.add_allow("cidr", "192.0.2.0/24", "t", "our scanner range")
    intel.add_allow("domain", "partner.example", "t", "acme's partner", tenant="acme")
    report = intel.upsert_indicators(
        [Indicator("ip", "192.0.2.9"), Indicator("domain", "www.partner.example", tenant="acme"),
         Indicator("domain", "www.partner.example", tenant="globex")], "t",
    )  # fmt: skip
    assert report.added == 1 and sorted(v for v, _ in report.refused) == ["192.0.2.9", "www.partner.example"]
    assert intel.is_allowlisted("url", "https://www.partner.example/x", "acme")
    assert not intel.is_allowlisted("url", "https://www.partner.example/x", "globex")
    assert intel.is_allowlisted("ip", "192.0.2.200", "globex")
    with pytest.raises(ValidationError):
        intel.add_allow("ip", "not-an-ip", "t", "x")
    entry = intel.list_allow("acme")[-1]
    with pytest.raises(NotFoundError):
        intel.remove_allow(entry.id, "t", "globex")
    intel.remove_allow(entry.id, "t", "acme")
    assert [e.value for e in intel.list_allow("acme")] == ["192.0.2.0/24"]


def test_proposals_and_leaks_belong_to_their_tenant(intel: IntelStore) -> None:
    [prop] = intel.add_proposals("acme", "case-1", [{"type": "ip", "value": "203.0.113.1", "tlp": "amber",
                                                     "confidence": 80}], "t")  # fmt: skip
    assert [p.id for p in intel.list_proposals("acme")] == [prop.id]
    assert intel.list_proposals("globex") == []
    with pytest.raises(NotFoundError):
        intel.get_proposal("globex", prop.id)
    with pytest.raises(NotFoundError):
        intel.decide_proposal("globex", prop.id, "rejected", "t")
    decided = intel.decide_proposal("acme", prop.id, "rejected", "t", reason="benign")
    assert decided.status == "rejected" and decided.reason == "benign"
    with pytest.raises(NotFoundError):
        intel.decide_proposal("acme", prop.id, "shared", "t")  # no longer pending
    leak = {"identity": "bob@acme.example", "source": "dump-1", "password_hash_present": True}
    assert len(intel.add_leaks("acme", [leak], "t")) == 1
    assert intel.add_leaks("acme", [leak], "t") == []  # the same leak again is not new
    assert [x.identity for x in intel.list_leaks("acme")] == ["bob@acme.example"]
    assert intel.list_leaks("globex") == []


def test_matcher_from_store_refreshes_when_indicators_change(intel: IntelStore) -> None:
    clock = Clock()
    intel.upsert_indicators([Indicator("ip", "203.0.113.7"), Indicator("ip", "203.0.113.8", tenant="globex")], "t")
    matcher = IndicatorMatcher.from_store(intel, clock)
    batch = table(event("a", dst_ip="203.0.113.7"), event("b", tenant="globex", dst_ip="203.0.113.8"),
                  event("c", dst_ip="203.0.113.8"), event("d", domain="late.example"))  # fmt: skip
    assert sorted((a.tenant, a.evidence[0]) for a in matcher.match(batch)) == [("acme", "a"), ("globex", "b")]
    assert matcher.refresh() is False
    intel.upsert_indicators([Indicator("domain", "late.example", source="feed")], "t")
    assert matcher.refresh() is True
    late = [a for a in matcher.match(batch) if a.evidence == ["d"]]
    assert late and late[0].details["indicator"]["source"] == "feed"
    intel.add_allow("ip", "203.0.113.7", "t", "false positive")
    assert matcher.refresh() is True
    assert sorted(a.evidence[0] for a in matcher.match(batch)) == ["b", "d"]


def test_refresh_loads_only_the_changes_and_retired_indicators_stop_matching(intel: IntelStore) -> None:
    clock = Clock()
    base = [Indicator("ip", f"203.0.113.{n}", confidence=40) for n in range(1, 50)]
    intel.upsert_indicators(base, "t")
    matcher = IndicatorMatcher.from_store(intel, clock)
    batch = table(event("a", dst_ip="203.0.113.1"), event("b", tenant="globex", dst_ip="203.0.113.2"),
                  event("c", domain="x.new.example"))  # fmt: skip
    intel.upsert_indicators([Indicator("ip", "203.0.113.1", confidence=90), Indicator("domain", "new.example")], "t")
    intel.retire_indicator(base[1].id, "t", now=NOW - timedelta(seconds=1))
    assert matcher.refresh() is True
    assert len(matcher._state.layers) == 2  # a delta layer, not a rebuild
    alerts = {a.evidence[0]: a for a in matcher.match(batch)}
    assert sorted(alerts) == ["a", "c"]  # the retired address no longer matches
    assert alerts["a"].details["indicator"]["confidence"] == 90  # the new version, once
    assert len(matcher) == 49 - 1 + 1
    assert matcher.refresh() is False


def test_expired_indicators_are_not_loaded(intel: IntelStore) -> None:
    intel.upsert_indicators([Indicator("ip", "203.0.113.7", expires_at=NOW - timedelta(days=1))], "t")
    assert len(IndicatorMatcher.from_store(intel, Clock())) == 0
    assert intel.list_indicators(None, active_at=NOW) == []
    assert len(intel.list_indicators(None)) == 1


def test_sources_remember_pulls(intel: IntelStore) -> None:
    intel.upsert_source("feed-a", "taxii", "t", url="https://taxii.example/taxii2/", default_tlp="TLP:GREEN")
    intel.upsert_indicators([Indicator("ip", "203.0.113.7")], "t", source="feed-a")
    intel.mark_pulled("feed-a", NOW, "t")
    src = intel.get_source("feed-a")
    assert src is not None and src.default_tlp == "green" and src.indicators == 1 and src.last_pulled_at == NOW
    assert intel.state.verify_audit().ok
