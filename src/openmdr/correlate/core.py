"""The pure, in-memory correlator: alerts in, case changes out, no I/O.

State is partitioned by tenant (one :class:`_TenantState` each), so tenants never share a
case and the core can be sharded by tenant.  Per tenant it keeps only what can still
change: the open cases active within the correlation window plus a late-arrival
allowance, an inverted index entity -> case -> time interval over them, recent dedup keys
and entity "peer" sets for hub detection.  Everything older is evicted as the tenant's
watermark (newest alert time) advances, so memory follows open cases, not history.

Rules (all deterministic: the same alert sequence gives the same cases however it is cut
into batches, because alerts are processed one by one in arrival order):

- *dedup*: same source, rule and entity set within ``dedup_window`` of the kept alert ->
  folded into it (count and first/last seen grow);
- *link*: an alert joins an open case when the entities they share, within ``window`` of
  each other, weigh at least ``link_threshold``.  A host, user, process lineage or outside
  source address weighs 1; other addresses, domains and hashes 0.5 (they need a second
  shared entity); one of N > 2 listed values 2/N of that; values seen with more than
  ``hub_peers`` distinct peers (a DNS server, proxy, gateway, domain controller, a shared
  admin account) weigh 0 and so never glue unrelated alerts together;
- *merge*: an alert that links several open cases merges them into the oldest;
- every change carries its reason in words ("same user alice and host ws01 within 25 min").
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from openmdr.correlate.entities import (
    EntityKey,
    dedup_fingerprint,
    entity_key,
    joined_words,
    weighted_entities,
)
from openmdr.models.alert import Alert

_KIND_ORDER = {"user": 0, "host": 1, "lineage": 2, "ip": 3, "domain": 4, "hash": 5}


@dataclass(frozen=True, slots=True)
class CorrelatorConfig:
    """Windows (seconds) and thresholds of correlation."""

    window: float = 2 * 3600.0
    dedup_window: float = 3600.0
    late_allowance: float = 2 * 3600.0
    link_threshold: float = 1.0
    hub_peers: int = 10
    hub_memory: float = 24 * 3600.0
    sweep_every: float = 1800.0

    @property
    def horizon(self) -> float:
        """How long after its last alert a case stays joinable in memory."""
        return self.window + self.late_allowance


@dataclass(slots=True)
class CaseChange:
    """One change to a case: who (tenant, case), what (kind), which alerts, and why in words.

    Kinds from correlation: ``opened``, ``joined``, ``merged`` (``related`` lists the cases
    folded in), ``deduplicated`` (``kept_alert`` is the alert it was folded into),
    ``redelivered`` (an alert id seen before), ``suppressed`` and ``rejected`` (case_id
    None).  Analyst actions: ``acknowledged``, ``assigned``, ``noted``, ``contained``,
    ``resolved``, ``reopened``, ``merged``, ``split``.
    """

    tenant: str
    case_id: str | None
    kind: str
    alert_ids: list[str]
    reason: str
    related: list[str] = field(default_factory=list)
    kept_alert: str | None = None


def case_id_for(tenant: str, seed: str) -> str:
    """Stable case id from the tenant and the case's seed (its first alert id, or a split's alert ids)."""
    return "C-" + hashlib.blake2b(f"{tenant}\x1f{seed}".encode(), digest_size=5).hexdigest()


def split_case_id(tenant: str, case_id: str, alert_ids: Iterable[str], taken: Callable[[str], bool]) -> str:
    """Stable id of the case that a split of ``alert_ids`` out of ``case_id`` creates (never one ``taken``)."""
    seed = "split\x1f" + case_id + "\x1f" + "\x1f".join(sorted(alert_ids))
    new_id = case_id_for(tenant, seed)
    while taken(new_id):
        seed += "'"
        new_id = case_id_for(tenant, seed)
    return new_id


def describe_gap(seconds: float) -> str:
    """``within 25 min`` / ``within 3 h`` / ``at the same time``."""
    if seconds <= 0:
        return "at the same time"
    minutes = math.ceil(seconds / 60.0)
    if minutes < 120:
        return f"within {minutes} min"
    return f"within {math.ceil(minutes / 60)} h"


@dataclass(slots=True)
class _Member:
    case_id: str
    keys: tuple[str, ...]
    t0: float
    t1: float
    fingerprint: str


@dataclass(slots=True)
class _Cluster:
    case_id: str
    seq: int
    first: float
    last: float
    alerts: list[str]
    ents: dict[str, list[float]]


@dataclass(slots=True)
class _Dedup:
    alert_id: str
    case_id: str
    first: float
    last: float
    count: int


class _TenantState:
    __slots__ = (
        "case_queue",
        "clusters",
        "dedup",
        "dedup_queue",
        "evicted",
        "index",
        "last_sweep",
        "members",
        "peer_queue",
        "peers",
        "seq",
        "specificity",
        "watermark",
    )

    def __init__(self) -> None:
        self.clusters: dict[str, _Cluster] = {}
        self.index: dict[str, dict[str, list[float]]] = {}
        self.members: dict[str, _Member] = {}
        self.peers: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.dedup: dict[str, _Dedup] = {}
        self.specificity: Mapping[str, float] = {}
        self.watermark = float("-inf")
        self.last_sweep = float("-inf")
        self.seq = 0
        self.evicted = 0
        self.case_queue: deque[tuple[float, str]] = deque()
        self.dedup_queue: deque[tuple[float, str]] = deque()
        self.peer_queue: deque[tuple[float, str]] = deque()


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What the store knows about a tenant that sharpens correlation.

    ``ip_hosts`` maps internal addresses to inventory hostnames (so a network alert on
    10.1.2.3 meets the endpoint alert of ws01); ``specificity`` scales the weight of
    entity keys of shared infrastructure (``host:dc01`` 0.25 for a domain controller or
    network device, ``host:fs01`` 0.5 for a server many people use).
    """

    ip_hosts: Mapping[str, str] = field(default_factory=dict)
    specificity: Mapping[str, float] = field(default_factory=dict)


