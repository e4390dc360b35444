"""End to end: the generated week through the whole platform, measured against the generator's ground truth.

One replay (module-scoped: it is the expensive part) of the default demo week through the
real pipeline on the embedded default, then one test per promise of the demo.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openmdr.config import load_settings
from openmdr.replay import SimClock
from openmdr.runtime import Platform
from openmdr.story import ChainOutcome, StoryConfig, StoryReport, run_story

CONFIG = StoryConfig()
#: One replay serves every test of this module: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("story")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, StoryReport]:
    data = tmp_path_factory.mktemp("story")
    platform = Platform(load_settings(data_dir=data), clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    report = run_story(platform, data / "telemetry", CONFIG)
    yield platform, report
    platform.close()


def _chains(report: StoryReport, retro: bool = False) -> list[ChainOutcome]:
    return [c for c in report.chains if c.chain_id.endswith("c2-contact") == retro]


def test_nothing_is_lost_on_the_way_in(story: tuple[Platform, StoryReport]) -> None:
    platform, report = story
    ingest = report.replay.ingest
    assert ingest.balanced and ingest.rejected == 0
    assert sum(platform.lake.counts().values()) == ingest.stored == sum(t.events_stored for t in report.tenants)


def test_every_attack_chain_is_detected_as_one_case(story: tuple[Platform, StoryReport]) -> None:
    _, report = story
    chains = _chains(report)
    assert len(chains) == 3
    for chain in chains:
        assert chain.detected, chain
        assert len(chain.case_ids) == 1, f"{chain.chain_id} spread over {chain.case_ids}"
        assert chain.completeness == 1.0, chain


def test_every_chain_is_contained_within_the_tenants_authority(story: tuple[Platform, StoryReport]) -> None:
    platform, report = story
    for chain in _chains(report):
        assert chain.contained, chain
        actions = platform.response.list_actions(chain.tenant, case_id=chain.case_ids[0])
        assert any(a.status == "executed" for a in actions)
        assert all(a.tenant == chain.tenant for a in actions)
    assert report.benign_contained == []


def test_mttd_and_mttr_agree_with_the_ground_truth(story: tuple[Platform, StoryReport]) -> None:
    _, report = story
    for chain in _chains(report):
        assert chain.detected_at is not None and chain.contained_at is not None
        # detected no earlier than the first malicious event, and within two replay windows of it
        assert chain.first_event <= chain.detected_at <= chain.first_event + 2 * CONFIG.window + timedelta(hours=2)
        assert chain.contained_at >= chain.detected_at
    for tenant in report.tenants:
        chains = [c for c in _chains(report) if c.tenant == tenant.tenant.name]
        if not chains:
            continue
        assert tenant.sla is not None and tenant.sla.mttd_s is not None and tenant.sla.mttr_s is not None
        worst = max(c.time_to_detect_s or 0 for c in chains)
        assert 0 <= tenant.sla.mttd_s <= worst + CONFIG.window.total_seconds() * 4


def test_the_shared_indicator_finds_the_other_tenants_earlier_contact(story: tuple[Platform, StoryReport]) -> None:
    _, report = story
    (contact,) = _chains(report, retro=True)
    assert contact.detected, "the retro-hunt did not find the globex host that contacted acme's C2 server"
    acme = next(c for c in _chains(report) if c.tenant == "acme")
    assert contact.first_event < acme.first_event - timedelta(days=1)
    assert any("globex" in s["retro_hunt_tenants"] for s in report.shared)


def test_background_noise_opens_no_case_above_medium(story: tuple[Platform, StoryReport]) -> None:
    _, report = story
    attack_cases = {cid for c in report.chains for cid in c.case_ids}
    for tenant in report.tenants:
        loud = [c for c in tenant.cases if c.case_id not in attack_cases and c.severity in ("high", "critical")]
        assert loud == [], [(c.case_id, c.title) for c in loud]
