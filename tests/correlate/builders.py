"""Alert builders and a controllable clock for the correlation tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from openmdr.models.alert import Alert

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def alert(
    rule: str,
    minutes: float,
    tenant: str = "acme",
    severity: str = "high",
    source: str = "sigma",
    attack: list[str] | None = None,
    tactics: list[str] | None = None,
    details: dict[str, Any] | None = None,
    evidence: list[str] | None = None,
    **entities: Any,
) -> Alert:
    """An alert of ``rule`` at T0 + ``minutes`` on ``entities``."""
    at = T0 + timedelta(minutes=minutes)
    return Alert(
        tenant=tenant,
        rule_id=rule,
        title=f"rule {rule}",
        severity=severity,
        source=source,
        first_seen=at,
        last_seen=at,
        attack=list(attack or []),
        tactics=list(tactics or []),
        entities=entities,
        evidence=list(evidence if evidence is not None else [f"{tenant}-{rule}-{minutes}"]),
        details=dict(details or {}),
    )
