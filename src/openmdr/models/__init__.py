"""Domain models shared by all stages: events, raw records, rejections (alerts and cases follow)."""

from openmdr.models.event import EVENT_COLUMNS, EVENT_SCHEMA, Event, events_to_table, make_event_id
from openmdr.models.record import ParseError, RawRecord, Rejection

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "Event",
    "ParseError",
    "RawRecord",
    "Rejection",
    "events_to_table",
    "make_event_id",
]

from openmdr.models.tenant import ASSET_CLASSES, CRITICALITY_LEVELS, AssetInfo, TenantInfo

__all__ += ["ASSET_CLASSES", "CRITICALITY_LEVELS", "AssetInfo", "TenantInfo"]

from openmdr.models.alert import ENTITY_KEYS, SEVERITIES, Alert, severity_rank  # noqa: E402

__all__ += ["ENTITY_KEYS", "SEVERITIES", "Alert", "severity_rank"]

from openmdr.models.case import CASE_STATUSES, RESOLUTIONS, Case, CaseNote, Observable, SlaClock  # noqa: E402

__all__ += ["CASE_STATUSES", "RESOLUTIONS", "Case", "CaseNote", "Observable", "SlaClock"]

from openmdr.models.action import ACTION_CATALOGUE, ACTION_STATUSES, ActionRecord, ActionSpec  # noqa: E402

__all__ += ["ACTION_CATALOGUE", "ACTION_STATUSES", "ActionRecord", "ActionSpec"]

from openmdr.models.indicator import INDICATOR_TYPES, TLP_LEVELS, Indicator  # noqa: E402

__all__ += ["INDICATOR_TYPES", "TLP_LEVELS", "Indicator"]
