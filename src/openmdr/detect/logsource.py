"""Which rules apply to which events: Sigma log sources on both sides.

A rule names its log source as ``product``/``service``/``category``; a field it leaves
out constrains nothing.  An event carries the log source its parser derived
(:attr:`Event.product`, ``service``, ``category``).  For Windows the engine completes
that from the record itself with the tables pySigma's processing pipelines define, so
that routing does not depend on every parser knowing every table:

* the service from the event log channel (``windows_logsource_mapping``: ``Security`` ->
  ``security``, ``Microsoft-Windows-Sysmon/Operational`` -> ``sysmon`` ...);
* the categories of a Sysmon event from its event id
  (``sysmon_generic_logsource_eventid_mapping``: 1 -> ``process_creation``, 13 ->
  ``registry_set`` *and* ``registry_event`` ...);
* PowerShell script/module logging categories (``windows_generic_category_channel_mapping``:
  4104 -> ``ps_script`` ...).

Security-log (4688/4657) events are served by pySigma's ``windows_audit_pipeline``: the
compiler derives a variant of each process-creation and registry rule with the field
names of the Security log, and the base rule skips Security events (see
:data:`AUDIT_CATEGORIES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import (
    generic_logsource_to_windows_audit_event_mapping,
    windows_generic_category_channel_mapping,
)

from openmdr.models.event import Event

Logsource = tuple[str | None, str | None, str | None]


def _build_channel_services() -> dict[str, str]:
    out: dict[str, str] = {}
    for service, channels in windows_logsource_mapping.items():
        for channel in [channels] if isinstance(channels, str) else channels:
            out[channel.lower()] = service
    return out


#: Windows event log channel (lower case) -> Sigma service.
CHANNEL_SERVICES: dict[str, str] = _build_channel_services()


def _build_event_categories() -> dict[tuple[str, int], frozenset[str]]:
    table: dict[tuple[str, int], set[str]] = {}
    for category, ids in sysmon_generic_logsource_eventid_mapping.items():
        for eid in [ids] if isinstance(ids, int) else ids:
            table.setdefault(("sysmon", eid), set()).add(category)
    for category, info in windows_generic_category_channel_mapping.items():
        table.setdefault((info["service"], int(info["EventID"])), set()).add(category)
    return {k: frozenset(v) for k, v in table.items()}


#: (Sigma service, event id) -> the Sigma categories such an event belongs to.
EVENT_CATEGORIES: dict[tuple[str, int], frozenset[str]] = _build_event_categories()

#: Categories whose rules pySigma's windows-audit pipeline maps onto the Security log.
AUDIT_CATEGORIES: frozenset[str] = frozenset(generic_logsource_to_windows_audit_event_mapping)


@dataclass(frozen=True, slots=True)
class EventSource:
    """The log source of an event: one product, the services and categories it belongs to."""

    product: str | None
    services: frozenset[str]
    categories: frozenset[str]

    def matches(self, logsource: Logsource, exclude_services: frozenset[str] = frozenset()) -> bool:
        """Whether a rule with ``logsource`` applies (``None`` parts constrain nothing)."""
        product, service, category = logsource
        if product is not None and product != self.product:
            return False
        if service is not None and service not in self.services:
            return False
        if category is not None and category not in self.categories:
            return False
        return not (exclude_services and not exclude_services.isdisjoint(self.services))


def _event_id(value: Any) -> int | None:
    if value.__class__ is int:
        return value  # type: ignore[no-any-return]
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, dict):  # evtx-style {"#text": 4688, "#attributes": ...}
        return _event_id(value.get("#text"))
    return None


def derive_source(
    product: str | None, service: str | None, category: str | None, channel: Any, event_id: Any
) -> EventSource:
    """Complete a parser-given log source with what the Windows channel and event id imply."""
    services: set[str] = set()
    if service:
        services.add(service.lower())
    categories: set[str] = set()
    if category:
        categories.add(category.lower())
    if isinstance(channel, str) and channel:
        channel_service = CHANNEL_SERVICES.get(channel.lower())
        if channel_service is not None:
            services.add(channel_service)
            if product is None:
                product = "windows"
    eid = _event_id(event_id)
    if eid is not None and (product is None or product == "windows"):
        for svc in tuple(services):
            categories.update(EVENT_CATEGORIES.get((svc, eid), ()))
    return EventSource(product.lower() if product else None, frozenset(services), frozenset(categories))


class SourceResolver:
    """Memoizing :func:`derive_source` for events (a handful of distinct sources per batch)."""

    __slots__ = ("_cache", "_interned")

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], EventSource] = {}
        self._interned: dict[EventSource, EventSource] = {}

    def __call__(self, event: Event) -> EventSource:
        """The :class:`EventSource` of ``event``."""
        return self.resolve(event.product, event.service, event.category, event.fields)

    def resolve(
        self, product: str | None, service: str | None, category: str | None, fields: Mapping[str, Any]
    ) -> EventSource:
        """The :class:`EventSource` of an event given by its log-source columns and fields."""
        channel = fields.get("Channel")
        eid = fields.get("EventID")
        key = (product, service, category, channel, eid)
        try:
            return self._cache[key]
        except TypeError:  # unhashable field values (hostile input): no caching
            return derive_source(product, service, category, channel, eid)
        except KeyError:
            pass
        src = derive_source(product, service, category, channel, eid)
        if len(self._cache) > 65536:
            self._cache.clear()
            self._interned.clear()
        src = self._interned.setdefault(src, src)  # equal sources are one object: callers may group by identity
        self._cache[key] = src
        return src

    def resolve_many(
        self,
        products: Sequence[str | None],
        services: Sequence[str | None],
        categories: Sequence[str | None],
        fields: Sequence[Mapping[str, Any]],
    ) -> list[EventSource]:
        """:meth:`resolve` of every row given column-wise (same results, C-level passes over the rows).

        The cache keys of all rows are built with ``map``/``zip`` and looked up at once;
        only rows whose key is new (or unhashable) go through :meth:`resolve`.
        """
        try:
            channels = list(map(dict.get, fields, repeat("Channel")))  # type: ignore[arg-type]
            eids = list(map(dict.get, fields, repeat("EventID")))  # type: ignore[arg-type]
        except TypeError:  # mappings that are not dicts
            return list(map(self.resolve, products, services, categories, fields))
        keys = list(zip(products, services, categories, channels, eids, strict=True))
        try:
            sources = list(map(self._cache.get, keys))
        except TypeError:  # an unhashable key (hostile input): row by row
            return list(map(self.resolve, products, services, categories, fields))
        if not all(sources):  # a new key (all() tests truth, EventSource is always true, without __eq__)
            for i in [i for i, s in enumerate(sources) if s is None]:
                sources[i] = self.resolve(products[i], services[i], categories[i], fields[i])
        return sources  # type: ignore[return-value]
