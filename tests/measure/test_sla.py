"""SLA figures from hand-made cases with known timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openmdr.measure import is_off_hours, sla_report
from openmdr.models import Case, SlaClock, TenantInfo

ACME = TenantInfo(name="acme", timezone="Europe/Berlin", working_hours=(8, 18), working_days=(0, 1, 2, 3, 4))
T0 = datetime(2026, 3, 7, 2, 0, tzinfo=UTC)  # Saturday 03:00 in Berlin


def _case(case_id: str, detect_min: float, contain_min: float | None, **kw: object) -> Case:
    sla = SlaClock(first_event_at=T0, detected_at=T0 + timedelta(minutes=detect_min))
    if contain_min is not None:
        sla.contained_at = sla.detected_at + timedelta(minutes=contain_min)
    return Case(case_id=case_id, tenant="acme", title=case_id, severity="high", sla=sla, **kw)  # type: ignore[arg-type]


def test_mttd_mttr_are_means_of_confirmed_incidents_only() -> None:
    cases = [
        _case("a", 10, 2, status="contained"),
        _case("b", 30, 8, status="resolved", resolution="true_positive"),
        _case("fp", 500, 500, status="resolved", resolution="false_positive"),
        _case("open", 20, None),
    ]
    report = sla_report(ACME, cases)
    assert report.cases == 4 and report.open_cases == 2
    assert report.mttd_s == pytest.approx((10 + 30) / 2 * 60)  # the open, unconfirmed case does not count
    assert report.mttr_s == pytest.approx((2 + 8) / 2 * 60)
    assert report.time_to_contain["count"] == 2
    assert report.by_resolution == {"true_positive": 1, "false_positive": 1}


def test_off_hours_uses_the_tenant_time_zone_and_days() -> None:
    assert is_off_hours(T0, ACME)  # Saturday
    monday_9_berlin = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert not is_off_hours(monday_9_berlin, ACME)
    assert is_off_hours(datetime(2026, 3, 9, 17, 30, tzinfo=UTC), ACME)  # 18:30 local
    report = sla_report(ACME, [_case("a", 1, 1, status="contained")])
    assert report.off_hours_share == 1.0


def test_cases_of_another_tenant_are_refused() -> None:
    other = Case(case_id="x", tenant="globex", title="x", severity="low")
    with pytest.raises(ValueError, match="globex"):
        sla_report(ACME, [other])
