"""The Sigma engine: compile a rule library once, evaluate batches of events into alerts.

>>> library = load_rules(["rules/windows"])                        # doctest: +SKIP
>>> engine = Engine(cache_dir=Path("~/.cache/openmdr").expanduser())  # doctest: +SKIP
>>> ruleset = engine.compile(library)                              # doctest: +SKIP
>>> alerts = engine.evaluate(events)                               # doctest: +SKIP

``compile`` parses with pySigma and builds the Hyperscan databases (cold), or loads the
result from the on-disk cache keyed by the library's content hash (warm).  ``evaluate``
routes each event to the rule groups of its log source, scans each field column once
per group (:mod:`openmdr.detect.matcher`), turns hits into alerts, applies per-tenant
overrides and feeds correlation rules, whose state carries over between calls, so
streaming is repeated ``evaluate`` calls followed by :meth:`Engine.flush` at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import marshal
import operator
import os
import pickle
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from importlib import metadata
from pathlib import Path
from typing import Any

import hyperscan
import numpy as np
import orjson
import pyarrow as pa

from openmdr.detect import ir
from openmdr.detect.alerts import correlation_alert, detection_alert
from openmdr.detect.compiler import CorrelationSpec, RuleMeta, RuleVariant, lower_library
from openmdr.detect.correlation import CorrelationEngine, CorrelationFiring
from openmdr.detect.ir import Test
from openmdr.detect.logsource import EventSource, SourceResolver
from openmdr.detect.matcher import Batch, Group, GroupSpec, build_group, compile_group_source, rows_of
from openmdr.detect.overrides import TenantOverrides
from openmdr.detect.rules import RuleLibrary, RuleProblem, load_rules
from openmdr.gctuning import paused_gc, relaxed_gc
from openmdr.models.alert import Alert
from openmdr.models.event import Event

log = logging.getLogger(__name__)

#: Version of the compiled form; part of the cache key.
COMPILED_FORMAT = 3
#: Events evaluated together (bitmask width); larger inputs are cut into batches this size.
DEFAULT_BATCH = 8192


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover - installed in every deployment
        return "?"


@dataclass(slots=True)
class CompileStats:
    """Figures about one compile."""

    rule_files: int = 0
    documents: int = 0
    rules: int = 0
    correlation_rules: int = 0
    variants: int = 0
    tests: int = 0
    groups: int = 0
    scanners: int = 0
    patterns: int = 0
    row_tests: int = 0
    problems: int = 0
    seconds: float = 0.0
    from_cache: bool = False


class CompiledRuleset:
    """A compiled library: rule metadata, rule variants, tests and the per-log-source groups."""

    def __init__(
        self,
        metas: list[RuleMeta],
        variants: list[RuleVariant],
        tests: list[Test],
        correlations: list[CorrelationSpec],
        problems: list[RuleProblem],
        group_specs: list[GroupSpec],
        content_hash: str,
        stats: CompileStats,
        codes: list[Any] | None = None,
    ) -> None:
        self.metas = metas
        self.variants = variants
        self.tests = tests
        self.correlations = correlations
        self.problems = problems
        self.group_specs = group_specs
        self.content_hash = content_hash
        self.stats = stats
        self._codes = codes or [compile_group_source(g) for g in group_specs]
        self.groups = [Group(spec, tests, code) for spec, code in zip(group_specs, self._codes, strict=True)]
        self._routes: dict[EventSource, list[Group]] = {}
        silent = {m for c in correlations if not c.generate for m in c.rules}
        self.silent_metas = frozenset(silent)
        products = {g.logsource[0] for g in self.groups}
        #: Products some rule group names (``None`` in it: a group applies to every product).
        self.products: frozenset[str | None] = frozenset(products)

    def may_apply(self, product: str | None) -> bool:
        """Whether some rule group can apply to an event whose parser-given product is ``product``.

        A given product is kept by :func:`~openmdr.detect.logsource.derive_source` (only an
        absent one is inferred from the event's fields), so ``False`` is final whatever
        the event's fields hold.
        """
        return not product or None in self.products or product.lower() in self.products

    def groups_for(self, source: EventSource) -> list[Group]:
        """The rule groups whose log source matches ``source`` (memoized)."""
        groups = self._routes.get(source)
        if groups is None:
            groups = [g for g in self.groups if source.matches(g.logsource, g.exclude_services)]
            self._routes[source] = groups
        return groups

    @property
    def unsupported(self) -> list[RuleProblem]:
        """Every rule file or rule that is not evaluated, with the reason."""
        return list(self.problems)

    def meta_by_id(self, rule_id: str) -> RuleMeta | None:
        """Metadata of the rule with id (or name) ``rule_id``."""
        for m in self.metas:
            if m.id == rule_id or m.name == rule_id:
                return m
        return None

    # -- cache ------------------------------------------------------------------------------

    def dumps(self) -> bytes:
        """Serialized form for the compile cache (pickle + marshalled group code)."""
        payload = {
            "format": COMPILED_FORMAT,
            "python": sys.version,
            "metas": self.metas,
            "variants": self.variants,
            "tests": self.tests,
            "correlations": self.correlations,
            "problems": self.problems,
            "groups": self.group_specs,
            "hash": self.content_hash,
            "stats": asdict(self.stats),
            "codes": [marshal.dumps(c) for c in self._codes],
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> CompiledRuleset:
        """Inverse of :meth:`dumps`; raises ``ValueError`` for a stale or foreign cache entry."""
        payload = pickle.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != COMPILED_FORMAT:
            raise ValueError("compiled ruleset has another format version")
        if payload.get("python") != sys.version:
            raise ValueError("compiled ruleset was written by another Python")
        stats = CompileStats(**payload["stats"])
        return cls(
            payload["metas"],
            payload["variants"],
            payload["tests"],
            payload["correlations"],
            payload["problems"],
            payload["groups"],
            payload["hash"],
            stats,
            [marshal.loads(c) for c in payload["codes"]],
        )


def compile_library(
    library: RuleLibrary,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    audit_variants: bool = True,
) -> CompiledRuleset:
    """Compile ``library`` from scratch (no cache)."""
    t0 = time.perf_counter()
    lowered = lower_library(library, placeholders, audit_variants)
    buckets: dict[tuple[Any, ...], list[int]] = {}
    for vid, v in enumerate(lowered.variants):
        buckets.setdefault((v.logsource, v.exclude_services), []).append(vid)
    regex_cache: dict[tuple[str, str], Any] = {}
    specs = [
        build_group(ls, exclude, vids, lowered.variants, lowered.tests, regex_cache)
        for (ls, exclude), vids in sorted(buckets.items(), key=lambda kv: repr(kv[0]))
    ]
    stats = CompileStats(
        rule_files=lowered.rule_files,
        documents=lowered.documents,
        rules=sum(1 for m in lowered.metas if m.kind == "detection"),
        correlation_rules=len(lowered.correlations),
        variants=len(lowered.variants),
        tests=len(lowered.tests),
        groups=len(specs),
        scanners=sum(len(s.scanners) for s in specs),
        patterns=sum(len(sc.patterns) for s in specs for sc in s.scanners),
        row_tests=sum(len(s.lazy) for s in specs),
        problems=len(lowered.problems),
    )
    ruleset = CompiledRuleset(
        lowered.metas,
        lowered.variants,
        lowered.tests,
        lowered.correlations,
        lowered.problems,
        specs,
        library.content_hash,
        stats,
    )
    stats.seconds = time.perf_counter() - t0
    return ruleset


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/openmdr/sigma`` (or ``~/.cache/openmdr/sigma``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openmdr" / "sigma"


class Engine:
    """Evaluates events against a compiled Sigma ruleset, with per-tenant overrides.

    ``cache_dir`` enables the compile cache (``None``: always compile).  ``overrides``
    maps tenant -> :class:`TenantOverrides`.  ``placeholders`` gives value lists for
    ``|expand`` placeholders (``%name%``).  ``explain`` adds the names of the matching
    detections to each alert.  ``max_correlation_groups`` and ``max_correlation_window``
    bound correlation state.
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        overrides: Mapping[str, TenantOverrides] | None = None,
        placeholders: Mapping[str, Sequence[str]] | None = None,
        batch_size: int = DEFAULT_BATCH,
        explain: bool = True,
        max_correlation_groups: int = 100_000,
        max_correlation_window: int = 10_000,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.overrides: dict[str, TenantOverrides] = dict(overrides or {})
        self.placeholders = {k: list(v) for k, v in (placeholders or {}).items()}
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.explain = explain
        self.max_correlation_groups = max_correlation_groups
        self.max_correlation_window = max_correlation_window
        self.ruleset: CompiledRuleset | None = None
        self._resolver = SourceResolver()
        self._correlation: CorrelationEngine | None = None
        self._predicates: dict[int, Any] = {}
        self.events_seen = 0

    # -- compile ------------------------------------------------------------------------

    def cache_key(self, library: RuleLibrary) -> str:
        """Cache key: library content, engine format, library versions and options."""
        h = hashlib.sha256()
        for part in (
            library.content_hash,
            str(COMPILED_FORMAT),
            sys.version,
            _version("pySigma"),
            _version("pysigma-pipeline-windows"),
            _version("pysigma-pipeline-sysmon"),
            hyperscan.__version__,
            repr(sorted(self.placeholders.items())),
        ):
            h.update(part.encode())
            h.update(b"\x00")
        return h.hexdigest()

    def compile(self, rules: RuleLibrary | Iterable[str | Path]) -> CompiledRuleset:
        """Compile (or load from cache) a library and make it the engine's ruleset."""
        with paused_gc():  # the ruleset is one large acyclic structure that lives on (see openmdr.gctuning)
            return self._compile(rules)

    def _compile(self, rules: RuleLibrary | Iterable[str | Path]) -> CompiledRuleset:
        library = rules if isinstance(rules, RuleLibrary) else load_rules(rules)
        t0 = time.perf_counter()
        ruleset: CompiledRuleset | None = None
        path: Path | None = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"ruleset-{self.cache_key(library)}.bin"
            if path.is_file():
                try:
                    ruleset = CompiledRuleset.loads(path.read_bytes())
                    ruleset.stats.from_cache = True
                    ruleset.stats.seconds = time.perf_counter() - t0
                except (ValueError, pickle.UnpicklingError, EOFError, OSError, hyperscan.error) as exc:
                    log.warning("ignoring unusable compiled-rules cache %s: %s", path, exc)
                    ruleset = None
        if ruleset is None:
            ruleset = compile_library(library, self.placeholders)
            if path is not None:
                self._write_cache(path, ruleset.dumps())
        self.load(ruleset)
        return ruleset

    @staticmethod
    def _write_cache(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ruleset-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write compiled-rules cache %s: %s", path, exc)

    def load(self, ruleset: CompiledRuleset) -> None:
        """Use an already compiled ruleset (resets correlation state)."""
        self.ruleset = ruleset
        self._predicates = {}
        self._correlation = CorrelationEngine(
            ruleset.correlations, ruleset.metas, self.max_correlation_groups, self.max_correlation_window
        )

    def set_overrides(self, tenant: str, overrides: TenantOverrides | None) -> None:
        """Install (or with ``None`` remove) the overrides of one tenant."""
        if overrides is None:
            self.overrides.pop(tenant, None)
        else:
            self.overrides[tenant] = overrides

    # -- evaluation -----------------------------------------------------------------------

    def _require(self) -> CompiledRuleset:
        if self.ruleset is None:
            raise RuntimeError("no ruleset: call Engine.compile() or Engine.load() first")
        return self.ruleset

    def match(self, events: Sequence[Event]) -> list[tuple[int, int]]:
        """Raw hits ``(event index, variant index)`` of ``events``, ordered by event then rule.

        This is the detection core without alerts, overrides or correlation; tests and
        benchmarks use it to compare with other evaluators.
        """
        fields, sources = self._event_rows(events)
        return self.match_rows(fields, sources)

    def _event_rows(self, events: Sequence[Event]) -> tuple[list[dict[str, Any]], list[EventSource]]:
        """The field mappings and log sources of ``events``, read with C-level attribute fetches."""
        products, services, categories, fields = (list(map(get, events)) for get in _ROUTING_ATTRS)
        return fields, self._resolver.resolve_many(products, services, categories, fields)

    def match_rows(self, fields: Sequence[Mapping[str, Any]], sources: Sequence[EventSource]) -> list[tuple[int, int]]:
        """Raw hits ``(row, variant index)`` of rows given as field mappings and their log sources."""
        return self._match_rows(fields, sources, False)[0]

    def _match_rows(
        self, fields: Sequence[Mapping[str, Any]], sources: Sequence[EventSource], explain: bool
    ) -> tuple[list[tuple[int, int]], dict[tuple[int, int], tuple[list[tuple[str, int | None]], int]]]:
        """Hits as :meth:`match_rows`, and (when ``explain``) for each hit its rule's detections as bitmasks and bit."""
        ruleset = self._require()
        variants = ruleset.variants
        hits: list[tuple[int, int]] = []
        explained: dict[tuple[int, int], tuple[list[tuple[str, int | None]], int]] = {}
        for start in range(0, len(fields), self.batch_size):
            stop = min(start + self.batch_size, len(fields))
            for src, idx in _buckets(sources, start, stop):
                groups = ruleset.groups_for(src)
                if not groups:
                    continue
                batch = Batch(list(map(fields.__getitem__, idx)))
                for group in groups:
                    for vid, mask, dets in group.evaluate_explained(batch, explain, variants):
                        rows = rows_of(mask)
                        if dets is None:
                            hits.extend((idx[r], vid) for r in rows)
                            continue
                        for r in rows:
                            hits.append((idx[r], vid))
                            explained[(idx[r], vid)] = (dets, r)
        hits.sort()
        return hits, explained

    def _predicate(self, test_index: int) -> Any:
        pred = self._predicates.get(test_index)
        if pred is None:
            pred = self._predicates[test_index] = ir.row_predicate(self._require().tests[test_index])
        return pred

    def explain_match(self, variant: RuleVariant, event: Event) -> list[str]:
        """Names of the rule's detections that hold for ``event`` (why the rule fired)."""
        fields = event.fields
        names = []
        for name, expr in variant.detections:
            if ir.eval_expr(expr, lambda t: self._predicate(t)(fields)):
                names.append(name)
        return names

    def evaluate(self, events: Sequence[Event]) -> list[Alert]:
        """Alerts for a batch of events (correlation state carries over to the next call)."""
        self.events_seen += len(events)
        fields, sources = self._event_rows(events)
        hits, explained = self._match_rows(fields, sources, self.explain)
        return self._alerts(hits, events.__getitem__, explained)

    def evaluate_table(self, table: pa.Table) -> list[Alert]:
        """Alerts for a batch in the lake's Arrow layout (``EVENT_SCHEMA``), without building every event.

        Only ``fields`` and the log-source columns are read for matching (the JSON is
        parsed straight from the Arrow buffers); :class:`Event` objects are rebuilt for
        the matching rows alone, column by column, reusing their parsed fields.  Same
        alerts as ``evaluate(table_to_events(table))``, several times faster for a
        typical hit rate.
        """
        ruleset = self._require()
        products = table.column("product").to_pylist()
        fields = decode_fields(table.column("fields"), list(map(ruleset.may_apply, products)))
        sources = self._resolver.resolve_many(
            products, table.column("service").to_pylist(), table.column("category").to_pylist(), fields
        )
        self.events_seen += table.num_rows
        hits, explained = self._match_rows(fields, sources, self.explain)
        rows = sorted({i for i, _ in hits})
        by_row = dict(zip(rows, events_of_rows(table, rows, fields), strict=True))
        return self._alerts(hits, by_row.__getitem__, explained)

    def _explanation(
        self,
        variant: RuleVariant,
        event: Event,
        explained: tuple[list[tuple[str, int | None]], int] | None,
    ) -> list[str]:
        """Names of the detections that hold for the hit: read off the batch's bitmasks, else per row."""
        if explained is None:
            return self.explain_match(variant, event)
        dets, bit = explained
        if any(mask is None for _, mask in dets):
            return self.explain_match(variant, event)
        return [name for name, mask in dets if mask is not None and (mask >> bit) & 1]

    def _alerts(
        self,
        hits: list[tuple[int, int]],
        event_at: Callable[[int], Event],
        explained: Mapping[tuple[int, int], tuple[list[tuple[str, int | None]], int]] | None = None,
    ) -> list[Alert]:
        """Alerts (after tenant overrides) and correlation firings for raw ``hits``."""
        explained = explained or {}
        ruleset = self._require()
        correlation = self._correlation
        assert correlation is not None
        alerts: list[Alert] = []
        for event_index, vid in hits:
            variant = ruleset.variants[vid]
            meta = ruleset.metas[variant.meta]
            event = event_at(event_index)
            ov = self.overrides.get(event.tenant)
            if ov is not None:
                if not ov.enabled(meta):
                    continue
                if any(not exc.keeps(event.fields) for exc in ov.exceptions_for(meta)):
                    continue
                severity = ov.severity_for(meta)
            else:
                severity = meta.level
            if variant.generate and variant.meta not in ruleset.silent_metas:
                matched = self._explanation(variant, event, explained.get((event_index, vid))) if self.explain else []
                alerts.append(detection_alert(meta, event, severity, matched, variant.variant))
            if correlation.active and correlation.listens_to(variant.meta):
                for firing in correlation.feed(variant.meta, event):
                    alert = self._correlation_alert(firing)
                    if alert is not None:
                        alerts.append(alert)
        if correlation.active:
            for firing in correlation.advance():
                alert = self._correlation_alert(firing)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def flush(self) -> list[Alert]:
        """End of stream: evaluate every open correlation window."""
        if self._correlation is None:
            return []
        return [a for f in self._correlation.advance(final=True) if (a := self._correlation_alert(f))]

    def _correlation_alert(self, firing: CorrelationFiring) -> Alert | None:
        ruleset = self._require()
        spec = ruleset.correlations[firing.spec]
        meta = ruleset.metas[spec.meta]
        if spec.meta in ruleset.silent_metas:
            return None
        ov = self.overrides.get(firing.tenant)
        severity = meta.level
        if ov is not None:
            if not ov.enabled(meta):
                return None
            severity = ov.severity_for(meta)
        events = firing.events
        if not events:
            return None
        referenced = [ruleset.metas[m].id for m in spec.rules]
        details = {
            "correlation_type": spec.type,
            "group": dict(firing.group),
            "metric": firing.metric,
            "window_start": firing.window[0],
            "window_end": firing.window[1],
            "timespan_seconds": spec.timespan,
            "correlated_rules": referenced,
        }
        condition = " and ".join(f"{op} {value:g}" for op, value in spec.conditions) or "condition"
        group_text = ", ".join(f"{k}={v}" for k, v in firing.group.items()) or "all events"
        explanation = f"{spec.type} = {firing.metric:g} ({condition}) within {spec.timespan:g}s for {group_text}"
        return correlation_alert(meta, firing.tenant, events, severity, details, explanation)

    @property
    def correlation_stats(self) -> dict[str, int]:
        """Correlation state size and the evictions/drops its bounds caused."""
        return self._correlation.stats if self._correlation is not None else {}


#: The attributes routing reads from each event: its log source and its fields.
_ROUTING_ATTRS = tuple(map(operator.attrgetter, ("product", "service", "category", "fields")))
#: The fields of :class:`Event` its constructor takes, in the order of its parameters.
_EVENT_FIELDS = tuple(f for f in dataclass_fields(Event) if f.init)


def _buckets(sources: Sequence[EventSource], start: int, stop: int) -> list[tuple[EventSource, list[int]]]:
    """Rows ``start..stop`` grouped by log source object, in first-seen order; rows ascending within a group.

    Each row gets the position of its source's first row (``dict.setdefault`` over
    ``map``, keyed by identity: :class:`SourceResolver` returns one object per distinct
    source, and two equal objects only make two groups evaluated alike), and one stable
    ``argsort`` of those codes gives every group's rows.
    """
    part = sources[start:stop]
    first: dict[int, int] = {}
    codes = np.fromiter(map(first.setdefault, map(id, part), itertools.count()), dtype=np.int64, count=len(part))
    if len(first) == 1:
        return [(part[0], list(range(start, stop)))]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    cuts = (np.flatnonzero(np.diff(sorted_codes)) + 1).tolist()
    rows = (order + start).tolist()
    bounds = [0, *cuts, len(rows)]
    return [(part[rows[a] - start], rows[a:b]) for a, b in itertools.pairwise(bounds)]


def decode_fields(column: pa.ChunkedArray | pa.Array, wanted: Sequence[bool] | None = None) -> list[dict[str, Any]]:
    """The parsed ``fields`` JSON of every row of a lake column (``{}`` for a null or empty value).

    orjson parses UTF-8 bytes, so each row is read as a slice of the Arrow data buffer
    (no ``str`` per row); columns of another type, or with nulls, go through ``to_pylist``.
    Rows where ``wanted`` is false are not parsed and get ``{}`` (rows no rule can apply to).
    """
    loads = orjson.loads
    out: list[dict[str, Any]] = []
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if wanted is not None and all(wanted):
        wanted = None
    for chunk in chunks:
        want = None if wanted is None else wanted[len(out) : len(out) + len(chunk)]
        offsets_type = _OFFSET_TYPES.get(chunk.type)
        texts: Iterable[Any]
        if offsets_type is None or chunk.null_count:
            texts = chunk.to_pylist()
        else:
            _validity, offsets_buf, data_buf = chunk.buffers()
            start = chunk.offset
            bounds = np.frombuffer(offsets_buf, dtype=offsets_type)[start : start + len(chunk) + 1].tolist()
            data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
            texts = map(data.__getitem__, itertools.starmap(slice, itertools.pairwise(bounds)))
        if want is None:
            out.extend([loads(text) if text else {} for text in texts])
        else:
            out.extend([loads(text) if w and text else {} for text, w in zip(texts, want, strict=True)])
    return out


#: Arrow text types whose buffers :func:`decode_fields` reads directly, with their offset width.
_OFFSET_TYPES: dict[pa.DataType, type] = {
    pa.string(): np.int32,
    pa.binary(): np.int32,
    pa.large_string(): np.int64,
    pa.large_binary(): np.int64,
}


def events_of_rows(table: pa.Table, rows: list[int], fields: Sequence[dict[str, Any]]) -> list[Event]:
    """The :class:`Event` of each of ``rows`` of a lake table, given every row's parsed ``fields``.

    Equal to ``table_to_events(table.take(rows))``: the other columns are taken and
    converted column by column, the already parsed fields are reused, and the events
    are built positionally by one ``map`` over the columns in the constructor's order.
    """
    if not rows:
        return []
    present = set(table.column_names)
    names = [f.name for f in _EVENT_FIELDS if f.name in present and f.name != "fields"]
    taken = table.select(names).take(rows)
    columns: dict[str, Iterable[Any]] = {n: taken.column(n).to_pylist() for n in names}
    columns["fields"] = list(map(fields.__getitem__, rows))
    args: list[Iterable[Any]] = []
    for f in _EVENT_FIELDS:
        column = columns.get(f.name)
        if column is None:
            if f.default_factory is not MISSING:
                column = [f.default_factory() for _ in rows]
            elif f.default is not MISSING:
                column = itertools.repeat(f.default)
            else:
                raise TypeError(f"the table has no column {f.name!r}, which an event requires")
        args.append(column)
    return list(map(Event, *args))


@contextlib.contextmanager
def scan_events(engine: Engine, events_iter: Iterable[Event], batch_size: int = DEFAULT_BATCH) -> Iterator[Alert]:
    """Evaluate a stream of events in batches, yielding alerts; flushes correlations at the end."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: list[Event] = []
    with relaxed_gc():
        for ev in events_iter:
            batch.append(ev)
            if len(batch) >= batch_size:
                yield from engine.evaluate(batch)
                batch = []
        if batch:
            yield from engine.evaluate(batch)
        yield from engine.flush()


@dataclass(slots=True)
class RuleCheckReport:
    """What a library holds and what of it the engine can evaluate."""

    rule_files: int
    documents: int
    rules: int
    correlation_rules: int
    evaluable: int
    by_outcome: dict[str, int]
    by_status: dict[str, int]
    by_level: dict[str, int]
    by_product: dict[str, int]
    problems: list[RuleProblem] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  #: (rule id, note)
    row_evaluated_tests: list[str] = field(default_factory=list)
    compile_seconds: float = 0.0
    from_cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``openmdr rules check --json``)."""
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        return data


def check_rules(library: RuleLibrary, engine: Engine | None = None) -> RuleCheckReport:
    """Compile ``library`` (through ``engine``'s cache if given) and report on every rule."""
    engine = engine or Engine()
    ruleset = engine.compile(library)
    detections = [m for m in ruleset.metas if m.kind == "detection"]
    evaluable = len(detections) + len(ruleset.correlations)
    outcomes: Counter[str] = Counter({"evaluable": evaluable})
    for p in ruleset.problems:
        outcomes[p.status] += 1
    notes = [(m.id, n) for m in ruleset.metas for n in m.notes]
    fallbacks = sorted({note for g in ruleset.group_specs for note in g.fallbacks})
    return RuleCheckReport(
        rule_files=ruleset.stats.rule_files,
        documents=ruleset.stats.documents,
        rules=len(detections),
        correlation_rules=len(ruleset.correlations),
        evaluable=evaluable,
        by_outcome=dict(outcomes),
        by_status=dict(Counter(m.status or "none" for m in ruleset.metas)),
        by_level=dict(Counter(m.level for m in ruleset.metas)),
        by_product=dict(Counter(m.logsource[0] or "any" for m in detections)),
        problems=list(ruleset.problems),
        notes=notes,
        row_evaluated_tests=fallbacks,
        compile_seconds=ruleset.stats.seconds,
        from_cache=ruleset.stats.from_cache,
    )
