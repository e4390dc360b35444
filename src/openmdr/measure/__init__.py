"""Measure: SLA clocks, MTTD/MTTR and off-hours share per tenant, from the cases' own timestamps."""

from openmdr.measure.sla import SlaReport, is_off_hours, sla_report

__all__ = ["SlaReport", "is_off_hours", "sla_report"]
