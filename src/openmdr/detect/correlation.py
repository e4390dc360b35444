"""Sigma correlation rules (specification v2.1) over detection matches, batch or streaming.

Supported types: ``event_count``, ``value_count``, ``temporal``, ``temporal_ordered``,
``value_sum``, ``value_avg``, ``value_percentile`` and ``value_median``, with
``group-by`` (field values compared ASCII-case-insensitively, as Sigma compares strings),
field-name ``aliases``, chaining (a correlation may refer to another correlation) and
pySigma's extended boolean conditions for the temporal types.

Window semantics (the same for one big batch and for many small ones, because the state
is carried between calls):

* **Sliding windows ending at each match.**  When a referenced rule matches at time *t*,
  the metric is computed over the group's matches in ``[t - timespan, t]``; if the
  condition holds, one alert is emitted with those matches as evidence and the group's
  window is reset, so a burst of 100 failed logons against ``gte: 10`` yields 10 alerts,
  not 91 overlapping ones.
* **Closed windows** for conditions that a single early event would already satisfy
  (``lt``/``lte`` on ``event_count``/``value_count``, and extended temporal conditions with
  ``not``): a window opens at a group's first match and is evaluated once event time (per
  tenant) has passed its end, or at :meth:`CorrelationEngine.flush`.
* ``temporal`` counts the distinct referenced rules in the window (default: all must
  appear); ``temporal_ordered`` counts the longest run of them appearing in the listed
  order.  Percentiles interpolate linearly, as SQL ``PERCENTILE_CONT`` does.

State is bounded: at most ``max_groups`` groups per rule (least recently updated ones
are evicted first) and ``max_window`` matches per group (oldest dropped); groups idle for
longer than the timespan are pruned as event time advances.  Evictions and drops are
counted in :attr:`CorrelationEngine.stats`.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openmdr.detect import ir
from openmdr.detect.compiler import CorrelationSpec, RuleMeta
from openmdr.detect.ir import number_of
from openmdr.detect.text import value_texts
from openmdr.models.event import Event


@dataclass(slots=True)
class CorrelationMatch:
    """One input to a correlation: a detection match (or a child correlation's firing)."""

    time: float
    seq: int
    slot: int
    events: tuple[Event, ...]
    values: Mapping[str, Any]  #: field values visible to the correlation (event fields, group keys)


@dataclass(slots=True)
class CorrelationFiring:
    """A correlation rule whose condition held over one window."""

    spec: int
    tenant: str
    group: dict[str, Any]
    matches: list[CorrelationMatch]
    metric: float
    window: tuple[float, float]

    @property
    def events(self) -> list[Event]:
        """The distinct events behind the firing, in time order."""
        out: dict[int, Event] = {}
        for m in sorted(self.matches, key=lambda x: (x.time, x.seq)):
            for e in m.events:
                out.setdefault(id(e), e)
        return list(out.values())


@dataclass(slots=True)
class _GroupState:
    matches: list[CorrelationMatch] = field(default_factory=list)
    keys: list[tuple[float, int]] = field(default_factory=list)
    last: float = float("-inf")
    version: int = 0


def _fold(value: Any) -> Any:
    texts = value_texts(value)
    if not texts:
        return None
    t = texts[0]
    return t.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def _compare(op: str, metric: float, threshold: float) -> bool:
    if op == "gt":
        return metric > threshold
    if op == "gte":
        return metric >= threshold
    if op == "lt":
        return metric < threshold
    if op == "lte":
        return metric <= threshold
    if op == "eq":
        return metric == threshold
    return metric != threshold  # neq


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile ``p`` (0-100) of ``values`` (non-empty)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def longest_ordered_run(slots: Sequence[int]) -> list[int]:
    """Indexes of a longest subsequence whose slots strictly increase (rules in listed order)."""
    tails: list[int] = []  # slot value at the end of the best run of each length
    tail_idx: list[int] = []
    prev: list[int] = [-1] * len(slots)
    for i, s in enumerate(slots):
        k = bisect.bisect_left(tails, s)
        if k == len(tails):
            tails.append(s)
            tail_idx.append(i)
        elif s < tails[k]:
            tails[k] = s
            tail_idx[k] = i
        prev[i] = tail_idx[k - 1] if k > 0 else -1
    out: list[int] = []
    i = tail_idx[-1] if tail_idx else -1
    while i >= 0:
        out.append(i)
        i = prev[i]
    return out[::-1]


class _Rule:
    """Runtime state and logic of one correlation rule."""

    def __init__(self, index: int, spec: CorrelationSpec, max_groups: int, max_window: int) -> None:
        self.index = index
        self.spec = spec
        self.max_groups = max_groups
        self.max_window = max_window
        self.groups: OrderedDict[tuple[Any, ...], _GroupState] = OrderedDict()
        self.deadlines: list[tuple[float, int, tuple[Any, ...], int]] = []
        self._tick = itertools.count()
        self.closed_mode = self._needs_closed_windows()
        self.evicted = 0
        self.dropped = 0

    def _needs_closed_windows(self) -> bool:
        spec = self.spec
        if spec.extended is not None:
            return any(e[0] == "N" for e in _walk(spec.extended))
        if spec.type in ("event_count", "value_count"):
            return any(op in ("lt", "lte") for op, _ in spec.conditions)
        return False

    def group_fields(self, meta_index: int) -> list[str]:
        """The event field holding each group-by value for matches of rule ``meta_index``."""
        return [self.spec.aliases.get(g, {}).get(meta_index, g) for g in self.spec.group_by]

    def value_field(self, meta_index: int) -> str | None:
        """The event field holding the aggregated value for matches of rule ``meta_index``."""
        f = self.spec.value_field
        if f is None:
            return None
        return self.spec.aliases.get(f, {}).get(meta_index, f)

    # -- metric ---------------------------------------------------------------------------

    def metric(self, window: list[CorrelationMatch]) -> tuple[float | None, list[CorrelationMatch]]:
        """The rule's metric over ``window`` and the matches that are its evidence."""
        spec = self.spec
        kind = spec.type
        if kind == "event_count":
            return float(len({id(e) for m in window for e in m.events})), window
        if kind in ("temporal", "temporal_ordered"):
            if kind == "temporal_ordered":
                run = longest_ordered_run([m.slot for m in window])
                evidence = [window[i] for i in run]
                return float(len(run)), evidence
            return float(len({m.slot for m in window})), window
        values = [m.values.get("__value__") for m in window]
        if kind == "value_count":
            distinct = {_fold(v) for v in values if v is not None}
            distinct.discard(None)
            return float(len(distinct)), window
        numbers = [x for x in (number_of(v) for v in values) if x is not None]
        evidence = [m for m, v in zip(window, values, strict=True) if number_of(v) is not None]
        if not numbers:
            return None, evidence
        if kind == "value_sum":
            return float(sum(numbers)), evidence
        if kind == "value_avg":
            return sum(numbers) / len(numbers), evidence
        return percentile(numbers, spec.percentile or 50.0), evidence

    def holds(self, window: list[CorrelationMatch], metric: float | None) -> bool:
        """Whether the condition holds for ``window`` (with its computed ``metric``)."""
        spec = self.spec
        if spec.extended is not None:
            present = {m.slot for m in window}
            return ir.eval_expr(spec.extended, lambda i: i in present)
        if metric is None:
            return False
        return all(_compare(op, metric, threshold) for op, threshold in spec.conditions)

    # -- state ----------------------------------------------------------------------------

    def add(self, key: tuple[Any, ...], match: CorrelationMatch, group: dict[str, Any]) -> list[CorrelationFiring]:
        """Add a match to its group; returns firings (arrival-evaluated rules only)."""
        state = self.groups.get(key)
        if state is None:
            state = _GroupState()
            self.groups[key] = state
            if len(self.groups) > self.max_groups:
                self.groups.popitem(last=False)
                self.evicted += 1
        else:
            self.groups.move_to_end(key)
        k = (match.time, match.seq)
        pos = bisect.bisect_right(state.keys, k)
        state.keys.insert(pos, k)
        state.matches.insert(pos, match)
        if len(state.matches) > self.max_window:
            del state.matches[0]
            del state.keys[0]
            self.dropped += 1
        state.last = max(state.last, match.time)
        span = self.spec.timespan
        if self.closed_mode:
            if state.matches[0] is match:  # the window start changed: (re)schedule its close
                state.version += 1
                deadline = state.matches[0].time + span
                heapq.heappush(self.deadlines, (deadline, next(self._tick), key, state.version))
            return []
        # prune matches that fell out of every future window
        cut = bisect.bisect_left(state.keys, (state.last - span, -1))
        if cut:
            del state.matches[:cut]
            del state.keys[:cut]
        lo = bisect.bisect_left(state.keys, (match.time - span, -1))
        hi = bisect.bisect_right(state.keys, (match.time, float("inf")))
        window = state.matches[lo:hi]
        metric, evidence = self.metric(window)
        if not self.holds(window, metric):
            return []
        firing = CorrelationFiring(self.index, key[0], group, evidence, metric or 0.0, (match.time - span, match.time))
        state.matches.clear()
        state.keys.clear()
        return [firing]

    def close_due(self, tenant_watermarks: Mapping[str, float], final: bool) -> list[CorrelationFiring]:
        """Evaluate closed windows whose end has passed (all of them when ``final``)."""
        out: list[CorrelationFiring] = []
        span = self.spec.timespan
        while self.deadlines:
            deadline, _, key, version = self.deadlines[0]
            watermark = tenant_watermarks.get(key[0], float("-inf"))
            if not final and deadline >= watermark:
                break
            heapq.heappop(self.deadlines)
            state = self.groups.get(key)
            if state is None or state.version != version or not state.matches:
                continue
            start = state.matches[0].time
            end = start + span
            hi = bisect.bisect_right(state.keys, (end, float("inf")))
            window = state.matches[:hi]
            metric, evidence = self.metric(window)
            if self.holds(window, metric):
                group = dict(zip(self.spec.group_by, key[1:], strict=True))
                out.append(
                    CorrelationFiring(self.index, key[0], group, evidence or window, metric or 0.0, (start, end))
                )
            del state.matches[:hi]
            del state.keys[:hi]
            if state.matches:
                state.version += 1
                heapq.heappush(self.deadlines, (state.matches[0].time + span, next(self._tick), key, state.version))
            else:
                del self.groups[key]
        return out

    def prune_idle(self, tenant_watermarks: Mapping[str, float]) -> None:
        """Drop groups whose newest match is older than the timespan (arrival mode)."""
        if self.closed_mode:
            return
        span = self.spec.timespan
        while self.groups:
            key, state = next(iter(self.groups.items()))
            if state.last >= tenant_watermarks.get(key[0], float("-inf")) - span:
                break
            self.groups.popitem(last=False)


def _walk(expr: ir.Expr) -> Iterable[ir.Expr]:
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if e[0] in ("A", "O"):
            stack.extend(e[1])
        elif e[0] == "N":
            stack.append(e[1])


class CorrelationEngine:
    """Runs every correlation rule of a ruleset over the detection matches fed to it."""

    def __init__(
        self,
        specs: Sequence[CorrelationSpec],
        metas: Sequence[RuleMeta],
        max_groups: int = 100_000,
        max_window: int = 10_000,
    ) -> None:
        self.metas = metas
        self.rules = [_Rule(i, s, max_groups, max_window) for i, s in enumerate(specs)]
        self._by_meta: dict[int, list[tuple[_Rule, int]]] = {}
        for rule in self.rules:
            for slot, meta_index in enumerate(rule.spec.rules):
                self._by_meta.setdefault(meta_index, []).append((rule, slot))
        self._meta_of_rule = {r.spec.meta: r for r in self.rules}
        self.watermarks: dict[str, float] = {}
        self._seq = itertools.count()

    @property
    def active(self) -> bool:
        """Whether any correlation rule exists."""
        return bool(self.rules)

    def listens_to(self, meta_index: int) -> bool:
        """Whether matches of rule ``meta_index`` feed some correlation."""
        return meta_index in self._by_meta

    @property
    def stats(self) -> dict[str, int]:
        """Live groups, evicted groups and dropped matches, summed over rules."""
        return {
            "groups": sum(len(r.groups) for r in self.rules),
            "evicted_groups": sum(r.evicted for r in self.rules),
            "dropped_matches": sum(r.dropped for r in self.rules),
        }

    def feed(self, meta_index: int, event: Event) -> list[CorrelationFiring]:
        """Add one detection match of rule ``meta_index`` on ``event``; returns firings."""
        t = event.time.timestamp()
        tenant = event.tenant
        if t > self.watermarks.get(tenant, float("-inf")):
            self.watermarks[tenant] = t
        return self._feed(meta_index, t, (event,), event.fields, tenant)

    def _feed(
        self,
        meta_index: int,
        t: float,
        events: tuple[Event, ...],
        values: Mapping[str, Any],
        tenant: str,
    ) -> list[CorrelationFiring]:
        out: list[CorrelationFiring] = []
        for rule, slot in self._by_meta.get(meta_index, ()):
            group_values = []
            complete = True
            for fieldname in rule.group_fields(meta_index):
                folded = _fold(values.get(fieldname))
                if folded is None:
                    complete = False
                    break
                group_values.append(folded)
            if not complete:
                continue
            vf = rule.value_field(meta_index)
            match = CorrelationMatch(t, next(self._seq), slot, events, {"__value__": values.get(vf) if vf else None})
            key = (tenant, *group_values)
            group = dict(zip(rule.spec.group_by, group_values, strict=True))
            fired = rule.add(key, match, group)
            out.extend(fired)
            for f in fired:
                out.extend(self._chain(f))
        return out

    def _chain(self, firing: CorrelationFiring) -> list[CorrelationFiring]:
        """Feed a firing to correlations that refer to the correlation that fired."""
        meta_index = self.rules[firing.spec].spec.meta
        if meta_index not in self._by_meta:
            return []
        events = tuple(firing.events)
        values: dict[str, Any] = dict(events[-1].fields) if events else {}
        values.update(firing.group)
        return self._feed(meta_index, firing.window[1], events, values, firing.tenant)

    def advance(self, final: bool = False) -> list[CorrelationFiring]:
        """Close windows that event time has passed (all when ``final``) and prune idle groups."""
        out: list[CorrelationFiring] = []
        for rule in self.rules:
            fired = rule.close_due(self.watermarks, final)
            out.extend(fired)
            for f in fired:
                out.extend(self._chain(f))
            rule.prune_idle(self.watermarks)
        return out
