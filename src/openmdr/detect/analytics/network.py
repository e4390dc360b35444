"""Network analytics over one time window of connections and DNS queries.

Each analytic is a function ``(window, context) -> list[Alert]`` over a
:class:`WindowFrame`: all connection/DNS rows of one tenant whose time falls in
``[start, end)`` of a window aligned on the epoch.  The same function runs in batch (every
window of a table, in time order) and in streaming (when the watermark passes a window's
end), which is why both give the same alerts.  All per-row work is numpy; Python loops
only run over the groups that are reported or that own a baseline.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.detect.analytics.alerting import build_alert, utc
from openmdr.detect.analytics.baseline import (
    BaselineStore,
    LateralProfile,
    SeenHost,
    TenantProfile,
    VolumeProfile,
)
from openmdr.detect.analytics.domains import registered_domain
from openmdr.detect.analytics.frame import KIND_CONN, KIND_DNS, KIND_NAME, KIND_NXDOMAIN, is_host_address
from openmdr.detect.analytics.settings import AnalyticsSettings
from openmdr.detect.analytics.stats import BeaconWeights, beacon_scores, shannon_entropy
from openmdr.models.alert import Alert
from openmdr.models.tenant import AssetInfo

PROTO_CODES = {"tcp": 0, "udp": 1, "icmp": 2}
PROTO_NAMES = {0: "tcp", 1: "udp", 2: "icmp", 3: "other"}

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_duration(seconds: float) -> str:
    """``5400`` -> ``'1h30m'``."""
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    h, rem = divmod(s, 3600)
    m = rem // 60
    return f"{h}h{m:02d}m" if h else f"{m}m"


class AddressMatcher:
    """Is an address inside any of a list of CIDRs (cached per address)."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: list[IPNet] = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __call__(self, ip: str) -> bool:
        hit = self._cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip)
                hit = any(addr in n for n in self.networks)
            except ValueError:
                hit = False
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[ip] = hit
        return hit

    def mask(self, values: Sequence[str]) -> np.ndarray:
        """Boolean array: which of ``values`` (distinct addresses) are inside."""
        return np.fromiter((self(v) if v else False for v in values), dtype=bool, count=len(values))


class DomainMatcher:
    """Is a name one of the listed domains or below one (``a.cdn.example.com`` is below ``example.com``)."""

    def __init__(self, domains: Iterable[str]) -> None:
        self.domains = tuple(d.strip(".").lower() for d in domains if d.strip("."))

    def __bool__(self) -> bool:
        return bool(self.domains)

    def __call__(self, name: str) -> bool:
        name = name.rstrip(".").lower()
        return any(name == d or name.endswith("." + d) for d in self.domains)

    def any(self, names: Iterable[str]) -> bool:
        """True if any of ``names`` is allowed."""
        return bool(self.domains) and any(self(n) for n in names)


@dataclass
class NetworkState:
    """Long-term network state of one tenant (all bounded; persisted by the engine)."""

    tenant: BaselineStore[TenantProfile]
    exfil: BaselineStore[VolumeProfile]
    lateral: BaselineStore[LateralProfile]
    shadow: BaselineStore[SeenHost]
    fast_scans: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: AnalyticsSettings) -> NetworkState:
        """Empty state sized by ``settings``."""
        alpha = settings.volume_alpha
        cap = settings.lateral.max_pairs_per_source
        return cls(
            tenant=BaselineStore("network.tenant", 1, TenantProfile, TenantProfile.from_state),
            exfil=BaselineStore(
                "network.exfil",
                settings.max_volume_entities,
                lambda: VolumeProfile(alpha),
                lambda s: VolumeProfile.from_state(s, alpha),
            ),
            lateral=BaselineStore(
                "network.lateral",
                settings.lateral.max_sources,
                lambda: LateralProfile(cap, alpha),
                lambda s: LateralProfile.from_state(s, cap, alpha),
            ),
            shadow=BaselineStore("network.shadow_it", settings.shadow_it.max_hosts, SeenHost, SeenHost.from_state),
        )

    def stores(self) -> list[BaselineStore[Any]]:
        """Every persisted store."""
        return [self.tenant, self.exfil, self.lateral, self.shadow]


@dataclass
class NetworkContext:
    """What a network analytic knows besides the window: tenant, settings, inventory, state."""

    tenant: str
    settings: AnalyticsSettings
    state: NetworkState
    assets_by_ip: dict[str, AssetInfo]
    inventory_known: bool

    @cached_property
    def beacon_allow(self) -> AddressMatcher:
        """Beacon allow-list by address."""
        return AddressMatcher(self.settings.beacon.allow_cidrs)

    @cached_property
    def long_allow(self) -> AddressMatcher:
        """Long-connection allow-list by address."""
        return AddressMatcher(self.settings.long_connection.allow_cidrs)

    @cached_property
    def beacon_allow_names(self) -> DomainMatcher:
        """Beacon allow-list by server name."""
        return DomainMatcher(self.settings.beacon.allow_domains)

    @cached_property
    def long_allow_names(self) -> DomainMatcher:
        """Long-connection allow-list by server name."""
        return DomainMatcher(self.settings.long_connection.allow_domains)

    @cached_property
    def shadow_ignore(self) -> AddressMatcher:
        """Address pools shadow IT never reports (VPN pools, NAT egress)."""
        return AddressMatcher(self.settings.shadow_it.ignore_cidrs)

    @cached_property
    def exfil_allow(self) -> AddressMatcher:
        """Exfiltration allow-list by destination address."""
        return AddressMatcher(self.settings.exfil.allow_cidrs)

    def alert(self, analytic: str, title: str, severity: str, first: float, last: float, **kw: Any) -> Alert:
        """Build an alert of this tenant (see :func:`~.alerting.build_alert` for the keywords)."""
        return build_alert(
            self.tenant, analytic, title, severity, first, last, max_evidence=self.settings.max_evidence, **kw
        )