class Correlator:
    """Dedup and explainable entity correlation of alerts into cases, per tenant, in memory."""

    def __init__(self, config: CorrelatorConfig | None = None) -> None:
        self.config = config or CorrelatorConfig()
        self._tenants: dict[str, _TenantState] = {}
        self._contexts: dict[str, TenantContext] = {}

    # ---------------------------------------------------------------- state
    def _state(self, tenant: str) -> _TenantState:
        st = self._tenants.get(tenant)
        if st is None:
            st = self._tenants[tenant] = _TenantState()
            ctx = self._contexts.get(tenant)
            if ctx is not None:
                st.specificity = ctx.specificity
        return st

    def set_context(self, tenant: str, context: TenantContext) -> None:
        """Use the tenant's inventory hints from now on."""
        self._contexts[tenant] = context
        if tenant in self._tenants:
            self._tenants[tenant].specificity = context.specificity

    def forget(self, tenant: str) -> None:
        """Drop all in-memory state of ``tenant`` (the store rebuilds it with :meth:`seed`)."""
        self._tenants.pop(tenant, None)

    def tenants(self) -> list[str]:
        """Tenants with in-memory state."""
        return sorted(self._tenants)

    def stats(self) -> dict[str, int]:
        """Sizes of the in-memory state (open cases, members, index keys, evicted cases)."""
        out = {
            "tenants": len(self._tenants),
            "cases": 0,
            "alerts": 0,
            "index_keys": 0,
            "peers": 0,
            "dedup": 0,
            "evicted": 0,
        }
        for st in self._tenants.values():
            out["cases"] += len(st.clusters)
            out["alerts"] += len(st.members)
            out["index_keys"] += len(st.index)
            out["peers"] += len(st.peers)
            out["dedup"] += len(st.dedup)
            out["evicted"] += st.evicted
        return out

    def case_of(self, tenant: str, alert_id: str) -> str | None:
        """The in-memory case holding ``alert_id`` (None when unknown or evicted)."""
        st = self._tenants.get(tenant)
        member = st.members.get(alert_id) if st else None
        return member.case_id if member else None

    def cases(self, tenant: str) -> dict[str, list[str]]:
        """In-memory open cases of ``tenant`` and their alert ids."""
        st = self._tenants.get(tenant)
        return {cid: list(c.alerts) for cid, c in st.clusters.items()} if st else {}

    # ---------------------------------------------------------------- correlation
    def correlate(self, alerts: Iterable[Alert]) -> list[CaseChange]:
        """Process alerts in order; returns the case changes they caused."""
        changes: list[CaseChange] = []
        for alert in alerts:
            changes.extend(self.process(alert))
        return changes

    def process(self, alert: Alert) -> list[CaseChange]:
        """Dedup, link and (when it bridges cases) merge one alert."""
        st = self._state(alert.tenant)
        cfg = self.config
        t0 = alert.first_seen.timestamp()
        t1 = max(t0, alert.last_seen.timestamp())
        if alert.alert_id in st.members:
            cid = st.members[alert.alert_id].case_id
            return [CaseChange(alert.tenant, cid, "redelivered", [alert.alert_id], "alert id seen before")]
        if t1 > st.watermark:
            st.watermark = t1
        fp = dedup_fingerprint(alert)
        kept = st.dedup.get(fp)
        if kept is not None and kept.case_id in st.clusters:
            gap = max(t0 - kept.last, kept.first - t1, 0.0)
            if gap <= cfg.dedup_window:
                return [self._fold(st, alert, kept, t0, t1, gap)]
        ents, shares = self._entities(alert)
        weights, hubs = self._weights(st, ents, shares, t1)
        scores: dict[str, float] = {}
        matched: dict[str, list[tuple[EntityKey, float, float]]] = {}
        window = cfg.window
        for ent, w in zip(ents, weights, strict=True):
            if w <= 0.0:
                continue
            postings = st.index.get(ent.key)
            if not postings:
                continue
            for cid, iv in postings.items():
                gap = max(iv[0] - t1, t0 - iv[1], 0.0)
                if gap <= window:
                    scores[cid] = scores.get(cid, 0.0) + w
                    matched.setdefault(cid, []).append((ent, gap, w))
        qualified = [cid for cid, s in scores.items() if s >= cfg.link_threshold - 1e-9]
        changes: list[CaseChange] = []
        if not qualified:
            cid = case_id_for(alert.tenant, alert.alert_id)
            st.seq += 1
            st.clusters[cid] = _Cluster(cid, st.seq, t0, t1, [], {})
            reason = f"opened by {alert.title!r} ({alert.severity})"
            near = [c for c in scores if c not in qualified]
            if near:
                best = max(near, key=lambda c: (scores[c], -st.clusters[c].seq))
                reason += f"; {_phrase(matched[best])} with case {best} is too weak alone"
            if hubs:
                limit = cfg.hub_peers
                words = [f"{_label(h)} {h.display} (seen with {limit}+ others)" for h in hubs[:3]]
                reason += f"; common entities not used to link: {joined_words(words)}"
            self._add(st, cid, alert, ents, t0, t1, fp)
            changes.append(CaseChange(alert.tenant, cid, "opened", [alert.alert_id], reason))
        else:
            qualified.sort(key=lambda c: st.clusters[c].seq)
            target = qualified[0]
            reason = _phrase(matched[target])
            if len(qualified) > 1:
                moved: list[str] = []
                parts = []
                for other in qualified[1:]:
                    parts.append(f"case {other} by {_phrase(matched[other])}")
                    moved.extend(self._absorb(st, target, other))
                merge_reason = f"alert {alert.title!r} links case {target} ({reason}) with {joined_words(parts)}"
                changes.append(CaseChange(alert.tenant, target, "merged", moved, merge_reason, related=qualified[1:]))
            self._add(st, target, alert, ents, t0, t1, fp)
            changes.append(CaseChange(alert.tenant, target, "joined", [alert.alert_id], reason))
        if st.watermark - st.last_sweep >= cfg.sweep_every:
            self._sweep(st)
        return changes

    def _entities(self, alert: Alert) -> tuple[list[EntityKey], list[float]]:
        ents, shares = weighted_entities(alert)
        ctx = self._contexts.get(alert.tenant)
        if ctx is not None and ctx.ip_hosts:
            have = {e.key for e in ents}
            for e, share in list(zip(ents, shares, strict=True)):
                if e.kind == "ip" and (host := ctx.ip_hosts.get(e.value)) and f"host:{host}" not in have:
                    have.add(f"host:{host}")
                    ents.append(entity_key("host", host, f"{host} ({e.value})"))
                    shares.append(share)
        return ents, shares

    def _weights(
        self, st: _TenantState, ents: list[EntityKey], shares: list[float], now: float
    ) -> tuple[list[float], list[EntityKey]]:
        """Each entity's linking weight after specificity (hub and inventory) checks; updates peer sets.

        A host's peers are the users seen on it; everything else's peers are the hosts seen
        with it (a DNS server talks to every host; a spraying address tries many users from
        nowhere inside, and stays specific).
        """
        limit = self.config.hub_peers
        anchors = [e for e in ents if e.kind in ("host", "user")]
        weights: list[float] = []
        hubs: list[EntityKey] = []
        for ent, share in zip(ents, shares, strict=True):
            w = ent.weight * share
            key = ent.key
            factor = st.specificity.get(key)
            if factor is not None:
                w *= factor
            if ent.kind != "lineage":
                # peer sets are (last seen, tuple of anchor keys): immutable, so the garbage
                # collector stops tracking them and a large state costs it nothing
                peer = st.peers.get(key)
                if peer is None:
                    peer_kind = "user" if ent.kind == "host" else "host"
                    seen = tuple(a.key for a in anchors if a.kind == peer_kind)
                    st.peers[key] = (now, seen)
                    st.peer_queue.append((now, key))
                else:
                    last, seen = peer
                    grown = seen
                    if len(seen) <= limit:
                        peer_kind = "user" if ent.kind == "host" else "host"
                        new = tuple(a.key for a in anchors if a.kind == peer_kind and a.key not in seen)
                        if new:
                            grown = seen + new
                    if now > last:
                        if now - last > 0.25 * self.config.hub_memory:
                            st.peer_queue.append((now, key))
                        last = now
                    if grown is not seen or last != peer[0]:
                        st.peers[key] = (last, grown)
                        seen = grown
                if len(seen) > limit:
                    w = 0.0
                    hubs.append(ent)
            weights.append(w)
        return weights, hubs

    def _add(
        self, st: _TenantState, cid: str, alert: Alert, ents: list[EntityKey], t0: float, t1: float, fp: str
    ) -> None:
        cluster = st.clusters[cid]
        cluster.alerts.append(alert.alert_id)
        cluster.first = min(cluster.first, t0)
        cluster.last = max(cluster.last, t1)
        keys = tuple(e.key for e in ents)
        for key in keys:
            iv = cluster.ents.get(key)
            if iv is None:
                iv = cluster.ents[key] = [t0, t1]
                st.index.setdefault(key, {})[cid] = iv
            else:
                if t0 < iv[0]:
                    iv[0] = t0
                if t1 > iv[1]:
                    iv[1] = t1
        st.members[alert.alert_id] = _Member(cid, keys, t0, t1, fp)
        st.dedup[fp] = _Dedup(alert.alert_id, cid, t0, t1, alert.event_count)
        st.case_queue.append((t1, cid))
        st.dedup_queue.append((t1, fp))

    def _fold(self, st: _TenantState, alert: Alert, kept: _Dedup, t0: float, t1: float, gap: float) -> CaseChange:
        kept.first = min(kept.first, t0)
        kept.last = max(kept.last, t1)
        kept.count += alert.event_count
        cluster = st.clusters[kept.case_id]
        cluster.first = min(cluster.first, t0)
        cluster.last = max(cluster.last, t1)
        st.case_queue.append((cluster.last, cluster.case_id))
        st.dedup_queue.append((kept.last, dedup_fingerprint(alert)))
        member = st.members.get(kept.alert_id)
        if member is not None:
            member.t0, member.t1 = min(member.t0, t0), max(member.t1, t1)
            for key in member.keys:
                iv = cluster.ents.get(key)
                if iv is not None:
                    iv[0], iv[1] = min(iv[0], t0), max(iv[1], t1)
        reason = f"repeat of alert {kept.alert_id} ({alert.rule_id}) with the same entities {describe_gap(gap)}"
        return CaseChange(
            alert.tenant, kept.case_id, "deduplicated", [alert.alert_id], reason, kept_alert=kept.alert_id
        )

    def _absorb(self, st: _TenantState, target: str, other: str) -> list[str]:
        """Move every alert of case ``other`` into ``target``; returns the moved alert ids."""
        src = st.clusters.pop(other)
        dst = st.clusters[target]
        dst.first, dst.last = min(dst.first, src.first), max(dst.last, src.last)
        st.case_queue.append((dst.last, target))
        for key, iv in src.ents.items():
            postings = st.index[key]
            del postings[other]
            have = dst.ents.get(key)
            if have is None:
                dst.ents[key] = iv
                postings[target] = iv
            else:
                have[0], have[1] = min(have[0], iv[0]), max(have[1], iv[1])
        for aid in src.alerts:
            st.members[aid].case_id = target
        for entry in st.dedup.values():
            if entry.case_id == other:
                entry.case_id = target
        dst.alerts.extend(src.alerts)
        return list(src.alerts)

    def _sweep(self, st: _TenantState) -> None:
        """Evict cases idle beyond the horizon, stale dedup keys and peer sets.

        Each structure has an expiry queue of (time, key) in arrival order; entries are
        checked against the live value when they reach the front, so a sweep costs in
        proportion to what expired, not to the state held.
        """
        cfg = self.config
        st.last_sweep = st.watermark
        cutoff = st.watermark - cfg.horizon
        queue = st.case_queue
        while queue and queue[0][0] < cutoff:
            _, cid = queue.popleft()
            cluster = st.clusters.get(cid)
            if cluster is not None and cluster.last < cutoff:
                self._evict(st, cid)
        dedup_cutoff = st.watermark - cfg.dedup_window - cfg.late_allowance
        queue = st.dedup_queue
        while queue and queue[0][0] < dedup_cutoff:
            _, fp = queue.popleft()
            entry = st.dedup.get(fp)
            if entry is not None and entry.last < dedup_cutoff:
                del st.dedup[fp]
        peer_cutoff = st.watermark - cfg.hub_memory
        queue = st.peer_queue
        while queue and queue[0][0] < peer_cutoff:
            _, key = queue.popleft()
            peer = st.peers.get(key)
            if peer is not None and peer[0] < peer_cutoff:
                del st.peers[key]

    def _evict(self, st: _TenantState, cid: str) -> None:
        cluster = st.clusters.pop(cid)
        for key in cluster.ents:
            postings = st.index.get(key)
            if postings is not None:
                postings.pop(cid, None)
                if not postings:
                    del st.index[key]
        for aid in cluster.alerts:
            st.members.pop(aid, None)
        st.evicted += 1

    # ---------------------------------------------------------------- analyst operations and rebuild
    def seed(self, tenant: str, case_id: str, alerts: Iterable[Alert]) -> None:
        """Put a stored open case back into memory as it is (no correlation), e.g. after a restart."""
        st = self._state(tenant)
        ordered = sorted(alerts, key=lambda a: (a.first_seen, a.alert_id))
        if not ordered:
            return
        if case_id not in st.clusters:
            st.seq += 1
            t = ordered[0].first_seen.timestamp()
            st.clusters[case_id] = _Cluster(case_id, st.seq, t, t, [], {})
        for alert in ordered:
            if alert.alert_id in st.members:
                continue
            t0, t1 = alert.first_seen.timestamp(), max(alert.first_seen.timestamp(), alert.last_seen.timestamp())
            st.watermark = max(st.watermark, t1)
            ents, shares = self._entities(alert)
            self._weights(st, ents, shares, t1)
            self._add(st, case_id, alert, ents, t0, t1, dedup_fingerprint(alert))

    def close(self, tenant: str, case_id: str) -> None:
        """Stop correlating into ``case_id`` (resolved): later alerts open a new case."""
        st = self._tenants.get(tenant)
        if st is not None and case_id in st.clusters:
            self._evict(st, case_id)
            st.evicted -= 1

    def merge(self, tenant: str, target: str, others: Iterable[str]) -> list[str]:
        """Analyst merge of in-memory cases into ``target``; returns the moved alert ids."""
        st = self._state(tenant)
        if target not in st.clusters:
            raise KeyError(f"case {target} is not open in memory")
        moved: list[str] = []
        for other in others:
            if other != target and other in st.clusters:
                moved.extend(self._absorb(st, target, other))
        return moved

    def split(self, tenant: str, case_id: str, alert_ids: Iterable[str]) -> str:
        """Analyst split: move ``alert_ids`` out of ``case_id`` into a new case; returns its id."""
        st = self._state(tenant)
        src = st.clusters.get(case_id)
        wanted = list(dict.fromkeys(alert_ids))
        if src is None:
            raise KeyError(f"case {case_id} is not open in memory")
        missing = [a for a in wanted if st.members.get(a) is None or st.members[a].case_id != case_id]
        if missing or not wanted or len(wanted) >= len(src.alerts):
            raise ValueError("split needs some, but not all, of the case's own alerts")
        new_id = split_case_id(tenant, case_id, wanted, lambda c: c in st.clusters)
        st.seq += 1
        moving = set(wanted)
        keep = [a for a in src.alerts if a not in moving]
        self._rebuild_cluster(st, case_id, keep, src.seq)
        self._rebuild_cluster(st, new_id, wanted, st.seq)
        for entry in st.dedup.values():
            if entry.alert_id in moving:
                entry.case_id = new_id
        return new_id

    def _rebuild_cluster(self, st: _TenantState, cid: str, alert_ids: list[str], seq: int) -> None:
        old = st.clusters.get(cid)
        if old is not None:
            for key in old.ents:
                st.index[key].pop(cid, None)
                if not st.index[key]:
                    del st.index[key]
        members = [st.members[a] for a in alert_ids]
        cluster = _Cluster(cid, seq, min(m.t0 for m in members), max(m.t1 for m in members), list(alert_ids), {})
        for m in members:
            m.case_id = cid
            for key in m.keys:
                iv = cluster.ents.get(key)
                if iv is None:
                    cluster.ents[key] = [m.t0, m.t1]
                else:
                    iv[0], iv[1] = min(iv[0], m.t0), max(iv[1], m.t1)
        for key, iv in cluster.ents.items():
            st.index.setdefault(key, {})[cid] = iv
        st.clusters[cid] = cluster
        st.case_queue.append((cluster.last, cid))


