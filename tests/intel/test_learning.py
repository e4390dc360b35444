"""The learning loop: sanitization, TLP, approval, and the retro-hunt over a real event lake."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from openmdr.intel import LearningLoop, SharingPolicy, sanitize_observable
from openmdr.intel.learning import Withheld
from openmdr.models import Observable
from openmdr.models.case import Case
from openmdr.models.indicator import Indicator
from openmdr.store.intel import IntelStore
from openmdr.store.lake import EventLake
from openmdr.store.state import StateStore
from tests.intel.helpers import ACME, GLOBEX, NOW, Clock, event, table

C2 = "198.51.100.23"
SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"

#: Everything the acme case knows; only the external attacker infrastructure may leave acme.
OBSERVABLES = [
    Observable("ip", C2, role="c2"),
    Observable("ip", "10.1.0.5", internal=True, role="victim"),
    Observable("ip", "10.1.77.3"),  # in acme's networks, not flagged
    Observable("ip", "192.168.1.20"),
    Observable("ip", "100.64.3.2"),
    Observable("ip", "127.0.0.1"),
    Observable("host", "acme-ws-042"),
    Observable("user", "ACME\\alice"),
    Observable("process", "C:\\Users\\alice\\AppData\\evil.exe"),
    Observable("file", "C:\\Users\\alice\\invoice.zip"),
    Observable("domain", "evil-c2.example", role="c2"),
    Observable("domain", "fileshare.acme.example"),
    Observable("domain", "dc01.corp"),
    Observable("domain", "intranet"),
    Observable("email", "billing@invoice-portal.example", role="sender"),
    Observable("email", "ceo@acme.example", role="recipient"),
    Observable("url", "http://evil-c2.example/gate.php"),
    Observable("url", "https://portal.acme.example/login"),
    Observable("url", "http://10.1.0.9/share"),
    Observable("url", "https://user:pw@drop.example/x"),
    Observable("url", "https://redirect.example/?to=portal.acme.example"),
    Observable("hash_sha256", SHA256),
    Observable("ip", C2),  # duplicate
]
SHAREABLE = {("ip", C2), ("domain", "evil-c2.example"), ("email", "billing@invoice-portal.example"),
             ("url", "http://evil-c2.example/gate.php"), ("sha256", SHA256)}  # fmt: skip


def resolved_case(observables: list[Observable] = OBSERVABLES, resolution: str = "true_positive") -> Case:
    return Case(case_id="case-0001", tenant="acme", title="C2 beaconing", severity="high", status="resolved",
                resolution=resolution, observables=list(observables))  # fmt: skip


@pytest.fixture()
def state(state_store: StateStore) -> StateStore:
    state_store.create_tenant(ACME, "test")
    state_store.create_tenant(GLOBEX, "test")
    return state_store


@pytest.fixture()
def history(lake: EventLake) -> EventLake:
    """acme's case traffic today (and a second acme host); globex's host talked to the C2 two days ago."""
    lake.append(
        table(
            event("a-1", host="acme-ws-042", user="alice", src_ip="10.1.0.5", dst_ip=C2, time=NOW - timedelta(hours=1)),
            event("a-2", host="acme-ws-042", domain="evil-c2.example", time=NOW - timedelta(hours=1)),
            event("a-3", host="acme-ws-099", src_ip="10.1.0.99", dst_ip=C2, time=NOW - timedelta(hours=5)),
            event("a-4", src_ip="10.1.0.5", dst_ip=C2, time=NOW - timedelta(hours=2)),  # the victim, by address
            event(
                "g-1",
                tenant="globex",
                host="gx-ws-007",
                user="bob",
                src_ip="10.2.0.7",
                dst_ip=C2,
                time=NOW - timedelta(days=2),
            ),
            event(
                "g-2",
                tenant="globex",
                host="gx-ws-007",
                src_ip="10.2.0.7",
                dst_ip="203.0.113.1",
                time=NOW - timedelta(days=2),
            ),
            event("g-old", tenant="globex", host="gx-old", dst_ip=C2, time=NOW - timedelta(days=40)),
            event(
                "g-dns", tenant="globex", host="gx-ws-008", domain="cdn.evil-c2.example", time=NOW - timedelta(days=3)
            ),
        )
    )
    return lake


def test_sanitization_withholds_everything_private_to_the_tenant() -> None:
    kept = set()
    withheld = {}
    for obs in OBSERVABLES:
        outcome = sanitize_observable(obs, ACME)
        if isinstance(outcome, Withheld):
            withheld[obs.value] = outcome.reason
        else:
            kept.add(outcome)
    assert kept == SHAREABLE
    assert withheld["10.1.0.5"] == "marked internal"
    assert withheld["10.1.77.3"] == "address in the tenant's networks"
    assert withheld["192.168.1.20"] == withheld["100.64.3.2"] == withheld["127.0.0.1"] == "private or reserved address"
    assert "tenant-private" in withheld["acme-ws-042"] and "tenant-private" in withheld["ACME\\alice"]
    assert "intranet" in withheld["dc01.corp"] and "intranet" in withheld["intranet"]
    assert "own" in withheld["fileshare.acme.example"] and "own" in withheld["ceo@acme.example"]
    assert "credentials" in withheld["https://user:pw@drop.example/x"]
    assert "tenant's domain" in withheld["https://redirect.example/?to=portal.acme.example"]


def test_resolution_shares_sanitized_indicators_and_retro_hunt_finds_tenant_b(
    state: StateStore, history: EventLake
) -> None:
    loop = LearningLoop(state, history, Clock(), SharingPolicy(default_tlp="amber", retro_hunt_days=30))
    result = loop.on_case_resolved(resolved_case(), ACME)
    assert {(i.type, i.value) for i in result.shared} == SHAREABLE
    assert all(i.tenant is None and i.tlp == "amber" for i in result.shared)
    assert {p.status for p in result.proposals} == {"shared"}
    # Nothing private left acme: every stored provider-wide indicator is one of the shareable values.
    store = IntelStore(state)
    assert {(i.type, i.value) for i in store.list_indicators(None)} == SHAREABLE
    # The retro-hunt found globex's host two days back (not the 40-day-old contact), and acme's own events.
    globex = [a for a in result.alerts if a.tenant == "globex"]
    by_value = {a.details["indicator"]["value"]: a for a in globex}
    assert by_value[C2].evidence == ["g-1"] and by_value[C2].entities["host"] == ["gx-ws-007"]
    assert by_value[C2].first_seen == NOW - timedelta(days=2)
    assert by_value["evil-c2.example"].evidence == ["g-dns"]  # subdomain
    assert {a.tenant for a in result.alerts} == {"acme", "globex"}
    c2_alert = by_value[C2]
    assert c2_alert.source == "ioc" and "retro_hunt" in c2_alert.tags
    assert c2_alert.details["case_link"] == {"type": "retro_hunt", "case_id": "case-0001"}
    text = orjson.dumps(c2_alert.to_json_dict()).decode().lower()
    for private in ("acme", "alice", "10.1.0.5", "ws-042"):
        assert private not in text
    # In acme only the host the case did not cover is new: the case's own host is not re-alerted.
    [own] = [a for a in result.alerts if a.tenant == "acme"]
    assert own.evidence == ["a-3"] and own.details["case_link"]["same_tenant"] is True
    run = store.list_retrohunts()[0]
    assert run.id == result.retro_hunt.id and run.days == 30 and run.by_tenant == {"acme": 1, "globex": 2}


def test_retro_hunt_alerts_open_a_case_in_tenant_b(state: StateStore, history: EventLake) -> None:
    from openmdr.correlate import CaseService

    clock = Clock()
    result = LearningLoop(state, history, clock).on_case_resolved(resolved_case(), ACME)
    cases = CaseService(state, clock=clock, lake=history)
    cases.add_alerts([a for a in result.alerts if a.tenant == "globex"])
    opened = cases.list("globex")
    assert opened and {aid for c in opened for aid in c.alert_ids} >= {a.alert_id for a in result.alerts
                                                                         if a.tenant == "globex"}  # fmt: skip
    assert cases.list("acme") == []


@pytest.mark.parametrize("tlp", ["red", "amber+strict"])
def test_strict_tlp_never_leaves_the_tenant(state: StateStore, history: EventLake, tlp: str) -> None:
    result = LearningLoop(state, history, Clock()).on_case_resolved(resolved_case(), ACME, tlp=tlp)
    assert result.shared and all(i.tenant == "acme" and i.tlp == tlp for i in result.shared)
    assert {a.tenant for a in result.alerts} == {"acme"}
    store = IntelStore(state)
    assert store.list_indicators(None) == [] and store.list_indicators("globex") == []
    assert len(store.list_indicators("acme")) == len(SHAREABLE)


def test_resolving_a_case_again_proposes_nothing_new(state: StateStore, history: EventLake) -> None:
    loop = LearningLoop(state, history, Clock())
    first = loop.on_case_resolved(resolved_case(), ACME)
    again = loop.on_case_resolved(resolved_case(), ACME)
    assert len(first.proposals) == len(SHAREABLE) and again.proposals == [] and again.alerts == []


def test_green_is_shared_provider_wide(state: StateStore, history: EventLake) -> None:
    result = LearningLoop(state, history, Clock()).on_case_resolved(resolved_case(), ACME, tlp="TLP:GREEN")
    assert {i.tlp for i in result.shared} == {"green"} and all(i.tenant is None for i in result.shared)


def test_analyst_approval_and_rejection(state: StateStore, history: EventLake) -> None:
    loop = LearningLoop(state, history, Clock(), SharingPolicy(auto_approve=False))
    result = loop.on_case_resolved(resolved_case(), ACME)
    assert result.shared == [] and result.alerts == [] and len(result.pending) == len(SHAREABLE)
    c2 = next(p for p in result.pending if p.value == C2)
    sha = next(p for p in result.pending if p.type == "sha256")
    with pytest.raises(Exception, match="no proposal"):
        loop.approve("globex", [c2.id], "analyst")  # another tenant's proposal id
    approved = loop.approve("acme", [c2.id], "analyst", tlp="green")
    assert [(i.value, i.tlp) for i in approved.shared] == [(C2, "green")]
    assert {a.tenant for a in approved.alerts} == {"acme", "globex"}
    assert loop.reject("acme", sha.id, "analyst", "hash of a legitimate tool").status == "rejected"
    assert {p.status for p in IntelStore(state).list_proposals("acme")} == {"shared", "rejected", "proposed"}
    with pytest.raises(ValueError):
        loop.approve("acme", [c2.id], "analyst")


def test_allow_listed_observables_are_withheld(state: StateStore, history: EventLake) -> None:
    IntelStore(state).add_allow("domain", "evil-c2.example", "test", "sinkholed by us")
    result = LearningLoop(state, history, Clock()).on_case_resolved(resolved_case(), ACME)
    assert ("domain", "evil-c2.example") not in {(i.type, i.value) for i in result.shared}
    assert any(w.reason == "allow-listed" for w in result.withheld)


def test_only_true_positives_are_shared(state: StateStore, history: EventLake) -> None:
    loop = LearningLoop(state, history, Clock())
    result = loop.on_case_resolved(resolved_case(resolution="false_positive"), ACME)
    assert result.proposals == [] and result.reason
    open_case = resolved_case()
    open_case.status = "contained"
    assert loop.on_case_resolved(open_case, ACME).proposals == []
    with pytest.raises(ValueError):
        loop.on_case_resolved(resolved_case(), GLOBEX)


def test_retro_hunt_window_is_configurable(state: StateStore, history: EventLake) -> None:
    loop = LearningLoop(state, history, Clock())
    ind = Indicator("ip", C2)
    assert sorted(e for a in loop.retro_hunt([ind], days=1) for e in a.evidence) == ["a-1", "a-3", "a-4"]
    every = ["a-1", "a-3", "a-4", "g-1", "g-old"]
    assert sorted(e for a in loop.retro_hunt([ind], days=45) for e in a.evidence) == every
    cidr = Indicator("cidr", "198.51.100.0/24")
    assert sorted(e for a in loop.retro_hunt([cidr], days=45) for e in a.evidence) == every
