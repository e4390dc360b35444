"""One way to build an analytics alert, so every analytic follows the same conventions.

``source`` is ``analytics:<name>``, ``rule_id`` ``analytics.<name>``, times are aware UTC,
evidence is capped, and ``explanation`` states statistic, baseline and threshold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from openmdr.models.alert import Alert


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), UTC)


def build_alert(
    tenant: str,
    analytic: str,
    title: str,
    severity: str,
    first: float,
    last: float,
    *,
    attack: list[str],
    tactics: list[str],
    entities: dict[str, Any],
    evidence: list[str],
    event_count: int,
    explanation: str,
    details: dict[str, Any],
    confidence: float,
    max_evidence: int,
) -> Alert:
    """An :class:`~openmdr.models.alert.Alert` for analytic ``analytic`` (times in epoch seconds)."""
    return Alert(
        tenant=tenant,
        rule_id=f"analytics.{analytic}",
        title=title,
        severity=severity,
        source=f"analytics:{analytic}",
        first_seen=utc(first),
        last_seen=utc(max(first, last)),
        attack=attack,
        tactics=tactics,
        entities=entities,
        event_count=event_count,
        evidence=evidence[:max_evidence],
        confidence=confidence,
        explanation=explanation,
        details=details,
        tags=["analytics", analytic],
    )