class WindowFrame:
    """The connection/DNS rows of one tenant and window as numpy columns.

    Source and destination addresses share one dictionary (``addrs``), so the same host
    has the same code whether it opens or answers a connection.
    """

    def __init__(self, table: pa.Table, start: float, end: float) -> None:
        self.table = table
        self.start = start
        self.end = end
        n = table.num_rows
        self.n = n
        self.ts = table.column("ts").to_numpy()
        self.kind = table.column("kind").to_numpy()
        both = pa.chunked_array(table.column("src").chunks + table.column("dst").chunks, type=pa.string())
        encoded = pc.dictionary_encode(both).combine_chunks()
        self.addrs: list[str] = encoded.dictionary.to_pylist()
        codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
        self.src = codes[:n]
        self.dst = codes[n:]
        self.sport = table.column("sport").to_numpy().astype(np.int64)
        self.dport = table.column("dport").to_numpy().astype(np.int64)
        proto = table.column("proto")
        self.proto = np.full(n, 3, dtype=np.int64)
        for name, code in PROTO_CODES.items():
            self.proto[pc.equal(proto, name).to_numpy(zero_copy_only=False)] = code
        self.bytes_out = table.column("bytes_out").to_numpy().astype(np.float64)
        self.bytes_in = table.column("bytes_in").to_numpy().astype(np.float64)
        self.duration = pc.fill_null(table.column("duration"), np.nan).to_numpy()
        self.failed = table.column("failed").to_numpy(zero_copy_only=False).astype(bool)
        self.src_int = pc.fill_null(table.column("src_internal"), False).to_numpy(zero_copy_only=False).astype(bool)
        self.dst_int = pc.fill_null(table.column("dst_internal"), False).to_numpy(zero_copy_only=False).astype(bool)
        self.conn = self.kind == KIND_CONN
        self.dns = self.kind == KIND_DNS
        self.named = self.kind == KIND_NAME

    @cached_property
    def event_ids(self) -> list[str]:
        """Event ids by row (materialised only when an alert needs evidence)."""
        return self.table.column("event_id").to_pylist()

    def evidence(self, rows: np.ndarray, limit: int) -> list[str]:
        """Event ids of ``rows`` (time-ordered), evenly sampled down to ``limit``."""
        if len(rows) == 0:
            return []
        rows = rows[np.argsort(self.ts[rows], kind="stable")]
        if len(rows) > limit:
            rows = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
        ids = self.event_ids
        return [ids[i] for i in rows.tolist()]

    @cached_property
    def nxdomain(self) -> np.ndarray:
        """Rows that say a name does not exist (Zeek dns NXDOMAIN, Suricata NXDOMAIN answers)."""
        rcode = pc.fill_null(pc.equal(self.table.column("rcode"), "NXDOMAIN"), False)
        return (self.kind == KIND_NXDOMAIN) | (self.dns & rcode.to_numpy(zero_copy_only=False).astype(bool))

    @cached_property
    def dst_names(self) -> dict[int, list[str]]:
        """Per destination address code: the server names (SNI, HTTP Host) clients used for it."""
        rows = np.flatnonzero(self.named & (self.dst >= 0))
        if len(rows) == 0:
            return {}
        names = self.table.column("domain").take(pa.array(rows)).to_pylist()
        out: dict[int, set[str]] = {}
        for code, name in zip(self.dst[rows].tolist(), names, strict=True):
            if name:
                out.setdefault(code, set()).add(name)
        return {code: sorted(found) for code, found in out.items()}

    @cached_property
    def host_addr(self) -> np.ndarray:
        """Per address code: True for one machine's address (not multicast/broadcast/unspecified)."""
        return np.fromiter((is_host_address(a) for a in self.addrs), dtype=bool, count=len(self.addrs))

    def unicast(self, codes: np.ndarray) -> np.ndarray:
        """Mask of ``codes`` that are valid single-host addresses."""
        return (codes >= 0) & self.host_addr[np.maximum(codes, 0)]

    @cached_property
    def internal_hosts(self) -> np.ndarray:
        """Codes of internal addresses that opened connections in this window."""
        m = self.conn & self.src_int & (self.src >= 0)
        return np.unique(self.src[m])

    @cached_property
    def dst_prevalence(self) -> np.ndarray:
        """Per address code: distinct internal sources that connected to it in this window."""
        m = self.conn & self.src_int & (self.src >= 0) & (self.dst >= 0)
        n_addr = len(self.addrs)
        pairs = np.unique(self.src[m] * n_addr + self.dst[m])
        return np.bincount(pairs % n_addr, minlength=n_addr) if n_addr else np.zeros(0, dtype=np.int64)


def _pair_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique keys, inverse index and counts."""
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return uniq, inverse.reshape(-1), counts


def _popular(ctx: NetworkContext, w: WindowFrame, dst_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(popular mask, distinct internal hosts per destination, internal hosts in the window)."""
    cfg = ctx.settings.beacon
    hosts = w.dst_prevalence[dst_codes] if len(dst_codes) else np.zeros(0, dtype=np.int64)
    total = max(len(w.internal_hosts), 1)
    popular = (hosts >= cfg.min_prevalence_hosts) & (hosts / total >= cfg.max_prevalence)
    profile = ctx.state.tenant.profile("*")
    if profile.popularity.total and len(dst_codes):
        host_days = profile.popularity.estimate_many([w.addrs[c] for c in dst_codes.tolist()])
        popular |= host_days >= cfg.popular_host_days
    return popular, hosts, total


def update_popularity(w: WindowFrame, ctx: NetworkContext) -> None:
    """Count each (internal source, destination) contact of the window as one host-window."""
    m = w.conn & w.src_int & (w.src >= 0) & (w.dst >= 0) & ~w.failed
    if not m.any():
        return
    n_addr = len(w.addrs)
    pairs = np.unique(w.src[m] * n_addr + w.dst[m])
    dsts, counts = np.unique(pairs % n_addr, return_counts=True)
    profile = ctx.state.tenant.profile("*")
    profile.popularity.add_many((w.addrs[c] for c in dsts.tolist()), counts.tolist())
    profile.hosts.add_many(w.addrs[c] for c in w.internal_hosts.tolist())


def _beacon_score_details(scores: Mapping[str, np.ndarray], p: int, threshold: float) -> dict[str, Any]:
    """The score breakdown of beacon series ``p`` for an alert's details.

    Beacon alerts by address pair and by server name report the same figures in the same order,
    so both build them here from the :func:`~.stats.beacon_scores` columns.
    """
    return {
        "score": float(scores["score"][p]),
        "threshold": threshold,
        "ts_score": float(scores["ts_score"][p]),
        "ds_score": float(scores["ds_score"][p]),
        "hist_score": float(scores["hist_score"][p]),
        "dur_score": float(scores["dur_score"][p]),
        "connections": int(scores["connections"][p]),
        "interval_median_s": float(scores["interval"][p]),
        "interval_mad_s": float(scores["interval_mad"][p]),
        "interval_bowley_skew": float(scores["interval_skew"][p]),
    }


def _named(ip: str, names: Sequence[str]) -> str:
    """``ip`` with the server names clients used for it: ``1.2.3.4 (evil.example)``."""
    if not names:
        return ip
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    return f"{ip} ({shown})"


def _net_entities(src: str, dst: str, names: Sequence[str]) -> dict[str, Any]:
    """Entities of a pair alert; the destination's server names become ``domain``."""
    out: dict[str, Any] = {"src_ip": src, "dst_ip": dst}
    if names:
        out["domain"] = names[0] if len(names) == 1 else list(names[:20])
    return out


# ----------------------------------------------------------------------------- beaconing


def _beacon_weights(ctx: NetworkContext) -> BeaconWeights:
    cfg = ctx.settings.beacon
    return BeaconWeights(
        ts=cfg.ts_weight,
        ds=cfg.ds_weight,
        dur=cfg.dur_weight,
        hist=cfg.hist_weight,
        min_iqr_seconds=cfg.min_iqr_seconds,
        min_iqr_bytes=cfg.min_iqr_bytes,
        bins=cfg.hist_bins,
        mode_sensitivity=cfg.hist_mode_sensitivity,
        bimodal_outlier_removal=cfg.hist_bimodal_outlier_removal,
        bimodal_min_bins=cfg.hist_bimodal_min_bins,
        dur_min_bins=cfg.dur_min_bins,
        dur_ideal_run=cfg.dur_ideal_consistent_bins,
    )


def beacon_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """C2 beaconing: regular intervals and sizes between an internal host and an external one.

    Scored per (source, destination address) over connections, then per (source, server
    name) over TLS/HTTP records, so a beacon that rotates over several addresses of one
    name (CDN fronting, round-robin DNS) is still one regular series.  A name series is
    only reported when none of its addresses was reported on its own.
    """
    alerts = _address_beacons(w, ctx)
    reported = {(a.entities["src_ip"], a.entities["dst_ip"]) for a in alerts}
    return alerts + _name_beacons(w, ctx, reported)


