"""The project's own Sigma rules: valid Sigma, and on the generated week they fire on the chains only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection

from openmdr.detect import Engine, load_rules
from openmdr.detect.rulepack import RULEPACK_DIR, rule_files
from openmdr.generator import Manifest
from openmdr.generator.chains import RULES
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models import Event, Rejection
from openmdr.pipeline import parse_record


def test_rules_are_valid_sigma_with_complete_metadata() -> None:
    files = rule_files()
    assert len(files) >= 8
    ids = set()
    for path in files:
        collection = SigmaCollection.from_yaml(path.read_text())
        assert len(collection.rules) == 1, path.name
        rule = collection.rules[0]
        assert not rule.errors, f"{path.name}: {rule.errors}"
        raw = yaml.safe_load(path.read_text())
        assert str(uuid.UUID(raw["id"])) == raw["id"]
        assert raw["author"] == "OpenMDR project"
        assert raw["title"] and raw["description"] and raw["falsepositives"] and raw["date"]
        assert raw["level"] in ("low", "medium", "high", "critical")
        assert raw["logsource"]["product"] == "windows"
        tags = raw["tags"]
        assert any(t.startswith("attack.t") for t in tags)
        assert all(t.startswith("attack.") for t in tags)
        ids.add(raw["id"])
    assert set(RULES.values()) <= ids, "every rule the labels name is in the pack"


@pytest.fixture(scope="module")
def windows_events(week: Manifest) -> dict[str, list[Event]]:
    """Every generated Windows event, parsed as the ingest stage does, by tenant."""
    out: dict[str, list[Event]] = {}
    now = datetime.now(UTC)
    for tenant in week.tenants:
        events = []
        for item in read_sources(plan_sources([week.out / tenant / "windows"])):
            assert not isinstance(item, Rejection)
            event = parse_record(item, tenant, now)
            assert isinstance(event, Event)
            events.append(event)
        out[tenant] = events
    return out


def _step_of(week: Manifest, labels: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(tenant, origin ``path:offset``) -> step id of every labelled record."""
    index = {}
    for chain in labels:
        for step in chain["steps"]:
            for rec in step["records"]:
                index[(chain["tenant"], f"{week.out / chain['tenant'] / rec['file']}:{rec['offset']}")] = step["id"]
    return index


def test_rule_pack_fires_on_every_chain_step_and_never_on_the_background(
    week: Manifest, labels: list[dict[str, Any]], windows_events: dict[str, list[Event]], tmp_path: Path
) -> None:
    engine = Engine(cache_dir=tmp_path)
    ruleset = engine.compile(load_rules([RULEPACK_DIR]))
    assert ruleset.unsupported == []
    step_of = _step_of(week, labels)
    fired: dict[str, set[str]] = {}
    background: list[str] = []
    for tenant, events in windows_events.items():
        by_id = {e.event_id: e for e in events}
        alerts = engine.evaluate(events) + engine.flush()
        for alert in alerts:
            assert alert.tenant == tenant
            steps = {step_of.get((tenant, by_id[eid].origin)) for eid in alert.evidence}
            if None in steps:
                background.append(f"{tenant}: {alert.title} on {alert.entities}")
            for step in steps - {None}:
                fired.setdefault(step, set()).add(alert.rule_id)
    assert background == []
    for chain in labels:
        for step in chain["steps"]:
            expected = set(step["rules"])
            assert expected <= fired.get(step["id"], set()), (
                f"{step['id']}: expected {expected}, got {fired.get(step['id'])}"
            )
    assert set(RULES.values()) <= set().union(*fired.values()), "every rule of the pack fires on some chain step"


def test_sigmahq_rules_see_the_attacks_and_only_low_noise_in_the_background(
    week: Manifest,
    labels: list[dict[str, Any]],
    windows_events: dict[str, list[Event]],
    shared_root: Path,
    request: pytest.FixtureRequest,
) -> None:
    """The public SigmaHQ Windows rules react as on real logs: the chains raise high alerts, the background none.

    Only the rule folders of the event types the generator writes are compiled (the others cannot
    match); the compiled form is cached between runs in pytest's cache directory.
    """
    engine = Engine(cache_dir=request.config.cache.mkdir("openmdr-sigma"))
    windows = shared_root / "sigma" / "rules" / "windows"
    folders = ("process_creation", "process_access", "builtin", "network_connection", "file", "registry")
    engine.compile(load_rules([windows / f for f in folders]))
    step_of = _step_of(week, labels)
    noisy: list[str] = []
    chains_hit: set[str] = set()
    for tenant, events in windows_events.items():
        by_id = {e.event_id: e for e in events}
        for alert in engine.evaluate(events) + engine.flush():
            steps = {step_of.get((tenant, by_id[eid].origin)) for eid in alert.evidence if eid in by_id}
            if steps == {None} and alert.severity in ("high", "critical"):
                noisy.append(f"{tenant}: {alert.title}")
            if alert.severity in ("high", "critical"):
                chains_hit |= {s.split("/")[0] for s in steps - {None}}
    assert noisy == []
    assert chains_hit == {"acme-dormant-contractor", "globex-vpn-spray-ransomware", "initech-credential-theft"}
