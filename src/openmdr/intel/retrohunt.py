"""Retro-hunt: look for indicators in every tenant's stored history.

One DuckDB query reads the day partitions of all tenants in range at once (only the
columns indicators can match on), with a coarse SQL pre-filter built from the indicators
(equality for exact types, label-suffix for domains, octet prefixes for CIDRs) so Parquet
is scanned once and only candidate rows come back.  The candidates then go through the same
:class:`~openmdr.intel.matcher.IndicatorMatcher` as live traffic, so subdomain, CIDR,
tenant-scope, expiry and allow-list rules are exactly those of live matching.

The tenant of a row is taken from the partition path (``tenant=<name>``), which only the
lake writes, never from the row itself.  This is a provider-side operation over every
tenant; the alerts it returns each belong to one tenant and carry only that tenant's events.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.intel.matcher import IndicatorMatcher
from openmdr.models.alert import Alert
from openmdr.models.indicator import Indicator
from openmdr.store.intel import AllowEntry
from openmdr.store.lake import EventLake

#: Columns a retro-hunt reads (the tenant comes from the path).
HUNT_COLUMNS: tuple[str, ...] = (
    "event_id", "time", "host", "user", "src_ip", "dst_ip", "domain", "url", "hash_md5", "hash_sha1",
    "hash_sha256", "user_agent",
)  # fmt: skip
_CHUNK = 200


@dataclass(slots=True)
class HuntStats:
    """What one retro-hunt read and found."""

    tenants: int = 0
    files: int = 0
    rows_matched: int = 0
    seconds: float = 0.0
    by_tenant: dict[str, int] = field(default_factory=dict)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def hunt_predicate(indicators: Sequence[Indicator]) -> tuple[str, list[Any], bool]:
    """SQL pre-filter matching every row an indicator could match (a superset), its parameters, needs ``fields``."""
    clauses: list[str] = []
    params: list[Any] = []
    exact_ips = sorted({i.value for i in indicators if i.type == "ip"})
    if exact_ips:
        marks = ", ".join("?" * len(exact_ips))
        clauses.append(f"src_ip IN ({marks}) OR dst_ip IN ({marks})")
        params += exact_ips + exact_ips
    needs_fields = False
    for ind in indicators:
        v = ind.value
        if ind.type == "cidr":
            if ":" in v:
                clauses.append("contains(src_ip, ':') OR contains(dst_ip, ':')")
                continue
            address, _, length = v.partition("/")
            octets = int(length) // 8
            prefix = ".".join(address.split(".")[:octets]) + "." if octets else ""
            clauses.append("starts_with(src_ip, ?) OR starts_with(dst_ip, ?)")
            params += [prefix, prefix]
        elif ind.type == "domain":
            clauses.append("lower(domain) = ? OR ends_with(lower(domain), ?) OR contains(lower(url), ?)")
            params += [v, "." + v, v]
        elif ind.type == "url":
            clauses.append("url = ?")
            params.append(v)
        elif ind.type in ("md5", "sha1", "sha256"):
            clauses.append(f"lower(hash_{ind.type}) = ?")
            params.append(v)
        elif ind.type == "email":
            clauses.append('lower("user") = ?')
            params.append(v)
        elif ind.type == "user_agent":
            clauses.append("user_agent = ?")
            params.append(v)
        elif ind.type == "ja3":
            clauses.append("contains(lower(fields), ?)")
            params.append(v)
            needs_fields = True
        elif ind.type == "ip" and ":" in v:
            clauses.append("contains(src_ip, ':') OR contains(dst_ip, ':')")
    return " OR ".join(f"({c})" for c in clauses) or "false", params, needs_fields


def hunt_lake(
    lake: EventLake,
    indicators: Sequence[Indicator],
    since: datetime,
    until: datetime,
    allow: Sequence[AllowEntry] = (),
    tenants: Sequence[str] | None = None,
    now: datetime | None = None,
    skip_hosts: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[Alert], HuntStats]:
    """Alerts for every stored event in ``[since, until]`` of ``tenants`` (default all) hit by ``indicators``.

    ``skip_hosts`` maps a tenant to host names and internal addresses whose events are left
    out (the victims of the case an indicator was learned from, already investigated there):
    a row is skipped when its ``host``, ``src_ip`` or ``dst_ip`` is listed.
    """
    started = time.perf_counter()
    stats = HuntStats()
    if not indicators:
        return [], stats
    scopes = {i.tenant for i in indicators}
    names = list(tenants) if tenants is not None else lake.tenants()
    if None not in scopes:  # only tenant-scoped indicators: only their tenants need reading
        names = [t for t in names if t in scopes]
    files = [str(f) for t in names for f in lake.files(t, since, until)]
    stats.tenants = len(names)
    stats.files = len(files)
    if not files:
        stats.seconds = time.perf_counter() - started
        return [], stats
    matcher = IndicatorMatcher(indicators, allow, clock=lambda: now or until)
    alerts: list[Alert] = []
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET threads TO 2")
        listing = ", ".join(_quote(f) for f in files)
        for start in range(0, len(indicators), _CHUNK):
            chunk = indicators[start : start + _CHUNK]
            predicate, params, needs_fields = hunt_predicate(chunk)
            columns = ", ".join(f'"{c}"' for c in HUNT_COLUMNS + (("fields",) if needs_fields else ()))
            sql = (
                f"SELECT {columns}, regexp_extract(filename, 'tenant=([^/\\\\]+)[/\\\\]date=', 1) AS tenant "
                f"FROM read_parquet([{listing}], filename = true, union_by_name = true) "
                f"WHERE time >= ? AND time <= ? AND ({predicate})"
            )
            table: pa.Table = conn.sql(sql, params=[since, until, *params]).to_arrow_table()
            stats.rows_matched += table.num_rows
            if table.num_rows and skip_hosts:
                table = _without_hosts(table, skip_hosts)
            if table.num_rows:
                alerts.extend(matcher.match(table, now=now or until))
    finally:
        conn.close()
    for alert in alerts:
        stats.by_tenant[alert.tenant] = stats.by_tenant.get(alert.tenant, 0) + 1
    stats.seconds = time.perf_counter() - started
    return alerts, stats


def _without_hosts(table: pa.Table, skip_hosts: Mapping[str, Collection[str]]) -> pa.Table:
    """``table`` without the rows of each tenant's listed hosts/addresses (compared case-insensitively)."""
    drop = np.zeros(table.num_rows, dtype=bool)
    columns = [pc.utf8_lower(table.column(c)) for c in ("host", "src_ip", "dst_ip") if c in table.column_names]
    for tenant, names in skip_hosts.items():
        if not names:
            continue
        in_tenant = np.asarray(pc.equal(table.column("tenant"), tenant).fill_null(False), dtype=bool)
        value_set = pa.array(sorted({n.lower() for n in names}), pa.string())
        for column in columns:
            drop |= in_tenant & np.asarray(pc.is_in(column, value_set=value_set), dtype=bool)
    return table.filter(pa.array(~drop)) if drop.any() else table
