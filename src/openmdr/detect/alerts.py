"""Turning rule hits into :class:`~openmdr.models.alert.Alert` objects.

Every alert carries the rule's author (the Detection Rule License requires it), its
ATT&CK techniques and tactics from the rule's tags, the entities of the events behind it,
their ids as evidence, and in ``details`` the rule file, status, log source and which
named detections matched.  The schema is documented in ``docs/alerts.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from openmdr.detect.compiler import RuleMeta
from openmdr.models.alert import Alert
from openmdr.models.event import Event, make_event_id

#: Confidence of a Sigma alert by the rule's maturity (SigmaHQ ``status``).
STATUS_CONFIDENCE: dict[str | None, float] = {
    "stable": 0.8,
    "test": 0.7,
    "experimental": 0.6,
    "unsupported": 0.5,
    "deprecated": 0.5,
    None: 0.6,
}
#: Most event ids an alert lists as evidence (the count is always exact).
MAX_EVIDENCE = 1000

_ENTITY_ATTRS: tuple[tuple[str, str], ...] = (
    ("host", "host"),
    ("user", "user"),
    ("src_ip", "src_ip"),
    ("dst_ip", "dst_ip"),
    ("process", "process_image"),
    ("parent_process", "parent_image"),
    ("command_line", "process_command_line"),
    ("domain", "domain"),
    ("url", "url"),
    ("file", "file_path"),
)


def event_key(event: Event) -> str:
    """The event's id, or a content-derived one when the event was never given an id."""
    if event.event_id:
        return event.event_id
    payload = orjson.dumps(event.fields, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS)
    return make_event_id(event.tenant, event.source_format, event.natural_key, payload)


#: Windows account-management events: the normalized user is the account changed, the subject
#: (``SubjectUserName``) the account that changed it; both are entities of an alert.
_ACCOUNT_MANAGEMENT_CODES = frozenset(
    {"4720", "4722", "4723", "4724", "4725", "4726", "4727", "4728", "4729", "4730", "4731", "4732", "4733",
     "4735", "4737", "4738", "4740", "4754", "4755", "4756", "4757", "4767", "4781"}
)  # fmt: skip


def _acting_account(event: Event) -> str | None:
    """The account that made an account-management change, when it is not the event's own user."""
    if event.event_code not in _ACCOUNT_MANAGEMENT_CODES:
        return None
    subject = event.fields.get("SubjectUserName")
    if not isinstance(subject, str) or not subject or subject == "-" or subject.endswith("$"):
        return None
    return None if subject == event.user else subject


def entities_of(events: Iterable[Event]) -> dict[str, Any]:
    """Entity values of ``events``: a scalar when all agree, a sorted list when several."""
    seen: dict[str, list[Any]] = {}
    for ev in events:
        for key, attr in _ENTITY_ATTRS:
            value = getattr(ev, attr)
            if value is not None and value != "":
                bucket = seen.setdefault(key, [])
                if value not in bucket:
                    bucket.append(value)
        subject = _acting_account(ev)
        if subject is not None:
            bucket = seen.setdefault("user", [])
            if subject not in bucket:
                bucket.append(subject)
        hashes = ev.hash_sha256 or ev.hash_sha1 or ev.hash_md5
        if hashes:
            bucket = seen.setdefault("hash", [])
            if hashes not in bucket:
                bucket.append(hashes)
    return {k: v[0] if len(v) == 1 else sorted(v, key=str) for k, v in seen.items()}


def event_entities(event: Event) -> dict[str, Any]:
    """``entities_of((event,))`` for one event, without the bookkeeping that merging events needs."""
    out: dict[str, Any] = {}
    for key, attr in _ENTITY_ATTRS:
        value = getattr(event, attr)
        if value is not None and value != "":
            out[key] = value
    subject = _acting_account(event)
    if subject is not None:
        user = out.get("user")
        if user is None:
            out["user"] = subject
        elif subject != user:
            out["user"] = sorted((user, subject), key=str)
    hashes = event.hash_sha256 or event.hash_sha1 or event.hash_md5
    if hashes:
        out["hash"] = hashes
    return out


def _logsource_dict(meta: RuleMeta) -> dict[str, str]:
    product, service, category = meta.logsource
    out = {}
    if product:
        out["product"] = product
    if service:
        out["service"] = service
    if category:
        out["category"] = category
    return out


def rule_details(meta: RuleMeta) -> dict[str, Any]:
    """The rule facts every alert of the rule carries in ``details``."""
    return {
        "rule_path": meta.path,
        "rule_status": meta.status,
        "rule_level": meta.level,
        "logsource": _logsource_dict(meta),
        "falsepositives": list(meta.falsepositives),
        "license": "DRL-1.1",
    }


def detection_alert(
    meta: RuleMeta,
    event: Event,
    severity: str,
    matched: Sequence[str],
    variant: str = "",
) -> Alert:
    """The alert of one detection rule matching one event."""
    details = rule_details(meta)
    details["matched"] = list(matched)
    if variant:
        details["variant"] = variant
    explanation = f"Sigma rule matched: {', '.join(matched)}" if matched else "Sigma rule condition matched"
    return Alert(
        tenant=event.tenant,
        rule_id=meta.id,
        title=meta.title,
        severity=severity,
        source="sigma",
        first_seen=event.time,
        last_seen=event.time,
        author=meta.author,
        description=meta.description,
        attack=list(meta.attack),
        tactics=list(meta.tactics),
        entities=event_entities(event),
        event_count=1,
        evidence=[event_key(event)],
        confidence=STATUS_CONFIDENCE.get(meta.status, 0.6),
        explanation=explanation,
        references=list(meta.references),
        tags=list(meta.tags),
        details=details,
    )


def correlation_alert(
    meta: RuleMeta,
    tenant: str,
    events: Sequence[Event],
    severity: str,
    details_extra: dict[str, Any],
    explanation: str,
) -> Alert:
    """The alert of a correlation rule over the events of one window."""
    details = rule_details(meta)
    details.update(details_extra)
    keys = [event_key(e) for e in events]
    times = [e.time for e in events]
    return Alert(
        tenant=tenant,
        rule_id=meta.id,
        title=meta.title,
        severity=severity,
        source="sigma",
        first_seen=min(times),
        last_seen=max(times),
        author=meta.author,
        description=meta.description,
        attack=list(meta.attack),
        tactics=list(meta.tactics),
        entities=entities_of(events),
        event_count=len(events),
        evidence=keys[:MAX_EVIDENCE],
        confidence=min(0.95, STATUS_CONFIDENCE.get(meta.status, 0.6) + 0.1),
        explanation=explanation,
        references=list(meta.references),
        tags=list(meta.tags),
        details=details,
    )
