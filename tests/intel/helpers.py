"""Helpers of the threat-intelligence tests: a controllable clock, events, batches, tenants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from openmdr.models import Event, TenantInfo, events_to_table

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Clock:
    """A controllable clock: tests move time by assigning ``now``."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def event(event_id: str, tenant: str = "acme", time: datetime = NOW, fields: dict[str, Any] | None = None,
          **kw: Any) -> Event:  # fmt: skip
    """One normalized event with the given entity fields."""
    kw.setdefault("ingested_at", time)
    return Event(time=time, source_format="json", fields=fields or {}, tenant=tenant, event_id=event_id, **kw)


def table(*events: Event) -> pa.Table:
    """An EVENT_SCHEMA batch of ``events``."""
    return events_to_table(list(events))


ACME = TenantInfo(name="acme", networks=("10.1.0.0/16",), domains=("acme.example",))
GLOBEX = TenantInfo(name="globex", networks=("10.2.0.0/16",), domains=("globex.example", "globex-mail.example"))
