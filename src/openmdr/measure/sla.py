"""SLA figures of a tenant: mean and median time to detect, acknowledge, contain and resolve.

Everything is computed from the cases' own SLA timestamps (:class:`openmdr.models.SlaClock`),
so the figures a customer reads are the ones the case history proves.  Only confirmed
incidents count towards MTTD/MTTR: cases resolved as true positives, and cases contained
(acted upon) but not yet resolved.  An open, unconfirmed case may still be a false
positive, and a false positive has no attack to detect.  Off-hours share is the fraction
of confirmed detections outside the tenant's working hours in its own time zone.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openmdr.models import Case, TenantInfo


def is_off_hours(moment: datetime, tenant: TenantInfo) -> bool:
    """True when ``moment`` falls outside the tenant's working days and hours (tenant-local time)."""
    local = moment.astimezone(ZoneInfo(tenant.timezone))
    start, end = tenant.working_hours
    if local.weekday() not in tenant.working_days:
        return True
    hour = local.hour + local.minute / 60
    return not (start <= hour < end)


def _summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean_s": None, "median_s": None, "max_s": None}
    return {
        "count": len(values),
        "mean_s": statistics.fmean(values),
        "median_s": statistics.median(values),
        "max_s": max(values),
    }


@dataclass(slots=True)
class SlaReport:
    """A tenant's SLA figures (seconds) and case counts."""

    tenant: str
    cases: int = 0
    open_cases: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_resolution: dict[str, int] = field(default_factory=dict)
    time_to_detect: dict[str, float | int | None] = field(default_factory=dict)
    time_to_acknowledge: dict[str, float | int | None] = field(default_factory=dict)
    time_to_contain: dict[str, float | int | None] = field(default_factory=dict)
    time_to_resolve: dict[str, float | int | None] = field(default_factory=dict)
    detections: int = 0
    off_hours_detections: int = 0

    @property
    def mttd_s(self) -> float | None:
        """Mean time to detect (first malicious event -> detection), seconds."""
        return self.time_to_detect.get("mean_s")  # type: ignore[return-value]

    @property
    def mttr_s(self) -> float | None:
        """Mean time to respond (detection -> containment), seconds."""
        return self.time_to_contain.get("mean_s")  # type: ignore[return-value]

    @property
    def off_hours_share(self) -> float | None:
        """Fraction of detections outside the tenant's working hours."""
        return self.off_hours_detections / self.detections if self.detections else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON reports and the API)."""
        return {
            "tenant": self.tenant, "cases": self.cases, "open_cases": self.open_cases,
            "by_status": self.by_status, "by_resolution": self.by_resolution,
            "time_to_detect": self.time_to_detect, "time_to_acknowledge": self.time_to_acknowledge,
            "time_to_contain": self.time_to_contain, "time_to_resolve": self.time_to_resolve,
            "mttd_s": self.mttd_s, "mttr_s": self.mttr_s, "detections": self.detections,
            "off_hours_detections": self.off_hours_detections, "off_hours_share": self.off_hours_share,
        }  # fmt: skip


def sla_report(tenant: TenantInfo, cases: Iterable[Case]) -> SlaReport:
    """Compute a tenant's SLA figures from its cases (cases of other tenants are refused)."""
    report = SlaReport(tenant=tenant.name)
    detect: list[float] = []
    ack: list[float] = []
    contain: list[float] = []
    resolve: list[float] = []
    for case in cases:
        if case.tenant != tenant.name:
            raise ValueError(f"case {case.case_id} belongs to {case.tenant!r}, not {tenant.name!r}")
        if case.merged_into is not None:
            continue
        report.cases += 1
        report.open_cases += case.is_open
        report.by_status[case.status] = report.by_status.get(case.status, 0) + 1
        if case.resolution:
            report.by_resolution[case.resolution] = report.by_resolution.get(case.resolution, 0) + 1
        if case.resolution != "true_positive" and case.status != "contained":
            continue
        sla = case.sla
        if sla.detected_at is not None:
            report.detections += 1
            report.off_hours_detections += is_off_hours(sla.detected_at, tenant)
        for bucket, value in (
            (detect, sla.time_to_detect()),
            (contain, sla.time_to_contain()),
            (resolve, sla.time_to_resolve()),
        ):
            if value is not None:
                bucket.append(value)
        if sla.detected_at is not None and sla.acknowledged_at is not None:
            ack.append(max(0.0, (sla.acknowledged_at - sla.detected_at).total_seconds()))
    report.time_to_detect = _summary(detect)
    report.time_to_acknowledge = _summary(ack)
    report.time_to_contain = _summary(contain)
    report.time_to_resolve = _summary(resolve)
    return report
