"""Differential test: the engine's (rule, event) hits equal a pySigma SQLite reference's.

Over the whole library and every regression sample plus slices of the OTRF datasets, the
engine must agree exactly with :class:`tests.detect.sqlite_reference` run in its
Sigma-faithful form (caseless ``=``, booleans as text, NULL-safe negation).  The stock
backend's disagreements are checked to be exactly the three bugs the faithful form
corrects, so every difference is explained (docs/rules.md, "Differential test").
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openmdr.detect import Engine, RuleLibrary
from openmdr.ingest.files import plan_sources, read_sources
from openmdr.models.event import Event
from openmdr.models.record import Rejection
from openmdr.pipeline import parse_record
from tests.detect import sqlite_reference as ref

#: Events taken from each OTRF capture (keeps the reference, one SQL query per rule, quick).
PER_DATASET = 200


def _events(paths: list[Path], limit: int | None) -> list[Event]:
    now = datetime.now(UTC)
    out: list[Event] = []
    for path in paths:
        records = (r for r in read_sources(plan_sources([path])) if not isinstance(r, Rejection))
        for record in itertools.islice(records, limit):
            parsed = parse_record(record, "diff", now)
            if not isinstance(parsed, Rejection):
                out.append(parsed)
    return out


@pytest.fixture(scope="module")
def corpus(sigma_root: Path, shared_root: Path) -> list[Event]:
    samples = sorted((sigma_root / "regression_data").rglob("*.json"))
    datasets = sorted((shared_root / "datasets" / "otrf").glob("*.zip"))
    return _events(samples, None) + _events(datasets, PER_DATASET)


@pytest.fixture(scope="module")
def reference(full_library: RuleLibrary) -> ref.Reference:
    return ref.convert_rules(s.text for s in full_library.sources)


def _engine_hits(engine: Engine, events: list[Event], comparable: set[str]) -> set[tuple[str, int]]:
    ruleset = engine.ruleset
    assert ruleset is not None
    hits = {(ruleset.metas[ruleset.variants[v].meta].id, i) for i, v in engine.match(events)}
    return {h for h in hits if h[0] in comparable}


def test_engine_equals_faithful_reference(full_engine: Engine, corpus: list[Event], reference: ref.Reference) -> None:
    rows = [e.fields for e in corpus]
    expected = ref.evaluate(reference, rows)
    comparable = reference.comparable()
    assert len(comparable) > 2500
    got = _engine_hits(full_engine, corpus, comparable)
    assert len(got) > 250, "the corpus must exercise many rules"
    assert got - expected == set(), "engine-only hits"
    assert expected - got == set(), "reference-only hits"
    # what the reference could not evaluate is few and explained
    assert set(reference.failed.values()) <= {"sqlite: Expression tree is too large (maximum depth 1000)"}
    assert all(
        r.startswith(
            ("not a Windows rule", "log source not mapped", "backend: Value-only", "backend: Attempt to convert")
        )
        for r in reference.skipped.values()
    )


def test_sql_three_valued_logic_only_loses_hits(corpus: list[Event], reference: ref.Reference) -> None:
    """Without NULL-safe NOT the reference misses "not filter" hits on events lacking the field."""
    rows = [e.fields for e in corpus[:1500]]
    assert ref.evaluate(reference, rows, sigma_nulls=False) < ref.evaluate(reference, rows)


STOCK_BUG_RULE = """
title: stock backend bugs
id: 11111111-1111-4111-8111-111111111111
logsource: {product: windows, category: image_load}
detection:
    sel: {GrantedAccess: '0x1F3FFF'}
    filter: {Signed: true}
    condition: sel and not filter
"""


def test_stock_backend_bugs_that_the_faithful_reference_corrects() -> None:
    """Case-sensitive '=' and integer booleans: the stock backend's two disagreements with Sigma."""
    rows = [
        {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 7, "GrantedAccess": "0x1f3fff"},
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "EventID": 7,
            "GrantedAccess": "0x1F3FFF",
            "Signed": "true",
        },
    ]
    engine_rows = {0}  # lower-case value matches (Sigma is caseless); row 1 is filtered (Signed is true)
    stock = ref.evaluate(ref.convert_rules([STOCK_BUG_RULE], faithful=False), rows)
    faithful = ref.evaluate(ref.convert_rules([STOCK_BUG_RULE]), rows)
    assert {i for _, i in faithful} == engine_rows
    assert {i for _, i in stock} == {1}
