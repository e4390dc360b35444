"""Indicator matching over Arrow event batches at line rate, with alerts in the common schema.

:class:`IndicatorMatcher` holds every active indicator (provider-wide and per tenant) in the
columnar structures of :mod:`openmdr.intel.index`: one IPv4 prefix table for addresses and
CIDRs, hash sets for URLs, file hashes, e-mail addresses, user-agents and JA3 fingerprints,
and a suffix-probed set for domains.  :meth:`IndicatorMatcher.match` takes a table in
:data:`openmdr.models.EVENT_SCHEMA` layout (any subset of its columns) and returns one
:class:`~openmdr.models.alert.Alert` per (tenant, indicator) hit.  Per batch the work is a
few array passes per column over the batch's *distinct* values; Python runs per alert only.

Rules enforced per event, not just at build time: an indicator of tenant X only matches X's
events; an expired indicator stops matching the moment it expires; a value on the
allow-list of the provider or of the event's tenant never alerts.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.intel.index import Ip4Index, StringIndex, _csr, _expand, as_string_array, parse_ipv4
from openmdr.models.alert import Alert
from openmdr.models.indicator import HALF_LIFE_DAYS, INDICATOR_TYPES, TLP_LEVELS, Indicator

if TYPE_CHECKING:
    from openmdr.store.intel import AllowEntry, IntelStore, MatchingColumns

#: ``Alert.source`` of every indicator alert.
ALERT_SOURCE = "ioc"
Clock = Callable[[], datetime]

_URL_HOST_RE = r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/?#]*@)?\[?(?P<host>[^\]:/?#]+)"
_JA3_RE = r'"(?:[A-Za-z_.]*\.)?ja3(?:_hash|\.hash)?"\s*:\s*(?:\{[^}]*?"hash"\s*:\s*)?"(?P<h>[0-9a-fA-F]{32})"'
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_EXPIRY = np.iinfo(np.int64).max
#: Most event ids one alert lists as evidence (the count is always complete).
MAX_EVIDENCE = 500
_MAX_ENTITY_VALUES = 20


@dataclass(frozen=True, slots=True)
class MatchField:
    """Where in an event an indicator group is looked for, and under which entity key it is reported."""

    name: str
    column: str
    group: str  # "ip", "domain", "url", "md5", ... ("url_host": domain/IP of the url column; "ja3": in fields)


#: Event columns probed, in order (their position is the field code).
MATCH_FIELDS: tuple[MatchField, ...] = (
    MatchField("src_ip", "src_ip", "ip"),
    MatchField("dst_ip", "dst_ip", "ip"),
    MatchField("domain", "domain", "domain"),
    MatchField("url", "url", "url"),
    MatchField("url_host", "url", "url_host"),
    MatchField("hash_md5", "hash_md5", "md5"),
    MatchField("hash_sha1", "hash_sha1", "sha1"),
    MatchField("hash_sha256", "hash_sha256", "sha256"),
    MatchField("user_agent", "user_agent", "user_agent"),
    MatchField("user", "user", "email"),
    MatchField("ja3", "fields", "ja3"),
)
_FIELD_CODE = {f.name: i for i, f in enumerate(MATCH_FIELDS)}
_TYPE_CODE = {t: i for i, t in enumerate(INDICATOR_TYPES)}
_TLP_CODE = {t: i for i, t in enumerate(TLP_LEVELS)}
_HALF_LIFE = np.array([HALF_LIFE_DAYS.get(t) or 0.0 for t in INDICATOR_TYPES], dtype=np.float64)
_LOWER_GROUPS = {"domain", "md5", "sha1", "sha256", "email", "ja3", "url_host"}
_ENTITY_OF_FIELD = {
    "src_ip": "src_ip", "dst_ip": "dst_ip", "domain": "domain", "url": "url", "url_host": "url",
    "hash_md5": "hash", "hash_sha1": "hash", "hash_sha256": "hash", "user": "user",
}  # fmt: skip
_CONTEXT_COLUMNS = ("host", "user", "src_ip", "dst_ip", "domain", "url")


def _micros(t: datetime | None, default: int) -> int:
    if t is None:
        return default
    return int((t.astimezone(UTC) - _EPOCH).total_seconds() * 1_000_000)


@dataclass(slots=True)
class MatchSet:
    """Raw hits of one batch: parallel arrays of row position, member (indicator) index and field code."""

    rows: np.ndarray
    members: np.ndarray
    fields: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


class _Indexes:
    """Lookup structures for one set of entries (indicators, or allow-list entries)."""

    def __init__(self, types: Sequence[str], values: Sequence[str]) -> None:
        type_arr = np.array([_TYPE_CODE[t] for t in types], dtype=np.int8) if types else np.zeros(0, np.int8)
        value_arr = pa.array(values, type=pa.string())
        members = np.arange(len(type_arr), dtype=np.int64)
        self.strings: dict[str, StringIndex] = {}
        for kind in ("domain", "url", "md5", "sha1", "sha256", "email", "user_agent", "ja3"):
            sel = np.nonzero(type_arr == _TYPE_CODE[kind])[0]
            if len(sel):
                self.strings[kind] = StringIndex.build(value_arr.take(pa.array(sel)), members[sel])
        nets: list[np.ndarray] = []
        lens: list[np.ndarray] = []
        mems: list[np.ndarray] = []
        v6_exact_values: list[str] = []
        v6_exact_members: list[int] = []
        self.v6_networks: list[tuple[ipaddress.IPv6Network, int]] = []
        ip_sel = np.nonzero(type_arr == _TYPE_CODE["ip"])[0]
        if len(ip_sel):
            ip_vals = value_arr.take(pa.array(ip_sel))
            numbers, ok = parse_ipv4(ip_vals)
            nets.append(numbers[ok])
            lens.append(np.full(int(ok.sum()), 32, dtype=np.int64))
            mems.append(ip_sel[ok])
            for pos in np.nonzero(~ok)[0]:  # IPv6 addresses: rare, canonical already
                v6_exact_values.append(ip_vals[int(pos)].as_py())
                v6_exact_members.append(int(ip_sel[pos]))
        cidr_sel = np.nonzero(type_arr == _TYPE_CODE["cidr"])[0]
        if len(cidr_sel):
            cidr_vals = value_arr.take(pa.array(cidr_sel))
            parts = pc.split_pattern(cidr_vals, "/")
            address = pc.list_element(parts, 0)
            length = np.asarray(pc.cast(pc.list_element(parts, 1), pa.int64()).fill_null(128), dtype=np.int64)
            numbers, ok = parse_ipv4(address)
            ok &= length <= 32
            nets.append(numbers[ok])
            lens.append(length[ok])
            mems.append(cidr_sel[ok])
            for pos in np.nonzero(~ok)[0]:
                net = ipaddress.ip_network(cidr_vals[int(pos)].as_py(), strict=False)
                if isinstance(net, ipaddress.IPv6Network):
                    self.v6_networks.append((net, int(cidr_sel[pos])))
        if nets:
            self.ip4: Ip4Index | None = Ip4Index.build(np.concatenate(nets), np.concatenate(lens), np.concatenate(mems))
        else:
            self.ip4 = None
        self.ip6 = (
            StringIndex.build(v6_exact_values, np.array(v6_exact_members, dtype=np.int64)) if v6_exact_values else None
        )

    def has(self, group: str) -> bool:
        """True when some entry can match the events' ``group`` field (skip the column otherwise)."""
        if group == "ip":
            return self.ip4 is not None or self.ip6 is not None or bool(self.v6_networks)
        if group == "url_host":
            return "domain" in self.strings or self.ip4 is not None
        return group in self.strings

    def _ip_lookup(self, values: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
        rows: list[np.ndarray] = [np.zeros(0, np.int64)]
        members: list[np.ndarray] = [np.zeros(0, np.int64)]
        numbers, ok = parse_ipv4(values)
        if self.ip4 is not None:
            r, m = self.ip4.lookup(numbers, ok)
            rows.append(r)
            members.append(m)
        if self.ip6 is not None or self.v6_networks:
            other = np.nonzero(~ok & np.asarray(pc.match_substring(values, ":").fill_null(False), dtype=bool))[0]
            for pos in other:  # distinct IPv6 values of the batch: canonicalised one by one (rare in telemetry)
                try:
                    addr = ipaddress.ip_address(values[int(pos)].as_py())
                except ValueError:
                    continue
                if self.ip6 is not None:
                    r, m = self.ip6.lookup(pa.array([addr.compressed]))
                    rows.append(np.full(len(m), pos, dtype=np.int64))
                    members.append(m)
                for net, member in self.v6_networks:
                    if addr.version == 6 and addr in net:
                        rows.append(np.array([pos], dtype=np.int64))
                        members.append(np.array([member], dtype=np.int64))
        return np.concatenate(rows), np.concatenate(members)

    def lookup(self, group: str, distinct: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
        """Hits of the distinct values of one column: (position in ``distinct``, member)."""
        if group == "ip":
            return self._ip_lookup(distinct)
        if group in _LOWER_GROUPS:
            distinct = pc.utf8_lower(distinct)
        if group == "domain":
            return self.strings["domain"].lookup_suffixes(pc.utf8_rtrim(distinct, characters="."))
        if group == "url_host":
            hosts = pc.struct_field(pc.extract_regex(distinct, _URL_HOST_RE), "host")
            rows: list[np.ndarray] = []
            members: list[np.ndarray] = []
            if "domain" in self.strings:
                r, m = self.strings["domain"].lookup_suffixes(hosts)
                rows.append(r)
                members.append(m)
            if self.ip4 is not None:
                r, m = self._ip_lookup(as_string_array(hosts))
                rows.append(r)
                members.append(m)
            return np.concatenate(rows), np.concatenate(members)
        return self.strings[group].lookup(distinct)

    def probe(self, table: pa.Table) -> MatchSet:
        """Every (row, member, field) hit of a batch."""
        rows_out: list[np.ndarray] = [np.zeros(0, np.int64)]
        members_out: list[np.ndarray] = [np.zeros(0, np.int64)]
        fields_out: list[np.ndarray] = [np.zeros(0, np.int64)]
        names = set(table.column_names)
        for code, spec in enumerate(MATCH_FIELDS):
            if spec.column not in names or not self.has(spec.group):
                continue
            column = as_string_array(table.column(spec.column))
            if spec.group == "ja3":
                candidates = np.nonzero(np.asarray(pc.match_substring(column, "ja3").fill_null(False), dtype=bool))[0]
                if len(candidates) == 0:
                    continue
                extracted = pc.struct_field(pc.extract_regex(column.take(pa.array(candidates)), _JA3_RE), "h")
                r, m = self.lookup("ja3", as_string_array(extracted))
                rows_out.append(candidates[r])
                members_out.append(m)
                fields_out.append(np.full(len(r), code, dtype=np.int64))
                continue
            encoded = pc.dictionary_encode(column)
            distinct = as_string_array(encoded.dictionary)
            if len(distinct) == 0:
                continue
            slots, members = self.lookup(spec.group, distinct)
            if len(slots) == 0:
                continue
            codes = encoded.indices
            valid = np.asarray(codes.is_valid())
            positions = np.nonzero(valid)[0]
            code_values = np.asarray(codes.fill_null(0), dtype=np.int64)[positions]
            keys, offsets, grouped_rows = _csr(code_values, positions)
            # Map each hit's distinct-value position to its slot in ``keys`` (every distinct value occurs).
            key_slot = np.searchsorted(keys, slots)
            hit_index, event_rows = _expand(np.arange(len(slots), dtype=np.int64), key_slot, offsets, grouped_rows)
            rows_out.append(event_rows)
            members_out.append(members[hit_index])
            fields_out.append(np.full(len(event_rows), code, dtype=np.int64))
        return MatchSet(np.concatenate(rows_out), np.concatenate(members_out), np.concatenate(fields_out))


@dataclass(slots=True)
class _State:
    """One immutable generation of the matcher (swapped whole on refresh).

    ``layers`` are index structures with the member offset they start at: the full build,
    then small deltas appended by :meth:`IndicatorMatcher.refresh`.  A member replaced by a
    later delta (same indicator id, changed) is switched off in ``active``.
    """

    layers: list[tuple[_Indexes, int]]
    ids: list[str]
    types: np.ndarray
    values: list[str]
    tenant_codes: np.ndarray  # -1: provider-wide
    confidence: np.ndarray
    tlp: np.ndarray
    last_seen: np.ndarray  # µs since epoch (0: unknown)
    expires: np.ndarray  # µs since epoch (max: never)
    active: np.ndarray
    allow: _Indexes
    allow_tenant_codes: np.ndarray
    tenant_names: dict[str, int]
    revision: int = -1
    allow_revision: int = -1


#: Deltas kept as separate layers before a refresh rebuilds everything in one.
MAX_LAYERS = 8
#: A delta larger than this (or than 5 % of the indicators) triggers a full rebuild instead.
MAX_DELTA = 20_000


def _tenant_codes(names: dict[str, int], tenants: Sequence[str | None]) -> np.ndarray:
    for t in tenants:
        if t and t not in names:
            names[t] = len(names)
    return np.array([names[t] if t else -1 for t in tenants], dtype=np.int32)


class IndicatorMatcher:
    """Matches event batches against every active indicator and emits ``ioc`` alerts.

    Build it with :meth:`from_store` (the service: call :meth:`refresh` before a batch; it
    costs one primary-key read when nothing changed and loads only what changed otherwise)
    or from indicators directly.  ``min_confidence`` drops hits of indicators whose aged
    confidence fell below it.
    """

    def __init__(
        self,
        indicators: Sequence[Indicator] = (),
        allow: Sequence[AllowEntry] = (),
        clock: Clock | None = None,
        min_confidence: int = 0,
    ) -> None:
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.min_confidence = min_confidence
        self.store: IntelStore | None = None
        self._lock = threading.Lock()
        self._details: dict[str, Indicator] = {i.id: i for i in indicators}
        self._state = self._build(
            [i.id for i in indicators],
            [i.tenant for i in indicators],
            [i.type for i in indicators],
            [i.value for i in indicators],
            [i.confidence for i in indicators],
            [i.tlp for i in indicators],
            [i.last_seen or i.first_seen for i in indicators],
            [i.expires_at for i in indicators],
            allow,
        )

    @classmethod
    def from_store(cls, store: IntelStore, clock: Clock | None = None, min_confidence: int = 0) -> IndicatorMatcher:
        """A matcher over every indicator in the store not expired now, with every allow-list."""
        matcher = cls([], (), clock, min_confidence)
        matcher.store = store
        matcher._load_from_store()
        return matcher

    def _load_from_store(self) -> None:
        assert self.store is not None
        allow_revision = self.store.version()[1]
        allow = self.store.list_allow(all_scopes=True)
        cols = self.store.matching_columns(self.clock())
        state = self._build(
            cols.ids, cols.tenants, cols.types, cols.values, cols.confidences, cols.tlps, cols.last_seen,
            cols.expires_at, allow,
        )  # fmt: skip
        state.revision = cols.revision
        state.allow_revision = allow_revision
        with self._lock:
            self._state = state
            self._details = {}

    def refresh(self, force: bool = False) -> bool:
        """Catch up with the store: load changed indicators as a delta (or rebuild), reload allow-lists.

        Returns True when anything changed.  Cheap when nothing did: one primary-key read.
        """
        if self.store is None:
            return False
        if force:
            self._load_from_store()
            return True
        revision, allow_revision = self.store.version()
        state = self._state
        if revision == state.revision and allow_revision == state.allow_revision:
            return False
        if revision != state.revision:
            delta = self.store.matching_columns(self.clock(), since_revision=state.revision)
            too_big = len(delta) > max(MAX_DELTA, len(state.ids) // 20) or len(state.layers) >= MAX_LAYERS
            if too_big:
                self._load_from_store()
                return True
            state = self._with_delta(state, delta)
            with self._lock:
                for ind_id in delta.ids:
                    self._details.pop(ind_id, None)
        if allow_revision != state.allow_revision:
            state = self._with_allow(state, self.store.list_allow(all_scopes=True), allow_revision)
        self._state = state
        return True

    @staticmethod
    def _with_delta(state: _State, delta: MatchingColumns) -> _State:
        """A new generation: ``state`` plus a layer of the changed indicators (old versions switched off)."""
        offset = len(state.ids)
        # Older versions of the changed indicators: one vectorised set lookup over all ids.
        replaced = np.asarray(pc.is_in(pa.array(state.ids, pa.string()), value_set=pa.array(delta.ids, pa.string())))
        active = np.concatenate([state.active & ~replaced, np.ones(len(delta), dtype=bool)])
        names = dict(state.tenant_names)
        return _State(
            layers=[*state.layers, (_Indexes(delta.types, delta.values), offset)],
            ids=state.ids + list(delta.ids),
            types=np.concatenate([state.types, np.array([_TYPE_CODE[t] for t in delta.types], dtype=np.int8)]),
            values=state.values + list(delta.values),
            tenant_codes=np.concatenate([state.tenant_codes, _tenant_codes(names, delta.tenants)]),
            confidence=np.concatenate([state.confidence, np.array(delta.confidences, dtype=np.float64)]),
            tlp=np.concatenate([state.tlp, np.array([_TLP_CODE[t] for t in delta.tlps], dtype=np.int8)]),
            last_seen=np.concatenate([state.last_seen, np.array([_micros(t, 0) for t in delta.last_seen], np.int64)]),
            expires=np.concatenate(
                [state.expires, np.array([_micros(t, _NO_EXPIRY) for t in delta.expires_at], np.int64)]
            ),
            active=active,
            allow=state.allow,
            allow_tenant_codes=state.allow_tenant_codes,
            tenant_names=names,
            revision=delta.revision,
            allow_revision=state.allow_revision,
        )

    @staticmethod
    def _with_allow(state: _State, allow: Sequence[AllowEntry], allow_revision: int) -> _State:
        names = dict(state.tenant_names)
        codes = _tenant_codes(names, [a.tenant for a in allow])
        fields_ = {name: getattr(state, name) for name in _State.__slots__}  # type: ignore[attr-defined]
        fields_.update(
            allow=_Indexes([a.type for a in allow], [a.value for a in allow]),
            allow_tenant_codes=codes,
            tenant_names=names,
            allow_revision=allow_revision,
        )
        return _State(**fields_)

    def __len__(self) -> int:
        """Indicators that can match now (current versions, not expired)."""
        state = self._state
        return int((state.active & (state.expires > _micros(self.clock(), 0))).sum())

    @staticmethod
    def _build(
        ids: Sequence[str],
        tenants: Sequence[str | None],
        types: Sequence[str],
        values: Sequence[str],
        confidences: Sequence[int],
        tlps: Sequence[str],
        last_seen: Sequence[datetime | None],
        expires: Sequence[datetime | None],
        allow: Sequence[AllowEntry],
    ) -> _State:
        names: dict[str, int] = {}
        tenant_codes = _tenant_codes(names, tenants)
        return _State(
            layers=[(_Indexes(types, values), 0)],
            ids=list(ids),
            types=np.array([_TYPE_CODE[t] for t in types], dtype=np.int8),
            values=list(values),
            tenant_codes=tenant_codes,
            confidence=np.array(confidences, dtype=np.float64),
            tlp=np.array([_TLP_CODE[t] for t in tlps], dtype=np.int8),
            last_seen=np.array([_micros(t, 0) for t in last_seen], dtype=np.int64),
            expires=np.array([_micros(t, _NO_EXPIRY) for t in expires], dtype=np.int64),
            active=np.ones(len(ids), dtype=bool),
            allow=_Indexes([a.type for a in allow], [a.value for a in allow]),
            allow_tenant_codes=_tenant_codes(names, [a.tenant for a in allow]),
            tenant_names=names,
        )

    # ---------------------------------------------------------------- matching
    def _row_tenants(self, state: _State, table: pa.Table) -> np.ndarray:
        encoded = pc.dictionary_encode(as_string_array(table.column("tenant")))
        mapping = np.array([state.tenant_names.get(t, -2) for t in encoded.dictionary.to_pylist()] + [-2], np.int32)
        codes = np.asarray(encoded.indices.fill_null(len(mapping) - 1), dtype=np.int64)
        return mapping[codes]

    def match_set(self, table: pa.Table, now: datetime | None = None) -> MatchSet:
        """The hits of a batch that survive scope, expiry, allow-list and confidence rules."""
        state = self._state
        now = now or self.clock()
        parts = [(index.probe(table), offset) for index, offset in state.layers]
        hits = MatchSet(
            np.concatenate([p.rows for p, _ in parts]),
            np.concatenate([p.members + offset for p, offset in parts]),
            np.concatenate([p.fields for p, _ in parts]),
        )
        if len(hits) == 0:
            return hits
        row_tenant = self._row_tenants(state, table)
        ind_tenant = state.tenant_codes[hits.members]
        keep = state.active[hits.members] & ((ind_tenant == -1) | (ind_tenant == row_tenant[hits.rows]))
        now_us = _micros(now, 0)
        keep &= state.expires[hits.members] > now_us
        if self.min_confidence > 0:
            keep &= self._aged(state, hits.members, now_us) >= self.min_confidence
        hits = MatchSet(hits.rows[keep], hits.members[keep], hits.fields[keep])
        if len(hits) and len(state.allow_tenant_codes):
            allowed = state.allow.probe(table)
            scope = state.allow_tenant_codes[allowed.members]
            ok = (scope == -1) | (scope == row_tenant[allowed.rows])
            a_rows, a_fields = allowed.rows[ok], allowed.fields[ok]
            # An allowed URL host also covers the whole URL.
            host = a_fields == _FIELD_CODE["url_host"]
            a_rows = np.concatenate([a_rows, a_rows[host]])
            a_fields = np.concatenate([a_fields, np.full(int(host.sum()), _FIELD_CODE["url"], dtype=np.int64)])
            width = len(MATCH_FIELDS)
            suppressed = np.isin(hits.rows * width + hits.fields, a_rows * width + a_fields)
            hits = MatchSet(hits.rows[~suppressed], hits.members[~suppressed], hits.fields[~suppressed])
        return hits

    @staticmethod
    def _aged(state: _State, members: np.ndarray, now_us: int) -> np.ndarray:
        half = _HALF_LIFE[state.types[members]]
        age_days = np.maximum(0.0, (now_us - state.last_seen[members]) / 86_400e6)
        factor = np.where(
            (half > 0) & (state.last_seen[members] > 0), 0.5 ** (age_days / np.where(half > 0, half, 1)), 1.0
        )
        return np.rint(state.confidence[members] * factor)

    def match(self, table: pa.Table, now: datetime | None = None) -> list[Alert]:
        """Alerts for one event batch (EVENT_SCHEMA layout): one per (tenant, indicator) hit."""
        now = now or self.clock()
        state = self._state
        hits = self.match_set(table, now)
        if len(hits) == 0:
            return []
        tenant_rows = pc.dictionary_encode(as_string_array(table.column("tenant")))
        tenant_code = np.asarray(tenant_rows.indices.fill_null(0), dtype=np.int64)[hits.rows]
        order = np.lexsort((hits.rows, hits.members, tenant_code))
        rows, members, fields, tcode = hits.rows[order], hits.members[order], hits.fields[order], tenant_code[order]
        new_group = np.concatenate([[True], (np.diff(members) != 0) | (np.diff(tcode) != 0)])
        group = np.cumsum(new_group) - 1
        starts = np.nonzero(new_group)[0]
        # One Arrow group-by gathers every alert's times, event ids and entities at once.
        width = table.num_rows
        pair = np.unique(group * width + rows)
        pair_group, pair_row = pair // width, pair % width
        columns = ["event_id", "time", *(c for c in _CONTEXT_COLUMNS if c in table.column_names)]
        picked = table.select(columns).take(pa.array(pair_row)).append_column("_g", pa.array(pair_group))
        distinct = pc.CountOptions(mode="only_valid")
        aggregates: list[tuple[Any, ...]] = [("time", "min"), ("time", "max"), ("event_id", "count")]
        aggregates += [(c, "distinct", distinct) for c in columns if c != "time"]
        grouped = picked.group_by("_g", use_threads=False).aggregate(aggregates).sort_by("_g").to_pylist()
        field_pairs = np.unique(group * len(MATCH_FIELDS) + fields)
        matched: list[list[str]] = [[] for _ in starts]
        for code in field_pairs.tolist():
            matched[code // len(MATCH_FIELDS)].append(MATCH_FIELDS[code % len(MATCH_FIELDS)].name)
        details = self._indicator_details([state.ids[int(members[s])] for s in starts])
        aged = self._aged(state, members[starts], _micros(now, 0))
        alerts: list[Alert] = []
        for k, s in enumerate(starts.tolist()):
            member = int(members[s])
            tenant = tenant_rows.dictionary[int(tcode[s])].as_py()
            ind = details.get(state.ids[member])
            alerts.append(self._alert(state, member, ind, int(aged[k]), tenant, grouped[k], sorted(matched[k])))
        return alerts

    def _indicator_details(self, ids: list[str]) -> dict[str, Indicator]:
        missing = [i for i in ids if i not in self._details]
        if missing and self.store is not None:
            found = self.store.indicators_by_id(missing)
            with self._lock:
                if len(self._details) > 100_000:
                    self._details.clear()
                self._details.update(found)
        return {i: self._details[i] for i in ids if i in self._details}

    def _alert(
        self,
        state: _State,
        member: int,
        ind: Indicator | None,
        aged: int,
        tenant: str,
        group: dict[str, Any],
        matched_fields: list[str],
    ) -> Alert:
        kind = INDICATOR_TYPES[int(state.types[member])]
        value = state.values[member]
        tlp = TLP_LEVELS[int(state.tlp[member])]
        first, last = group["time_min"], group["time_max"]
        evidence = sorted(group["event_id_distinct"])
        entities: dict[str, Any] = {}
        for column in _CONTEXT_COLUMNS:
            found = group.get(f"{column}_distinct")
            if found:
                entities[column] = sorted(v for v in found if v)[:_MAX_ENTITY_VALUES]
        for name in matched_fields:
            key = _ENTITY_OF_FIELD.get(name)
            if key == "hash":
                entities["hash"] = [value]
            elif key is None:
                entities.setdefault(name, [value])
        origin = ind.origin if ind is not None else None
        learned = bool(origin and origin.get("type") == "case")
        severity = "high" if aged >= 80 or learned else "medium" if aged >= 50 else "low"
        tags = ["ioc", f"tlp:{tlp}", f"ioc:{kind}"] + (sorted(ind.tags) if ind is not None else [])
        indicator_info = {
            "id": state.ids[member],
            "type": kind,
            "value": value,
            "tlp": tlp,
            "confidence": int(state.confidence[member]),
            "effective_confidence": aged,
            "scope": "tenant" if state.tenant_codes[member] >= 0 else "provider",
        }
        if ind is not None:
            indicator_info.update(
                source=ind.source,
                tags=list(ind.tags),
                description=ind.description,
                first_seen=ind.first_seen.isoformat() if ind.first_seen else None,
                last_seen=ind.last_seen.isoformat() if ind.last_seen else None,
                expires_at=ind.expires_at.isoformat() if ind.expires_at else None,
            )
        details: dict[str, Any] = {"indicator": indicator_info, "matched_fields": matched_fields}
        if origin:
            details["origin"] = dict(origin)
        if len(evidence) > MAX_EVIDENCE:
            details["evidence_truncated"] = True
        where = ", ".join(matched_fields)
        return Alert(
            tenant=tenant,
            rule_id=state.ids[member],
            title=f"Threat-intel match: {kind} {value}",
            severity=severity,
            source=ALERT_SOURCE,
            first_seen=first,
            last_seen=last,
            description=(ind.description if ind is not None else None),
            entities=entities,
            event_count=len(evidence),
            evidence=evidence[:MAX_EVIDENCE],
            confidence=round(aged / 100.0, 2),
            explanation=(
                f"{len(evidence)} event(s) have {where} matching {kind} indicator {value} "
                f"(TLP:{tlp.upper()}, confidence {aged}/100 after ageing"
                + (", learned from a confirmed case)" if learned else ")")
            ),
            tags=tags,
            details=details,
        )