def _address_beacons(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    cfg = ctx.settings.beacon
    conn = w.conn & (w.src >= 0) & (w.dst >= 0)
    if not conn.any():
        return []
    span_start = max(w.start, float(w.ts[conn].min()))
    span_end = min(w.end, float(w.ts[conn].max()))
    cand = conn & w.src_int & ~w.dst_int & w.unicast(w.dst)
    rows = np.flatnonzero(cand)
    if len(rows) == 0 or span_end <= span_start:
        return []
    n_addr = len(w.addrs)
    uniq, inverse, counts = _pair_groups(w.src[rows] * n_addr + w.dst[rows])
    keep_pairs = counts >= cfg.min_connections
    if not keep_pairs.any():
        return []
    row_keep = keep_pairs[inverse]
    rows, inverse = rows[row_keep], inverse[row_keep]
    remap = np.cumsum(keep_pairs) - 1
    pair_ids = remap[inverse]
    pairs = uniq[keep_pairs]
    weights = _beacon_weights(ctx)
    scores = beacon_scores(pair_ids, w.ts[rows], w.bytes_out[rows], len(pairs), span_start, span_end, weights)
    hits = np.flatnonzero(scores["scorable"] & (scores["score"] >= cfg.score_threshold))
    if len(hits) == 0:
        return []
    dst_codes = pairs[hits] % n_addr
    popular, hosts, total = _popular(ctx, w, dst_codes)
    allow, allow_names = ctx.beacon_allow, ctx.beacon_allow_names
    alerts: list[Alert] = []
    order = np.argsort(pair_ids, kind="stable")
    starts = np.searchsorted(pair_ids[order], hits)
    for j, p in enumerate(hits.tolist()):
        src, dst = w.addrs[int(pairs[p] // n_addr)], w.addrs[int(dst_codes[j])]
        names = w.dst_names.get(int(dst_codes[j]), [])
        if popular[j] or (allow and allow(dst)) or allow_names.any(names):
            continue
        n = int(scores["connections"][p])
        pair_rows = rows[order[starts[j] : starts[j] + n]]
        score = float(scores["score"][p])
        interval = float(scores["interval"][p])
        details = {
            **_beacon_score_details(scores, p, cfg.score_threshold),
            "bytes_median": float(scores["size"][p]),
            "bytes_mad": float(scores["size_mad"][p]),
            "bytes_bowley_skew": float(scores["size_skew"][p]),
            "internal_hosts_to_destination": int(hosts[j]),
            "internal_hosts_in_window": total,
            "server_names": names[:20],
            "window_start": utc(w.start).isoformat(),
            "window_end": utc(w.end).isoformat(),
        }
        explanation = (
            f"{src} -> {_named(dst, names)}: {n} connections every ~{human_duration(interval)} "
            f"(interval MAD {scores['interval_mad'][p]:.0f}s, median size {scores['size'][p]:.0f} B, "
            f"MAD {scores['size_mad'][p]:.0f} B); beacon score {score:.3f} >= {cfg.score_threshold} "
            f"(timing {scores['ts_score'][p]:.2f}, size {scores['ds_score'][p]:.2f}, "
            f"histogram {scores['hist_score'][p]:.2f}, duration {scores['dur_score'][p]:.2f}); "
            f"{int(hosts[j])} of {total} internal hosts talk to {dst}"
        )
        alerts.append(
            ctx.alert(
                "beacon",
                f"Possible C2 beaconing from {src} to {dst}",
                "high" if score >= cfg.high_score else "medium",
                float(scores["first"][p]),
                float(scores["last"][p]),
                attack=["T1071"],
                tactics=["command-and-control"],
                entities=_net_entities(src, dst, names),
                evidence=w.evidence(pair_rows, ctx.settings.max_evidence),
                event_count=n,
                explanation=explanation,
                details=details,
                confidence=round(min(0.95, 0.5 + (score - cfg.score_threshold) * 2.5), 2),
            )
        )
    return alerts


def _name_beacons(w: WindowFrame, ctx: NetworkContext, reported: set[tuple[Any, Any]]) -> list[Alert]:
    """Beacon scores per (internal source, server name) over the TLS/HTTP name records."""
    cfg = ctx.settings.beacon
    rows = np.flatnonzero(w.named & w.src_int & (w.src >= 0) & (w.dst >= 0) & ~w.dst_int)
    if len(rows) < cfg.min_connections:
        return []
    encoded = pc.dictionary_encode(w.table.column("domain").take(pa.array(rows))).combine_chunks()
    names: list[str] = encoded.dictionary.to_pylist()
    name_codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    ok = name_codes >= 0
    rows, name_codes = rows[ok], name_codes[ok]
    n_names = max(len(names), 1)
    uniq, inverse, counts = _pair_groups(w.src[rows] * n_names + name_codes)
    keep = counts >= cfg.min_connections
    if not keep.any():
        return []
    row_keep = keep[inverse]
    rows, inverse, name_codes = rows[row_keep], inverse[row_keep], name_codes[row_keep]
    series = uniq[keep]
    series_ids = (np.cumsum(keep) - 1)[inverse]
    span_start = max(w.start, float(w.ts[rows].min()))
    span_end = min(w.end, float(w.ts[rows].max()))
    if span_end <= span_start:
        return []
    scores = beacon_scores(
        series_ids, w.ts[rows], w.bytes_out[rows], len(series), span_start, span_end, _beacon_weights(ctx)
    )
    hits = np.flatnonzero(scores["scorable"] & (scores["score"] >= cfg.score_threshold))
    if len(hits) == 0:
        return []
    # prevalence of a name: distinct internal sources that used it in the window
    all_named = np.flatnonzero(w.named & w.src_int & (w.src >= 0))
    all_names = w.table.column("domain").take(pa.array(all_named)).to_pylist()
    users_of: dict[str, set[int]] = {}
    for code, name in zip(w.src[all_named].tolist(), all_names, strict=True):
        if name:
            users_of.setdefault(name, set()).add(code)
    total = max(len(w.internal_hosts), 1)
    allow, allow_names = ctx.beacon_allow, ctx.beacon_allow_names
    alerts: list[Alert] = []
    for p in hits.tolist():
        src, name = w.addrs[int(series[p] // n_names)], names[int(series[p] % n_names)]
        grp = rows[series_ids == p]
        dsts = sorted({w.addrs[int(d)] for d in np.unique(w.dst[grp]).tolist()})
        hosts = len(users_of.get(name, ()))
        popular = hosts >= cfg.min_prevalence_hosts and hosts / total >= cfg.max_prevalence
        if popular or allow_names(name) or (allow and all(allow(d) for d in dsts)):
            continue
        if any((src, d) in reported for d in dsts):
            continue  # the same series is already reported by address
        score, n = float(scores["score"][p]), int(scores["connections"][p])
        interval = float(scores["interval"][p])
        alerts.append(
            ctx.alert(
                "beacon",
                f"Possible C2 beaconing from {src} to {name}",
                "high" if score >= cfg.high_score else "medium",
                float(scores["first"][p]),
                float(scores["last"][p]),
                attack=["T1071"],
                tactics=["command-and-control"],
                entities={"src_ip": src, "domain": name, "dst_ip": dsts[0] if len(dsts) == 1 else dsts[:20]},
                evidence=w.evidence(grp, ctx.settings.max_evidence),
                event_count=n,
                explanation=(
                    f"{src} -> {name} over {len(dsts)} address(es): {n} TLS/HTTP sessions every "
                    f"~{human_duration(interval)} (interval MAD {scores['interval_mad'][p]:.0f}s); beacon score "
                    f"{score:.3f} >= {cfg.score_threshold} (timing {scores['ts_score'][p]:.2f}, size "
                    f"{scores['ds_score'][p]:.2f}, histogram {scores['hist_score'][p]:.2f}, duration "
                    f"{scores['dur_score'][p]:.2f}); {hosts} of {total} internal hosts use {name}"
                ),
                details={
                    "grouped_by": "server_name",
                    "server_name": name,
                    "addresses": dsts[:50],
                    **_beacon_score_details(scores, p, cfg.score_threshold),
                    "internal_hosts_to_destination": hosts,
                    "internal_hosts_in_window": total,
                    "window_start": utc(w.start).isoformat(),
                    "window_end": utc(w.end).isoformat(),
                },
                confidence=round(min(0.95, 0.5 + (score - cfg.score_threshold) * 2.5), 2),
            )
        )
    return alerts


# ----------------------------------------------------------------------- long connections


def covered_time(groups: np.ndarray, starts: np.ndarray, durations: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the length of the union of the intervals ``[start, start + duration]``.

    Parallel connections of one pair do not add up: what counts is for how long the pair
    was connected at all.  Vectorised: intervals are sorted by group then start, and a
    running maximum of the end (offset per group so groups never mix) finds where a new
    connected stretch begins.
    """
    if len(groups) == 0:
        return np.zeros(n_groups)
    order = np.lexsort((starts, groups))
    g, s = groups[order], starts[order]
    e = s + np.maximum(durations[order], 0.0)
    base = float(min(s.min(), 0.0))
    span = float(e.max() - base) + 1.0
    offset = g.astype(np.float64) * span
    run_end = np.maximum.accumulate(e - base + offset)
    prev_end = np.empty_like(run_end)
    prev_end[0] = -np.inf
    prev_end[1:] = run_end[:-1]
    new_group = np.ones(len(g), dtype=bool)
    new_group[1:] = g[1:] != g[:-1]
    # a stretch starts at a group's first interval or where the start passes all ends before it
    stretch = new_group | (s - base + offset > prev_end)
    stretch_id = np.cumsum(stretch) - 1
    stretch_start = (s - base + offset)[stretch]
    stretch_end = np.zeros(int(stretch.sum()))
    np.maximum.at(stretch_end, stretch_id, e - base + offset)
    return np.bincount(g[stretch], weights=stretch_end - stretch_start, minlength=n_groups)


def long_connection_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Connections that stay open for hours: one long connection, or a pair connected most of the day."""
    cfg = ctx.settings.long_connection
    m = w.conn & (w.src >= 0) & w.unicast(w.dst) & ~np.isnan(w.duration)
    if cfg.external_only:
        m &= w.src_int & ~w.dst_int
    if cfg.allow_ports:
        m &= ~np.isin(w.dport, np.asarray(cfg.allow_ports, dtype=np.int64))
    rows = np.flatnonzero(m)
    if len(rows) == 0:
        return []
    n_addr = len(w.addrs)
    key = ((w.src[rows] * n_addr + w.dst[rows]) * 65536 + (w.dport[rows] & 0xFFFF)) * 4 + w.proto[rows]
    uniq, inverse, counts = _pair_groups(key)
    dur = w.duration[rows]
    total = np.bincount(inverse, weights=dur, minlength=len(uniq))
    longest = np.zeros(len(uniq))
    np.maximum.at(longest, inverse, dur)
    candidates = (longest >= cfg.single_seconds) | (total >= cfg.covered_seconds)
    covered = np.zeros(len(uniq))
    if candidates.any():
        sel = candidates[inverse]
        covered_sel = covered_time(inverse[sel], w.ts[rows][sel], dur[sel], len(uniq))
        covered[candidates] = covered_sel[candidates]
    hits = np.flatnonzero((longest >= cfg.single_seconds) | (covered >= cfg.covered_seconds))
    if len(hits) == 0:
        return []
    pair = uniq[hits] // 4 // 65536
    dst_codes = pair % n_addr
    popular, hosts, n_hosts = _popular(ctx, w, dst_codes)
    allow, allow_names = ctx.long_allow, ctx.long_allow_names
    alerts: list[Alert] = []
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], hits)
    for j, g in enumerate(hits.tolist()):
        src, dst = w.addrs[int(pair[j] // n_addr)], w.addrs[int(dst_codes[j])]
        names = w.dst_names.get(int(dst_codes[j]), [])
        if popular[j] or (allow and allow(dst)) or allow_names.any(names):
            continue
        port = int((uniq[g] // 4) % 65536)
        proto = PROTO_NAMES[int(uniq[g] % 4)]
        grp = rows[order[starts[j] : starts[j] + int(counts[g])]]
        first = float(w.ts[grp].min())
        last = float((w.ts[grp] + w.duration[grp]).max())
        biggest = max(float(longest[g]), float(covered[g]))
        explanation = (
            f"{src} -> {_named(dst, names)}:{port}/{proto}: longest connection {human_duration(longest[g])}, "
            f"{int(counts[g])} connections covering {human_duration(covered[g])} of the window "
            f"(thresholds: one >= {human_duration(cfg.single_seconds)} or covered >= "
            f"{human_duration(cfg.covered_seconds)}); {int(hosts[j])} of {n_hosts} internal hosts use {dst}"
        )
        alerts.append(
            ctx.alert(
                "long_connection",
                f"Long connection from {src} to {dst}:{port}",
                "high" if biggest >= cfg.high_seconds else "medium",
                first,
                last,
                attack=["T1071"],
                tactics=["command-and-control"],
                entities=_net_entities(src, dst, names),
                evidence=w.evidence(grp, ctx.settings.max_evidence),
                event_count=int(counts[g]),
                explanation=explanation,
                details={
                    "longest_s": float(longest[g]),
                    "covered_s": float(covered[g]),
                    "summed_s": float(total[g]),
                    "connections": int(counts[g]),
                    "dst_port": port,
                    "protocol": proto,
                    "single_threshold_s": cfg.single_seconds,
                    "covered_threshold_s": cfg.covered_seconds,
                    "internal_hosts_to_destination": int(hosts[j]),
                    "server_names": names[:20],
                    "bytes_out": float(w.bytes_out[grp].sum()),
                    "bytes_in": float(w.bytes_in[grp].sum()),
                },
                confidence=0.6 if biggest < cfg.high_seconds else 0.75,
            )
        )
    return alerts


# ---------------------------------------------------------------------------------- scans


def _scan_rows(w: WindowFrame, ctx: NetworkContext) -> np.ndarray:
    """Connection rows that can be probes (replies from service ports to high ports are not)."""
    cfg = ctx.settings.scan
    m = w.conn & (w.src >= 0) & (w.dst >= 0) & (w.proto <= 2) & (w.src != w.dst)
    reply = np.isin(w.sport, np.asarray(cfg.reply_source_ports, dtype=np.int64)) & (w.dport >= 1024)
    m &= ~reply
    # ICMP only counts as an echo request (Zeek/Suricata keep the ICMP type in the source port)
    m &= (w.proto != 2) | (w.sport == 8)
    m &= (w.proto == 2) | (w.dport >= 0)
    return np.flatnonzero(m)


@dataclass(slots=True)
class _ScanHit:
    """One scanned target group: a host (vertical) or a service (horizontal) of one source."""

    src: int
    target: str
    rows: np.ndarray
    score: float
    distinct: int
    unanswered: int
    sample: list[Any]


def _target_stats(
    group_key: np.ndarray, target_key: np.ndarray, answered: np.ndarray, success_w: float, failed_w: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: (keys, weighted distinct targets, distinct targets, unanswered targets).

    A target counts as unanswered when none of its connections got an answer.
    """
    pairs = np.stack([group_key, target_key], axis=1)
    t_uniq, t_inv = np.unique(pairs, axis=0, return_inverse=True)
    t_inv = t_inv.reshape(-1)
    t_answered = np.bincount(t_inv, weights=answered, minlength=len(t_uniq)) > 0
    t_weight = np.where(t_answered, success_w, failed_w)
    g_uniq, g_inv = np.unique(t_uniq[:, 0], return_inverse=True)
    g_inv = g_inv.reshape(-1)
    score = np.bincount(g_inv, weights=t_weight, minlength=len(g_uniq))
    distinct = np.bincount(g_inv, minlength=len(g_uniq))
    unanswered = np.bincount(g_inv, weights=(~t_answered).astype(np.float64), minlength=len(g_uniq))
    return g_uniq, score, distinct, unanswered


def _scan_analytic(w: WindowFrame, ctx: NetworkContext, scale: str) -> list[Alert]:
    cfg = ctx.settings.scan
    rows = _scan_rows(w, ctx)
    if len(rows) == 0:
        return []
    n_addr = len(w.addrs)
    src, dst, proto = w.src[rows], w.dst[rows], w.proto[rows]
    service = proto * 65536 + np.where(proto == 2, 0, w.dport[rows] & 0xFFFF)
    answered = (~w.failed[rows]).astype(np.float64)
    fast = scale == "fast"
    seen = ctx.state.fast_scans
    alerts: list[Alert] = []
    v_thr = cfg.vertical_fast if fast else cfg.vertical_slow
    h_thr = cfg.horizontal_fast if fast else cfg.horizontal_slow
    # a scan needs at least threshold / heaviest weight distinct targets, so that many rows from one
    # source: most windows of a quiet network end here, without grouping anything
    needed = math.ceil(min(v_thr, h_thr) / max(cfg.failed_weight, cfg.success_weight, 1e-9))
    busiest = int(np.bincount(src).max())
    if busiest < needed:
        return [] if fast else _inbound_probing(w, ctx, rows)

    # vertical: one source, one destination, many services
    pair = src * n_addr + dst
    keys, score, distinct, unanswered = _target_stats(pair, service, answered, cfg.success_weight, cfg.failed_weight)
    vertical: list[_ScanHit] = []
    for j in np.flatnonzero(score >= v_thr).tolist():
        key = int(keys[j])
        grp = rows[pair == key]
        ports = sorted({int(x) for x in w.dport[grp].tolist()})
        vertical.append(
            _ScanHit(
                key // n_addr,
                w.addrs[key % n_addr],
                grp,
                float(score[j]),
                int(distinct[j]),
                int(unanswered[j]),
                ports,
            )
        )
    alerts.extend(_report_scans(w, ctx, "vertical", scale, v_thr, vertical, seen, fast))

    # horizontal: one source, one service, many destinations
    h_fail = cfg.horizontal_min_failed_fast if fast else cfg.horizontal_min_failed_slow
    svc_key = src * (3 * 65536) + service
    keys, score, distinct, unanswered = _target_stats(svc_key, dst, answered, cfg.success_weight, cfg.failed_weight)
    ratio = unanswered / np.maximum(distinct, 1)
    ok = (score >= h_thr) & (unanswered >= h_fail) & (ratio >= cfg.horizontal_min_failed_ratio)
    horizontal: list[_ScanHit] = []
    for j in np.flatnonzero(ok).tolist():
        key = int(keys[j])
        svc = key % (3 * 65536)
        proto_name, port_no = PROTO_NAMES[svc // 65536], svc % 65536
        label = "icmp echo" if proto_name == "icmp" else f"{port_no}/{proto_name}"
        grp = rows[svc_key == key]
        hosts = sorted({w.addrs[int(x)] for x in w.dst[grp].tolist()})
        horizontal.append(
            _ScanHit(key // (3 * 65536), label, grp, float(score[j]), int(distinct[j]), int(unanswered[j]), hosts)
        )
    alerts.extend(_report_scans(w, ctx, "horizontal", scale, h_thr, horizontal, seen, fast))
    if not fast:
        alerts.extend(_inbound_probing(w, ctx, rows))
    if len(seen) > 50_000:
        for k in [k for k, end in seen.items() if end <= w.start]:
            del seen[k]
    return alerts


def _report_scans(
    w: WindowFrame,
    ctx: NetworkContext,
    kind: str,
    scale: str,
    threshold: float,
    hits: list[_ScanHit],
    seen: dict[tuple[str, str, str], float],
    fast: bool,
) -> list[Alert]:
    """One alert per scanning source, listing every target group that crossed the threshold."""
    by_src: dict[int, list[_ScanHit]] = {}
    for hit in hits:
        key = (kind, w.addrs[hit.src], hit.target)
        if fast:
            seen[key] = w.end
        elif seen.get(key, -1.0) > w.start:
            continue  # a fast window inside this slow window already reported it
        by_src.setdefault(hit.src, []).append(hit)
    return [_scan_alert(w, ctx, kind, scale, w.addrs[code], group, threshold) for code, group in by_src.items()]


def _scan_alert(
    w: WindowFrame,
    ctx: NetworkContext,
    kind: str,
    scale: str,
    src: str,
    hits: list[_ScanHit],
    threshold: float,
) -> Alert:
    cfg = ctx.settings.scan
    hits = sorted(hits, key=lambda h: -h.score)
    rows = np.concatenate([h.rows for h in hits])
    internal = bool(w.src_int[rows[0]])
    window = human_duration(w.end - w.start)
    top = hits[0]
    if kind == "vertical":
        targets = [h.target for h in hits]
        title = (
            f"Vertical port scan from {src} against {top.target}"
            if len(hits) == 1
            else f"Vertical port scans from {src} against {len(hits)} hosts"
        )
        what = f"{top.distinct} distinct ports on {top.target}"
        entities: dict[str, Any] = {
            "src_ip": src,
            "dst_ip": targets[0] if len(targets) == 1 else targets[:20],
        }
    else:
        hosts = sorted({x for h in hits for x in h.sample})
        title = (
            f"Horizontal scan from {src} of {top.target}"
            if len(hits) == 1
            else f"Horizontal scans from {src} of {len(hits)} services"
        )
        what = f"{top.distinct} distinct hosts on {top.target}"
        entities = {"src_ip": src, "dst_ip": hosts[:20]}
    more = f" and {len(hits) - 1} more {'hosts' if kind == 'vertical' else 'services'}" if len(hits) > 1 else ""
    explanation = (
        f"{src} probed {what}{more} within {window} ({top.unanswered} unanswered/refused); weighted "
        f"score {top.score:.1f} (unanswered x{cfg.failed_weight:g}, answered x{cfg.success_weight:g}) "
        f">= {threshold:g}"
    )
    if internal:
        severity, tactics = "high", ["discovery"]
        attack = ["T1018"] if kind == "horizontal" and top.target == "icmp echo" else ["T1046"]
    else:
        severity = "medium" if top.score >= 3 * threshold else "low"
        attack, tactics = ["T1595"], ["reconnaissance"]
    return ctx.alert(
        f"scan_{kind}",
        title,
        severity,
        float(w.ts[rows].min()),
        float(w.ts[rows].max()),
        attack=attack,
        tactics=tactics,
        entities=entities,
        evidence=w.evidence(rows, ctx.settings.max_evidence),
        event_count=len(rows),
        explanation=explanation,
        details={
            "scale": scale,
            "window_seconds": w.end - w.start,
            "threshold": threshold,
            "source_internal": internal,
            "targets": [
                {
                    "target": h.target,
                    "weighted_score": h.score,
                    "distinct": h.distinct,
                    "unanswered": h.unanswered,
                    ("ports" if kind == "vertical" else "hosts"): h.sample[:100],
                }
                for h in hits[:50]
            ],
        },
        confidence=0.8 if internal else 0.6,
    )


def _inbound_probing(w: WindowFrame, ctx: NetworkContext, rows: np.ndarray) -> list[Alert]:
    """An internal host probed by many external sources (unanswered connections only).

    Internet background scanning spread over many sources, each too small to be a scan
    on its own: it shows the host is exposed.  The victim is the entity; the sources are
    listed in the details (none of them is called a scanner).
    """
    cfg = ctx.settings.scan
    m = ~w.src_int[rows] & w.dst_int[rows] & w.failed[rows]
    probe_rows = rows[m]
    if len(probe_rows) == 0:
        return []
    n_addr = len(w.addrs)
    dst, src = w.dst[probe_rows], w.src[probe_rows]
    pairs = np.unique(dst * n_addr + src)
    victims, sources = np.unique(pairs // n_addr, return_counts=True)
    alerts: list[Alert] = []
    for victim, n_src in zip(victims.tolist(), sources.tolist(), strict=True):
        if n_src < cfg.inbound_min_sources:
            continue
        grp = probe_rows[dst == victim]
        ports = np.unique(w.dport[grp])
        top_ports = np.bincount(w.dport[grp][w.dport[grp] >= 0]).argsort()[::-1][:10].tolist()
        ip = w.addrs[victim]
        src_sample = sorted({w.addrs[int(c)] for c in w.src[grp].tolist()})
        alerts.append(
            ctx.alert(
                "inbound_probing",
                f"{ip} probed from the internet by {n_src} sources",
                "low",
                float(w.ts[grp].min()),
                float(w.ts[grp].max()),
                attack=["T1595"],
                tactics=["reconnaissance"],
                entities={"dst_ip": ip},
                evidence=w.evidence(grp, ctx.settings.max_evidence),
                event_count=len(grp),
                explanation=(
                    f"{n_src} external sources made {len(grp)} unanswered/refused connections to {ip} on "
                    f"{len(ports)} ports within {human_duration(w.end - w.start)} (>= "
                    f"{cfg.inbound_min_sources} sources): the host is exposed to internet scanning"
                ),
                details={
                    "sources": n_src,
                    "threshold_sources": cfg.inbound_min_sources,
                    "probes": len(grp),
                    "distinct_ports": len(ports),
                    "top_ports": top_ports,
                    "sources_sample": src_sample[:50],
                },
                confidence=0.7,
            )
        )
    return alerts


def scan_fast_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Port scans and sweeps within minutes."""
    return _scan_analytic(w, ctx, "fast")


def scan_slow_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Low-and-slow scans spread over a day (not re-reporting what a fast window reported),
    and internal hosts probed by many external sources."""
    return _scan_analytic(w, ctx, "slow")


# ----------------------------------------------------------------------- lateral movement

#: ATT&CK Remote Services sub-technique per admin port.
_PORT_TECHNIQUE = {
    22: "T1021.004",
    135: "T1021.003",
    445: "T1021.002",
    3389: "T1021.001",
    5985: "T1021.006",
    5986: "T1021.006",
}


def lateral_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Fan-out from one internal source to many internal hosts over admin protocols."""
    cfg = ctx.settings.lateral
    warm_windows = ctx.settings.warmup.volume_windows
    m = w.conn & w.src_int & w.dst_int & (w.src >= 0) & (w.dst >= 0) & (w.src != w.dst) & (w.proto == 0)
    m &= np.isin(w.dport, np.asarray(cfg.ports, dtype=np.int64))
    m &= ~w.failed  # a refused or unanswered probe moved nowhere (scans are reported as scans)
    rows = np.flatnonzero(m)
    if len(rows) == 0:
        return []
    src = w.src[rows]
    order = np.argsort(src, kind="stable")
    rows, src = rows[order], src[order]
    bounds = np.flatnonzero(np.diff(src)) + 1
    alerts: list[Alert] = []
    for grp in np.split(rows, bounds):
        s = w.addrs[int(w.src[grp[0]])]
        dsts = np.unique(w.dst[grp])
        fanout = len(dsts)
        pair_keys = np.unique(w.dst[grp] * 65536 + w.dport[grp])
        pairs = [f"{w.addrs[int(k // 65536)]}:{int(k % 65536)}" for k in pair_keys.tolist()]
        profile = ctx.state.lateral.profile(s)
        warm = profile.fanout.n >= warm_windows
        threshold = max(cfg.min_hosts, profile.fanout.threshold(cfg.sigma)) if warm else float(cfg.cold_hosts)
        new_pairs = [p for p in pairs if p not in profile.pairs] if warm else []
        fired = fanout >= threshold or len(new_pairs) >= cfg.new_pairs
        if fired:
            ports = sorted({int(p) for p in w.dport[grp].tolist()})
            reason = (
                f"{fanout} internal hosts >= threshold {threshold:.1f}"
                if fanout >= threshold
                else f"{len(new_pairs)} never-seen admin destinations >= {cfg.new_pairs}"
            )
            baseline = (
                f"baseline mean {profile.fanout.mean:.1f} sd {profile.fanout.std:.1f} over {profile.fanout.n} windows"
                if warm
                else f"baseline warming up ({profile.fanout.n}/{warm_windows} windows)"
            )
            targets = sorted(w.addrs[int(d)] for d in dsts.tolist())
            alerts.append(
                ctx.alert(
                    "lateral_movement",
                    f"Lateral movement fan-out from {s} to {fanout} hosts",
                    "high" if fanout >= 2 * threshold or len(new_pairs) >= 2 * cfg.new_pairs else "medium",
                    float(w.ts[grp].min()),
                    float(w.ts[grp].max()),
                    attack=sorted({_PORT_TECHNIQUE.get(p, "T1021") for p in ports}),
                    tactics=["lateral-movement"],
                    entities={"src_ip": s, "dst_ip": targets[:20]},
                    evidence=w.evidence(grp, ctx.settings.max_evidence),
                    event_count=len(grp),
                    explanation=(
                        f"{s} connected to {fanout} internal hosts over ports {ports} within "
                        f"{human_duration(w.end - w.start)}: {reason}; {baseline}"
                    ),
                    details={
                        "fanout": fanout,
                        "threshold": threshold,
                        "baseline_mean": profile.fanout.mean,
                        "baseline_sd": profile.fanout.std,
                        "baseline_windows": profile.fanout.n,
                        "new_destinations": new_pairs[:50],
                        "ports": ports,
                        "targets": targets[:100],
                    },
                    confidence=0.7 if warm else 0.55,
                )
            )
        profile.fanout.update(fanout)
        for p in pairs:
            profile.pairs.add(p, w.end)
    return alerts


# -------------------------------------------------------------------------- exfiltration


def exfil_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Outbound volume of an internal host far above its own baseline."""
    cfg = ctx.settings.exfil
    warm_windows = ctx.settings.warmup.volume_windows
    m = w.conn & w.src_int & ~w.dst_int & (w.src >= 0) & w.unicast(w.dst)
    if ctx.exfil_allow:
        allowed = ctx.exfil_allow.mask(w.addrs)
        m &= ~allowed[np.maximum(w.dst, 0)]
    rows = np.flatnonzero(m)
    if len(rows) == 0:
        return []
    n_addr = len(w.addrs)
    volume = np.bincount(w.src[rows], weights=w.bytes_out[rows], minlength=n_addr)
    window_index = int(w.start // max(w.end - w.start, 1))
    alerts: list[Alert] = []
    for code in np.flatnonzero(volume > 0).tolist():
        host = w.addrs[code]
        sent = float(volume[code])
        profile = ctx.state.exfil.profile(host)
        stat = profile.stat
        warm = stat.n >= warm_windows
        if warm:
            threshold = max(float(cfg.min_bytes), stat.threshold(cfg.sigma), cfg.min_ratio * stat.mean)
        else:
            threshold = float(cfg.cold_bytes)
        if sent >= threshold:
            grp = rows[w.src[rows] == code]
            by_dst = np.bincount(w.dst[grp], weights=w.bytes_out[grp], minlength=n_addr)
            top = np.argsort(by_dst)[::-1][:5]
            top_dsts = [(w.addrs[int(d)], float(by_dst[d])) for d in top.tolist() if by_dst[d] > 0]
            big = grp[np.argsort(w.bytes_out[grp])[::-1][: ctx.settings.max_evidence]]
            baseline = (
                f"baseline mean {human_bytes(stat.mean)} sd {human_bytes(stat.std)} over {stat.n} windows, "
                f"threshold max({human_bytes(cfg.min_bytes)}, mean+{cfg.sigma:g}sd, {cfg.min_ratio:g}x mean)"
                if warm
                else f"no baseline yet ({stat.n}/{warm_windows} windows): cold threshold"
            )
            alerts.append(
                ctx.alert(
                    "exfiltration_volume",
                    f"Unusual outbound volume from {host}: {human_bytes(sent)}",
                    "high" if sent >= 2 * threshold else "medium",
                    float(w.ts[grp].min()),
                    float(w.ts[grp].max()),
                    attack=["T1048"],
                    tactics=["exfiltration"],
                    entities={"src_ip": host, "dst_ip": [d for d, _ in top_dsts]},
                    evidence=w.evidence(big, ctx.settings.max_evidence),
                    event_count=len(grp),
                    explanation=(
                        f"{host} sent {human_bytes(sent)} to external hosts within "
                        f"{human_duration(w.end - w.start)} >= {human_bytes(threshold)} ({baseline}); "
                        f"top destination {top_dsts[0][0]} ({human_bytes(top_dsts[0][1])})"
                    ),
                    details={
                        "bytes_out": sent,
                        "threshold": threshold,
                        "baseline_mean": stat.mean,
                        "baseline_sd": stat.std,
                        "baseline_windows": stat.n,
                        "top_destinations": [{"dst_ip": d, "bytes": b} for d, b in top_dsts],
                    },
                    confidence=0.7 if warm else 0.6,
                )
            )
        if profile.last_window != window_index:
            stat.update(sent)
            profile.last_window = window_index
    return alerts


# ------------------------------------------------------------------------- DNS tunnelling

_TUNNEL_QTYPES = ("TXT", "NULL", "PRIVATE", "ANY", "CNAME", "MX")


def _domain_facts(names: list[str], allow: tuple[str, ...]) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Registered domain, subdomain entropy and subdomain length per distinct query name."""
    regs: list[str | None] = []
    ent = np.zeros(len(names))
    length = np.zeros(len(names))
    for i, name in enumerate(names):
        reg = registered_domain(name) if name else None
        if reg is not None and (reg in allow or any(reg.endswith("." + a) for a in allow)):
            reg = None
        regs.append(reg)
        if reg is None or len(name) <= len(reg):
            continue
        sub = name[: -len(reg) - 1]
        ent[i] = shannon_entropy(sub.replace(".", ""))
        length[i] = len(sub)
    return regs, ent, length


def dns_tunnel_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Many unique, high-entropy subdomains (or TXT/NULL floods) under one registered domain."""
    cfg = ctx.settings.dns_tunnel
    rows = np.flatnonzero(w.dns & (w.src >= 0))
    if len(rows) == 0:
        return []
    domains = w.table.column("domain").take(pa.array(rows))
    encoded = pc.dictionary_encode(domains).combine_chunks()
    names: list[str] = encoded.dictionary.to_pylist()
    name_codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    regs, ent, length = _domain_facts(names, tuple(a.lower() for a in cfg.allow_domains))
    reg_index: dict[str, int] = {}
    reg_code = np.array([reg_index.setdefault(r, len(reg_index)) if r else -1 for r in regs], dtype=np.int64)
    valid = name_codes >= 0
    row_reg = np.where(valid, reg_code[np.maximum(name_codes, 0)], -1)
    keep = row_reg >= 0
    if not keep.any():
        return []
    rows, name_codes, row_reg = rows[keep], name_codes[keep], row_reg[keep]
    qtypes = w.table.column("qtype").take(pa.array(rows))
    tunnel_q = pc.is_in(qtypes, value_set=pa.array(["TXT", "NULL", "PRIVATE"])).to_numpy(zero_copy_only=False)
    n_reg = len(reg_index)
    group = w.src[rows] * n_reg + row_reg
    g_uniq, g_inv = np.unique(group, return_inverse=True)
    # distinct names per (source, registered domain)
    gn = np.unique(g_inv.astype(np.int64) * len(names) + name_codes)
    gn_group, gn_name = gn // len(names), gn % len(names)
    uniq_count = np.bincount(gn_group, minlength=len(g_uniq))
    mean_ent = np.bincount(gn_group, weights=ent[gn_name], minlength=len(g_uniq)) / np.maximum(uniq_count, 1)
    mean_len = np.bincount(gn_group, weights=length[gn_name], minlength=len(g_uniq)) / np.maximum(uniq_count, 1)
    txt = np.bincount(g_inv, weights=tunnel_q.astype(np.float64), minlength=len(g_uniq))
    queries = np.bincount(g_inv, minlength=len(g_uniq))
    encoded_like = (mean_ent >= cfg.min_mean_entropy) | (mean_len >= cfg.min_mean_length)
    hits = np.flatnonzero(((uniq_count >= cfg.min_unique_subdomains) & encoded_like) | (txt >= cfg.txt_null_queries))
    regs_by_code = {v: k for k, v in reg_index.items()}
    alerts: list[Alert] = []
    for j in hits.tolist():
        s = w.addrs[int(g_uniq[j] // n_reg)]
        reg = regs_by_code[int(g_uniq[j] % n_reg)]
        grp = rows[g_inv == j]
        examples = sorted({names[int(c)] for c in name_codes[g_inv == j][:200].tolist()}, key=len, reverse=True)[:5]
        explanation = (
            f"{s} queried {int(uniq_count[j])} unique names under {reg} within "
            f"{human_duration(w.end - w.start)} ({int(queries[j])} queries, {int(txt[j])} TXT/NULL); "
            f"subdomain entropy {mean_ent[j]:.2f} bits/char, mean length {mean_len[j]:.0f} "
            f"(thresholds: >= {cfg.min_unique_subdomains} unique and entropy >= {cfg.min_mean_entropy} "
            f"or length >= {cfg.min_mean_length:g}; or >= {cfg.txt_null_queries} TXT/NULL)"
        )
        alerts.append(
            ctx.alert(
                "dns_tunnel",
                f"Possible DNS tunnel from {s} via {reg}",
                "high" if uniq_count[j] >= 3 * cfg.min_unique_subdomains else "medium",
                float(w.ts[grp].min()),
                float(w.ts[grp].max()),
                attack=["T1071.004", "T1048"],
                tactics=["command-and-control", "exfiltration"],
                entities={"src_ip": s, "domain": reg},
                evidence=w.evidence(grp, ctx.settings.max_evidence),
                event_count=len(grp),
                explanation=explanation,
                details={
                    "registered_domain": reg,
                    "unique_names": int(uniq_count[j]),
                    "queries": int(queries[j]),
                    "txt_null_queries": int(txt[j]),
                    "mean_entropy": float(mean_ent[j]),
                    "mean_subdomain_length": float(mean_len[j]),
                    "examples": examples,
                },
                confidence=0.7,
            )
        )
    return alerts


# ------------------------------------------------------------------------------------ DGA


def dga_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """One host asking for many distinct registered domains that do not exist (domain generation).

    Malware with a domain-generation algorithm tries dozens to thousands of generated
    domains until one its operator registered answers; almost all of them are NXDOMAIN.
    Counting *distinct registered domains* (not queries, not subdomains) keeps a host that
    retries one broken name, or appends a search suffix, far below the threshold.
    """
    cfg = ctx.settings.dga
    rows = np.flatnonzero(w.nxdomain & (w.src >= 0))
    if len(rows) == 0:
        return []
    encoded = pc.dictionary_encode(w.table.column("domain").take(pa.array(rows))).combine_chunks()
    names: list[str | None] = encoded.dictionary.to_pylist()
    allow = DomainMatcher(cfg.allow_domains)
    reg_index: dict[str, int] = {}
    name_reg = np.full(len(names), -1, dtype=np.int64)
    for i, name in enumerate(names):
        reg = registered_domain(name) if name else None
        if reg is not None and not allow(reg):
            name_reg[i] = reg_index.setdefault(reg, len(reg_index))
    codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    row_reg = np.where(codes >= 0, name_reg[np.maximum(codes, 0)], -1)
    keep = row_reg >= 0
    if not keep.any():
        return []
    rows, row_reg = rows[keep], row_reg[keep]
    n_reg = len(reg_index)
    pairs = np.unique(w.src[rows] * n_reg + row_reg)
    sources, distinct = np.unique(pairs // n_reg, return_counts=True)
    regs = list(reg_index)
    alerts: list[Alert] = []
    for code, n_domains in zip(sources.tolist(), distinct.tolist(), strict=True):
        if n_domains < cfg.min_nx_domains:
            continue
        src = w.addrs[code]
        grp = rows[w.src[rows] == code]
        own = sorted({regs[r] for r in (pairs[pairs // n_reg == code] % n_reg).tolist()})
        labels = [d.split(".", 1)[0] for d in own]
        entropy = float(np.mean([shannon_entropy(x) for x in labels])) if labels else 0.0
        length = float(np.mean([len(x) for x in labels])) if labels else 0.0
        examples = own[:10]
        alerts.append(
            ctx.alert(
                "dga",
                f"Possible DGA malware on {src}: {n_domains} non-existent domains",
                "high" if n_domains >= cfg.high_nx_domains else "medium",
                float(w.ts[grp].min()),
                float(w.ts[grp].max()),
                attack=["T1568.002"],
                tactics=["command-and-control"],
                entities={"src_ip": src, "domain": examples},
                evidence=w.evidence(grp, ctx.settings.max_evidence),
                event_count=len(grp),
                explanation=(
                    f"{src} got NXDOMAIN for {n_domains} distinct registered domains within "
                    f"{human_duration(w.end - w.start)} (>= {cfg.min_nx_domains}; {len(grp)} answers), e.g. "
                    f"{', '.join(examples[:5])}; their first labels average {length:.1f} characters and "
                    f"{entropy:.2f} bits/char"
                ),
                details={
                    "nx_registered_domains": n_domains,
                    "threshold": cfg.min_nx_domains,
                    "nx_answers": len(grp),
                    "mean_label_length": length,
                    "mean_label_entropy": entropy,
                    "examples": examples,
                },
                confidence=0.75 if n_domains >= cfg.high_nx_domains else 0.65,
            )
        )
    return alerts


# ------------------------------------------------------------------------------ shadow IT


def shadow_it_analytic(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Internal hosts active on the network that the inventory does not list or that lack EDR."""
    cfg = ctx.settings.shadow_it
    asset_col = w.table.column("asset_class")
    if not ctx.inventory_known and asset_col.null_count == w.n:
        return []
    active_src = (w.conn | w.dns) & w.src_int & (w.src >= 0)
    active_dst = w.conn & w.dst_int & ~w.failed & (w.dst >= 0)
    codes = np.concatenate([w.src[active_src], w.dst[active_dst]])
    times = np.concatenate([w.ts[active_src], w.ts[active_dst]])
    rows_all = np.concatenate([np.flatnonzero(active_src), np.flatnonzero(active_dst)])
    if len(codes) == 0:
        return []
    uniq, inv = np.unique(codes, return_inverse=True)
    first = np.full(len(uniq), np.inf)
    last = np.full(len(uniq), -np.inf)
    np.minimum.at(first, inv, times)
    np.maximum.at(last, inv, times)
    # what enrichment said about the asset behind a source address
    known_src = pc.is_valid(asset_col).to_numpy(zero_copy_only=False)
    edr_col = pc.fill_null(w.table.column("asset_has_edr"), False).to_numpy(zero_copy_only=False)
    enriched_known = np.zeros(len(w.addrs), dtype=bool)
    enriched_edr = np.zeros(len(w.addrs), dtype=bool)
    src_rows = np.flatnonzero(active_src & known_src)
    enriched_known[w.src[src_rows]] = True
    enriched_edr[w.src[src_rows[edr_col[src_rows]]]] = True
    alerts: list[Alert] = []
    ignore = ctx.shadow_ignore
    for j, code in enumerate(uniq.tolist()):
        ip = w.addrs[code]
        if not is_host_address(ip) or (ignore and ignore(ip)):
            continue
        asset = ctx.assets_by_ip.get(ip)
        known = asset is not None or bool(enriched_known[code])
        has_edr = (asset.has_edr if asset is not None else False) or bool(enriched_edr[code])
        host = ctx.state.shadow.profile(ip)
        if host.first == 0.0:
            host.first = float(first[j])
        host.first = min(host.first, float(first[j]))
        host.last = max(host.last, float(last[j]))
        if not known:
            finding = "unmanaged"
        elif not has_edr and cfg.report_missing_edr:
            finding = "no_edr"
        else:
            continue
        if host.reported == finding or (host.reported == "unmanaged" and finding == "no_edr"):
            continue
        host.reported = finding
        grp = rows_all[inv == j]
        if finding == "unmanaged":
            title = f"Unmanaged host {ip} active on the network"
            explanation = (
                f"{ip} is active on the network (first seen {utc(host.first).isoformat()}, last seen "
                f"{utc(host.last).isoformat()}) but is not in the asset inventory"
            )
            severity, attack, tactics = "medium", ["T1200"], ["initial-access"]
        else:
            name = asset.hostname if asset is not None else ip
            title = f"Host {name} ({ip}) has no EDR agent"
            explanation = (
                f"{name} ({ip}) is in the inventory without an EDR agent and is active on the network "
                f"(first seen {utc(host.first).isoformat()}, last seen {utc(host.last).isoformat()})"
            )
            severity, attack, tactics = "low", [], []
        entities: dict[str, Any] = {"src_ip": ip}
        if asset is not None:
            entities["host"] = asset.hostname
        alerts.append(
            ctx.alert(
                "shadow_it",
                title,
                severity,
                host.first,
                host.last,
                attack=attack,
                tactics=tactics,
                entities=entities,
                evidence=w.evidence(grp, 20),
                event_count=len(grp),
                explanation=explanation,
                details={
                    "finding": finding,
                    "first_seen": utc(host.first).isoformat(),
                    "last_seen": utc(host.last).isoformat(),
                    "in_inventory": known,
                    "has_edr": has_edr,
                },
                confidence=0.8,
            )
        )
    return alerts


def popularity_step(w: WindowFrame, ctx: NetworkContext) -> list[Alert]:
    """Not an alerting analytic: folds the window's contacts into the popularity baseline.

    Runs after beaconing and long connections of the same window, so a destination's
    own traffic never makes itself look popular before it is judged.
    """
    update_popularity(w, ctx)
    return []


@dataclass(frozen=True, slots=True)
class WindowAnalytic:
    """A network analytic and the window length it runs on."""

    name: str
    window_seconds: int
    run: Callable[[WindowFrame, NetworkContext], list[Alert]]


def network_analytics(settings: AnalyticsSettings) -> list[WindowAnalytic]:
    """The enabled network analytics with their window lengths (from ``settings``)."""
    out: list[WindowAnalytic] = []
    if settings.scan.enabled:
        out.append(WindowAnalytic("scan_fast", settings.scan.fast_window_seconds, scan_fast_analytic))
        out.append(WindowAnalytic("scan_slow", settings.scan.slow_window_seconds, scan_slow_analytic))
    if settings.lateral.enabled:
        out.append(WindowAnalytic("lateral_movement", settings.lateral.window_seconds, lateral_analytic))
    if settings.exfil.enabled:
        out.append(WindowAnalytic("exfiltration_volume", settings.exfil.window_seconds, exfil_analytic))
    if settings.dns_tunnel.enabled:
        out.append(WindowAnalytic("dns_tunnel", settings.dns_tunnel.window_seconds, dns_tunnel_analytic))
    if settings.dga.enabled:
        out.append(WindowAnalytic("dga", settings.dga.window_seconds, dga_analytic))
    if settings.beacon.enabled:
        out.append(WindowAnalytic("beacon", settings.beacon.window_seconds, beacon_analytic))
    if settings.long_connection.enabled:
        out.append(WindowAnalytic("long_connection", settings.long_connection.window_seconds, long_connection_analytic))
    if settings.shadow_it.enabled:
        out.append(WindowAnalytic("shadow_it", settings.shadow_it.window_seconds, shadow_it_analytic))
    if settings.beacon.enabled or settings.long_connection.enabled:
        out.append(WindowAnalytic("popularity", settings.beacon.window_seconds, popularity_step))
    return out
