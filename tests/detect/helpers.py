"""Helpers shared by the detection tests: tiny rules, events, and both evaluation paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from openmdr.detect import Engine, ir, library_from_texts
from openmdr.models.event import Event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rule_text(
    detection: Mapping[str, Any],
    rule_id: str = "00000000-0000-4000-8000-000000000001",
    logsource: Mapping[str, str] | None = None,
    **extra: Any,
) -> str:
    """YAML of a minimal Sigma rule with ``detection`` (and optional other keys)."""
    doc: dict[str, Any] = {
        "title": extra.pop("title", f"rule {rule_id[-4:]}"),
        "id": rule_id,
        "status": "test",
        "author": "OpenMDR tests",
        "level": extra.pop("level", "high"),
        "logsource": dict(logsource or {"product": "test"}),
        "detection": dict(detection),
    }
    doc.update(extra)
    return yaml.safe_dump(doc, sort_keys=False)


def event(
    fields: Mapping[str, Any], product: str = "test", tenant: str = "acme", time: datetime | None = None, **attrs: Any
) -> Event:
    """An event with the given raw ``fields`` (log source product ``test`` by default)."""
    return Event(time=time or T0, source_format="json", fields=dict(fields), tenant=tenant, product=product, **attrs)


def engine_for(*texts: str, **options: Any) -> Engine:
    """An engine compiled (no cache) from rule YAML texts."""
    eng = Engine(**options)
    eng.compile(library_from_texts((f"r{i}.yml", t) for i, t in enumerate(texts)))
    return eng


def matches(detection: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Per row, whether a rule with ``detection`` fires, checked on both evaluation paths.

    The column scanner (``Engine.match``) and the per-row reference meaning
    (:func:`openmdr.detect.ir.row_predicate`) must agree; the agreed answer is returned.
    """
    eng = engine_for(rule_text(detection))
    ruleset = eng.ruleset
    assert ruleset is not None
    assert not ruleset.problems, [p.reason for p in ruleset.problems]
    events = [event(r) for r in rows]
    hit_rows = {i for i, _vid in eng.match(events)}
    scanned = [i in hit_rows for i in range(len(rows))]
    variant = ruleset.variants[0]
    preds = [ir.row_predicate(t) for t in ruleset.tests]
    per_row = [ir.eval_expr(variant.expr, lambda t, r=r: preds[t](r)) for r in rows]
    assert scanned == per_row, f"column scanner {scanned} != per-row meaning {per_row}"
    return scanned


def fires(detection: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a rule with ``detection`` fires on one event with fields ``row``."""
    return matches(detection, [row, {"Unrelated": "x"}])[0]


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)