def _phrase(matched: list[tuple[EntityKey, float, float]]) -> str:
    """``same user alice and host ws01 within 25 min`` from (entity, gap, weight) matches."""
    best: dict[str, tuple[EntityKey, float, float]] = {}
    for ent, gap, weight in matched:
        if ent.key not in best or gap < best[ent.key][1]:
            best[ent.key] = (ent, gap, weight)
    # name the strongest four (a spray's address before its users), then in a stable order
    strongest = sorted(best.values(), key=lambda x: (-x[2], _KIND_ORDER.get(x[0].kind, 9), x[0].display))[:4]
    items = sorted(strongest, key=lambda x: (_KIND_ORDER.get(x[0].kind, 9), _label(x[0]), x[0].display))
    words: list[str] = []
    last_label = None
    for ent, _, _ in items:
        label = _label(ent)
        words.append(ent.display if label == last_label else f"{label} {ent.display}")
        last_label = label
    if len(best) > len(items):
        words.append(f"{len(best) - len(items)} more")
    gap = max(g for _, g, _ in best.values())
    return f"same {joined_words(words)} {describe_gap(gap)}"


def _label(ent: EntityKey) -> str:
    if ent.kind == "ip":
        return {"src": "source ip", "dst": "destination ip"}.get(ent.role or "", "ip")
    return {"lineage": "process lineage"}.get(ent.kind, ent.kind)
