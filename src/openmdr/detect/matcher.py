"""Column-at-a-time rule evaluation: one Hyperscan scan per field per batch.

Rules are grouped by log source.  For each group and field, every string test of every
rule on that field is compiled into one Hyperscan database.  A batch of events is turned
into one buffer per field holding each *distinct* value once, framed by NUL bytes
(``\\x00v1\\x00v2\\x00``), and scanned once; match end offsets map to values
(``numpy.searchsorted`` over the frame positions), values to the rows holding them (a
gather through the row -> value map), and one boolean (pattern x row) matrix packed with
``numpy.packbits`` gives the per-test row bitmasks (Python ints, bit *i* = row *i*).  A
path or call trace repeated over a batch is thus encoded, scanned and reported once.  Each rule
that has a hit on a test that can make it true (or that can be true without any, such as
``not filter``) is then evaluated once over the whole batch with ``&``, ``|`` and ``^``
on those bitmasks, by a Python expression generated for the rule.

Tests Hyperscan cannot express exactly are evaluated per row in Python: regular
expressions are prefiltered by Hyperscan (``HS_FLAG_PREFILTER`` on an anchor-free form)
and confirmed with :mod:`re` only on candidate rows; CIDR, numeric comparisons, ``null``,
``exists``, field references and timestamp parts are computed lazily, only when a rule
that needs them is evaluated, once per distinct value (or pair of values) of a text column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import is_not
from typing import Any

import hyperscan
import numpy as np

from openmdr.detect import ir
from openmdr.detect.compiler import RuleVariant
from openmdr.detect.ir import Test
from openmdr.detect.logsource import Logsource
from openmdr.detect.text import (
    _escape_bytes,
    compile_regex,
    encode_text,
    regex_factors,
    scan_pattern,
    value_texts,
)

_CASELESS = hyperscan.HS_FLAG_CASELESS
#: Low 40 bits of a packed match: the end offset (buffers stay far below 1 TB); the pattern id sits above.
_OFFSET_MASK = (1 << 40) - 1
#: Distinct text values whose per-row test results a lazy test keeps between batches.
_MEMO_LIMIT = 65_536


# ---------------------------------------------------------------------------------------
# bitmask helpers


def mask_from_bools(flags: Sequence[bool]) -> int:
    """Bitmask with bit *i* set where ``flags[i]`` is true."""
    if not flags:
        return 0
    arr = np.fromiter(flags, dtype=bool, count=len(flags))
    return int.from_bytes(np.packbits(arr, bitorder="little").tobytes(), "little")


def rows_of(mask: int) -> list[int]:
    """Row indexes of the set bits of ``mask``, ascending."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _all(*masks: int) -> int:
    m = masks[0]
    for x in masks[1:]:
        m &= x
    return m


def _any(*masks: int) -> int:
    m = 0
    for x in masks:
        m |= x
    return m


# ---------------------------------------------------------------------------------------
# columns

_SIMPLE_OR_NONE = frozenset((str, int, type(None)))
_STR_OR_NONE = frozenset((str, type(None)))


def frame_texts(texts: list[str]) -> bytes:
    """``\\x00t1\\x00t2...\\x00``: the texts as UTF-8, each between NUL bytes, for one scan.

    One ``join`` and one ``encode`` for the common case; texts holding NUL or lone
    surrogates are encoded one by one with :func:`encode_text` (NUL becomes 0x01), so
    the framing NULs are exactly ``len(texts) + 1``.
    """
    try:
        buf = b"\x00" + "\x00".join(texts).encode() + b"\x00"
    except UnicodeEncodeError:
        buf = b""
    if buf.count(0) != len(texts) + 1:
        buf = b"\x00" + b"\x00".join(map(encode_text, texts)) + b"\x00"
    return buf


class _RowValues:
    """Per-row value lists of a keyword column, made on demand (only regex confirmation reads them)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Sequence[Mapping[str, Any]]) -> None:
        self._fields = fields

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, row: int) -> list[Any]:
        return list(self._fields[row].values())


class Column:
    """One field's values over a batch, framed for scanning (built once, shared by groups).

    ``buf`` is ``\\x00chunk\\x00chunk...\\x00``.  A *slot* is one text a row offers: a row's
    value, one item of a list value, or (keyword column) one of the row's field values.
    Columns of ``str``/``int`` values frame each **distinct** value once, so the scanner
    reads and reports a repeated path or call trace once per batch instead of once per
    row; :meth:`row_bits` maps matched chunks back to every row holding them.

    The slot -> chunk and slot -> row maps are built only when a scan has a match
    (``None`` keys: chunk *i* is slot *i*; ``None`` row map: slot *i* is row *i*).
    """

    __slots__ = ("_keys", "_seps", "_slot_chunk", "_slot_counts", "_slot_rows", "_slots", "buf", "count", "values")

    def __init__(
        self,
        values: Sequence[Any],
        texts: list[str],
        *,
        keys: list[Any] | None = None,
        slots: Sequence[Any] | None = None,
        slot_rows: np.ndarray | None = None,
        slot_counts: list[int] | None = None,
    ) -> None:
        self.values = values
        self.count = len(texts)
        self.buf = frame_texts(texts) if texts else b""
        self._keys = keys
        self._slots = slots
        self._slot_rows = slot_rows
        self._slot_counts = slot_counts
        self._seps: np.ndarray | None = None
        self._slot_chunk: np.ndarray | None = None

    @classmethod
    def of_values(cls, values: list[Any]) -> Column:
        """Column of one field from its per-row raw values (``None`` = absent)."""
        types = set(map(type, values))
        if types <= _SIMPLE_OR_NONE:
            return cls._distinct(values, dict.fromkeys(values), types, values)
        flags = list(map(is_not, values, repeat(None)))
        idx = list(compress(range(len(values)), flags))
        texts: list[str] = []
        rows: list[int] = []
        for i in idx:
            ts = value_texts(values[i])
            texts.extend(ts)
            rows.extend([i] * len(ts))
        return cls(values, texts, slot_rows=np.asarray(rows, dtype=np.int64))

    @classmethod
    def _distinct(
        cls,
        values: Sequence[Any],
        uniq: dict[Any, None],
        types: set[type],
        slots: Sequence[Any],
        slot_counts: list[int] | None = None,
    ) -> Column:
        """Column framing each distinct ``str``/``int`` value of ``uniq`` (the slot values) once.

        ``None`` (an absent value) offers no text.
        """
        uniq.pop(None, None)
        keys = list(uniq)
        texts = list(map(str, keys)) if int in types else keys
        return cls(values, texts, keys=keys, slots=slots, slot_counts=slot_counts)

    @classmethod
    def of_rows(cls, fields: Sequence[Mapping[str, Any]]) -> Column:
        """Keyword column: every field value of each row (one slot per value).

        When every row is a dict whose values are strings, integers or null (the common case),
        the column is built from one flattened value list with C-level ``map``/``chain``
        passes, framing each distinct value once; other rows take a per-row loop.
        """
        if all(map(dict.__instancecheck__, fields)):
            flat = list(chain.from_iterable(map(dict.values, fields)))  # type: ignore[arg-type]
            types = set(map(type, flat))
            if types <= _SIMPLE_OR_NONE:
                return cls._distinct(_RowValues(fields), dict.fromkeys(flat), types, flat, list(map(len, fields)))
        texts: list[str] = []
        counts: list[int] = []
        rows_values: list[Any] = []
        for fd in fields:
            vals: list[Any] = []
            for v in fd.values():
                vcls = v.__class__
                if vcls is str or vcls is int:
                    vals.append(v)
                elif v is not None:
                    vals.extend(value_texts(v))
            texts.extend(map(str, vals))
            counts.append(len(vals))
            rows_values.append(vals)
        return cls(rows_values, texts, slot_counts=counts)

    @property
    def seps(self) -> np.ndarray:
        """Byte offsets of the framing NULs (``count + 1`` of them)."""
        if self._seps is None:
            self._seps = np.flatnonzero(np.frombuffer(self.buf, dtype=np.uint8) == 0)
        return self._seps

    @property
    def slot_count(self) -> int:
        """Number of slots (texts the rows offer, repeats included)."""
        if self._slot_counts is not None:
            return sum(self._slot_counts)
        return len(self._slots) if self._slots is not None else self.count

    @property
    def slot_rows(self) -> np.ndarray | None:
        """Row of each slot (``None``: slot *i* is row *i*)."""
        if self._slot_rows is None and self._slot_counts is not None:
            counts = self._slot_counts
            self._slot_rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        return self._slot_rows

    def chunks_for_ends(self, ends: np.ndarray) -> np.ndarray:
        """Chunk of each match end offset (the chunk holding the match's last byte)."""
        chunks = np.searchsorted(self.seps, ends - 1) - 1
        np.maximum(chunks, 0, out=chunks)  # (ufuncs: np.clip costs several times more per call)
        np.minimum(chunks, max(self.count - 1, 0), out=chunks)
        return chunks

    def _slot_chunks(self) -> np.ndarray | None:
        """Chunk of each slot (``count`` for a slot without text); ``None`` when chunk *i* is slot *i*."""
        if self._keys is None:
            return None
        if self._slot_chunk is None:
            slots = self._slots
            assert slots is not None
            index = dict(zip(self._keys, range(self.count), strict=True))
            index[None] = self.count  # an absent value: the column past the last chunk
            self._slot_chunk = np.fromiter(map(index.__getitem__, slots), dtype=np.int64, count=len(slots))
        return self._slot_chunk

    def row_bits(self, hit: np.ndarray, n: int) -> np.ndarray:
        """Rows holding each selected chunk set: ``hit`` is ``(k, count + 1)`` booleans, the result ``(k, n)``.

        A gather through the slot -> chunk map (and, for list values and keyword columns,
        a scatter through the slot -> row map), so the cost is one pass over the slots
        per selected set whatever the number of matched chunks.
        """
        slot_chunks = self._slot_chunks()
        per_slot = np.take(hit, slot_chunks, axis=1) if slot_chunks is not None else hit[:, : self.count]
        slot_rows = self.slot_rows
        if slot_rows is None:
            return per_slot
        bits = np.zeros((hit.shape[0], n), dtype=bool)
        sets, slots = np.nonzero(per_slot)
        bits[sets, slot_rows[slots]] = True
        return bits


#: Cells of the (pattern x row) boolean matrices made at once by :func:`_pattern_masks`.
_MATRIX_CELLS = 1 << 24


def _pattern_masks(col: Column, packed: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``(pattern id, row bitmask)`` of every pattern with a match, from packed ``pid << 40 | end`` matches.

    The matches become a (pattern x chunk) boolean matrix, :meth:`Column.row_bits` turns
    it into (pattern x row), and one ``packbits`` gives the bytes of every bitmask.
    """
    chunks = col.chunks_for_ends(packed & _OFFSET_MASK)
    ids = packed >> 40
    if ids.min() == ids.max():  # one pattern matched (common): no sort
        pid_list, which = [int(ids[0])], np.zeros(len(ids), dtype=np.intp)
    else:
        pids, which = np.unique(ids, return_inverse=True)
        pid_list = pids.tolist()
    width = (n + 7) // 8
    step = max(1, _MATRIX_CELLS // max(n, col.count + 1, col.slot_count, 1))
    from_bytes = int.from_bytes
    out: list[tuple[int, int]] = []
    for first in range(0, len(pid_list), step):
        last = min(first + step, len(pid_list))
        if first == 0 and last == len(pid_list):
            sel_which, sel_chunks = which, chunks
        else:
            keep = (which >= first) & (which < last)
            sel_which, sel_chunks = which[keep] - first, chunks[keep]
        hit = np.zeros((last - first, col.count + 1), dtype=bool)
        hit[sel_which, sel_chunks] = True
        data = np.packbits(col.row_bits(hit, n), axis=1, bitorder="little").tobytes()
        out.extend(
            (pid, from_bytes(data[i * width : (i + 1) * width], "little")) for i, pid in enumerate(pid_list[first:last])
        )
    return out


class Batch:
    """A set of events of one log source being evaluated, with the columns built so far."""

    __slots__ = ("_columns", "_keys", "_presence", "_values", "fields", "full", "n")

    def __init__(self, fields: list[Mapping[str, Any]]) -> None:
        self.fields = fields
        self.n = len(fields)
        self.full = (1 << self.n) - 1
        self._columns: dict[str | None, Column | None] = {}
        self._presence: dict[str, int] = {}
        self._values: dict[str, list[Any]] = {}
        self._keys: set[str] | None = None

    def has_field(self, name: str) -> bool:
        """Whether any row has field ``name``."""
        if self._keys is None:
            self._keys = set().union(*self.fields)
        return name in self._keys

    def values(self, name: str) -> list[Any]:
        """Raw values of field ``name`` per row (``None`` where absent), read once per batch."""
        vals = self._values.get(name)
        if vals is not None:
            return vals
        if not self.has_field(name):
            return [None] * self.n
        try:
            vals = list(map(dict.get, self.fields, repeat(name)))  # type: ignore[arg-type]
        except TypeError:  # fields that are mappings but not dicts
            vals = [fd.get(name) for fd in self.fields]
        self._values[name] = vals
        return vals

    def column(self, name: str | None) -> Column | None:
        """The scan column of field ``name`` (``None``: every value of each row, for keywords)."""
        try:
            return self._columns[name]
        except KeyError:
            pass
        col: Column | None = None
        if name is None:
            col = Column.of_rows(self.fields)
        elif self.has_field(name):
            vals = self.values(name)
            if vals.count(None) != self.n:
                col = Column.of_values(vals)
        if col is not None and col.count == 0:
            col = None
        self._columns[name] = col
        return col

    def presence(self, name: str) -> int:
        """Bitmask of rows where field ``name`` is present and not null."""
        m = self._presence.get(name)
        if m is None:
            m = mask_from_bools(list(map(is_not, self.values(name), repeat(None)))) if self.has_field(name) else 0
            self._presence[name] = m
        return m


# ---------------------------------------------------------------------------------------
# compiled groups


@dataclass(slots=True)
class ScannerSpec:
    """The Hyperscan database of one field in one group (serializable part)."""

    field: str | None
    patterns: list[bytes]
    flags: list[int]
    pattern_tests: list[tuple[int, ...]]  #: pattern id -> local tests it decides (or prefilters)
    db: bytes = b""


@dataclass(slots=True)
class GroupSpec:
    """Rules sharing one log source, compiled for column scanning (serializable part)."""

    logsource: Logsource
    exclude_services: frozenset[str]
    variants: list[int]  #: global variant indexes, in evaluation order
    tests: list[int]  #: local test -> global test index
    scanners: list[ScannerSpec]
    lazy: list[int]  #: local tests evaluated per row in Python
    confirm: list[int]  #: local RE tests whose scan hits (literal factors) are confirmed with re
    positive: list[tuple[int, ...]]  #: local test -> rule positions it can make true
    always: tuple[int, ...]  #: rule positions evaluated whatever the hits
    rule_lazy: list[tuple[int, ...]]  #: rule position -> lazy tests it reads
    source: str  #: generated Python evaluating each rule over bitmasks
    fallbacks: list[str] = field(default_factory=list)  #: notes on tests moved to Python


def _is_scannable(test: Test) -> bool:
    if test.kind == ir.STR:
        return scan_pattern(test.arg[0]) is not None
    return test.kind == ir.RE


def build_group(
    logsource: Logsource,
    exclude: frozenset[str],
    variant_ids: list[int],
    variants: Sequence[RuleVariant],
    tests: Sequence[Test],
    regex_cache: dict[tuple[str, str], frozenset[str] | None],
) -> GroupSpec:
    """Compile the rules ``variant_ids`` (one log source) into a :class:`GroupSpec`."""
    local: dict[int, int] = {}
    for vid in variant_ids:
        for t in ir.iter_tests(variants[vid].expr):
            if t not in local:
                local[t] = len(local)
    global_tests = list(local)
    by_field: dict[str | None, list[tuple[bytes, int, int]]] = {}
    lazy: list[int] = []
    confirm: list[int] = []
    fallbacks: list[str] = []
    for g, li in local.items():
        test = tests[g]
        if test.kind == ir.STR:
            parts, cased = test.arg
            pattern = scan_pattern(parts)
            if pattern is None:
                lazy.append(li)
                continue
            by_field.setdefault(test.field, []).append((pattern, 0 if cased else _CASELESS, li))
        elif test.kind == ir.RE:
            key = test.arg
            if key not in regex_cache:
                regex_cache[key] = regex_factors(*key)
            factors = regex_cache[key]
            if factors is None:
                lazy.append(li)
                fallbacks.append(f"regex evaluated per row (no literal to prefilter on): {test.describe()}")
                continue
            for literal in sorted(factors):
                by_field.setdefault(test.field, []).append((_escape_bytes(encode_text(literal)), _CASELESS, li))
            confirm.append(li)
        else:
            lazy.append(li)
    scanners: list[ScannerSpec] = []
    for name, entries in by_field.items():
        patterns: dict[tuple[bytes, int], list[int]] = {}
        for pattern, flags, li in entries:
            patterns.setdefault((pattern, flags), []).append(li)
        keys = list(patterns)
        spec = ScannerSpec(name, [k[0] for k in keys], [k[1] for k in keys], [tuple(patterns[k]) for k in keys])
        db = hyperscan.Database()
        try:
            db.compile(expressions=spec.patterns, ids=list(range(len(keys))), elements=len(keys), flags=spec.flags)
        except hyperscan.error as exc:  # pragma: no cover - patterns are validated above
            fallbacks.append(f"field {name!r} evaluated per row: {exc}")
            for li_list in spec.pattern_tests:
                for li in li_list:
                    if li in confirm:
                        confirm.remove(li)
                    lazy.append(li)
            continue
        spec.db = hyperscan.dumpb(db)
        scanners.append(spec)

    eager_global = {g for g, li in local.items() if li not in set(lazy)}
    positive: list[list[int]] = [[] for _ in local]
    always: list[int] = []
    rule_lazy: list[tuple[int, ...]] = []
    lazy_set = set(lazy)
    lines = ["def _make(_all, _any):", "    return ("]
    for pos, vid in enumerate(variant_ids):
        v = variants[vid]
        for g in ir.positive_tests(v.expr):
            if g in eager_global:
                positive[local[g]].append(pos)
        if ir.can_be_true_without(v.expr, eager_global):
            always.append(pos)
        rule_lazy.append(tuple(sorted({local[g] for g in ir.iter_tests(v.expr) if local[g] in lazy_set})))
        lines.append(f"        lambda h, F: {ir.expr_source(v.expr, local)},")
    lines.append("    )")
    return GroupSpec(
        logsource=logsource,
        exclude_services=exclude,
        variants=list(variant_ids),
        tests=global_tests,
        scanners=scanners,
        lazy=lazy,
        confirm=confirm,
        positive=[tuple(p) for p in positive],
        always=tuple(always),
        rule_lazy=rule_lazy,
        source="\n".join(lines) + "\n",
        fallbacks=fallbacks,
    )


#: A detection evaluated over bitmasks: ``fn(h, F)`` -> rows where it holds.
DetectionFn = Callable[[list[int], int], int]


class _Scanner:
    """Runtime form of a :class:`ScannerSpec` (the loaded database)."""

    __slots__ = ("db", "field", "pattern_tests")

    def __init__(self, spec: ScannerSpec) -> None:
        self.field = spec.field
        self.pattern_tests = spec.pattern_tests
        self.db = hyperscan.loadb(spec.db, hyperscan.HS_MODE_BLOCK)
        self.db.scratch = hyperscan.Scratch(self.db)


class Group:
    """A compiled rule group ready to evaluate batches."""

    def __init__(self, spec: GroupSpec, tests: Sequence[Test], code: Any | None = None) -> None:
        self.spec = spec
        self.logsource = spec.logsource
        self.exclude_services = spec.exclude_services
        self.variants = spec.variants
        self._tests = [tests[g] for g in spec.tests]
        self._scanners = [_Scanner(s) for s in spec.scanners]
        namespace: dict[str, Any] = {}
        exec(code if code is not None else compile_group_source(spec), namespace)
        self._fns: tuple[Callable[[list[int], int], int], ...] = namespace["_make"](_all, _any)
        self._confirm = set(spec.confirm)
        self._regex: dict[int, re.Pattern[str]] = {li: compile_regex(*self._tests[li].arg) for li in spec.confirm}
        self._lazy_eval: dict[int, Callable[[Batch], int]] = {
            li: self._lazy_evaluator(self._tests[li]) for li in spec.lazy
        }
        self._local: dict[int, int] | None = None
        self._det_fns: dict[int, list[tuple[str, DetectionFn | None]]] = {}

    # -- lazy (per row) tests -------------------------------------------------------------

    def _lazy_evaluator(self, test: Test) -> Callable[[Batch], int]:
        kind = test.kind
        name = test.field
        if kind == ir.NULL:
            return lambda b: b.full ^ b.presence(name)  # type: ignore[arg-type]
        if kind == ir.EXISTS:
            if test.arg:
                return lambda b: b.presence(name)  # type: ignore[arg-type]
            return lambda b: b.full ^ b.presence(name)  # type: ignore[arg-type]
        if kind == ir.FIELDREF and name is not None:
            return self._fieldref_evaluator(test, name)
        if name is None:
            pred = ir.row_predicate(test)
            return lambda b: mask_from_bools([pred(fd) for fd in b.fields])
        vpred = ir.value_predicate(test)
        # Text values repeat across batches (paths, addresses): their results are kept
        # between batches (bounded).  Other values are memoized per batch, keyed with
        # their type so that 1, 1.0 and True (equal as dict keys) stay apart.
        texts: dict[str, bool] = {}

        def per_value(b: Batch) -> int:
            values = b.values(name)  # type: ignore[arg-type]
            if set(map(type, values)) <= _STR_OR_NONE:  # text column: each new distinct text once
                if len(texts) >= _MEMO_LIMIT:
                    texts.clear()
                for v in [v for v in dict.fromkeys(values) if v is not None and v not in texts]:
                    texts[v] = vpred(v)
                return mask_from_bools(list(map(texts.get, values, repeat(False))))
            others: dict[tuple[type, Any], bool] = {}
            flags: list[bool] = []
            add = flags.append
            for v in values:
                if v.__class__ is str:
                    hit = texts.get(v)
                    if hit is None:
                        if len(texts) >= _MEMO_LIMIT:
                            texts.clear()
                        hit = texts[v] = vpred(v)
                    add(hit)
                elif v is None:
                    add(False)
                else:
                    key = (v.__class__, v)
                    try:
                        hit = others.get(key)
                    except TypeError:  # unhashable (list) values
                        add(vpred(v))
                        continue
                    if hit is None:
                        hit = others[key] = vpred(v)
                    add(hit)
            return mask_from_bools(flags)

        return per_value

    @staticmethod
    def _fieldref_evaluator(test: Test, name: str) -> Callable[[Batch], int]:
        """A field-reference test over a batch: evaluated once per distinct pair of values.

        When both fields hold only ``str``/``int`` values (or nothing), the predicate runs
        on each distinct ``(value, other value)`` pair and the results are mapped back to
        the rows with C-level passes; other values are tested row by row.
        """
        pred = ir.row_predicate(test)
        other = test.arg[0]

        def fieldref(b: Batch) -> int:
            mine = b.values(name)
            theirs = b.values(other)
            if set(map(type, mine)) <= _SIMPLE_OR_NONE and set(map(type, theirs)) <= _SIMPLE_OR_NONE:
                pairs = list(zip(mine, theirs, strict=True))
                results = {p: pred({name: p[0], other: p[1]}) for p in dict.fromkeys(pairs)}
                return mask_from_bools(list(map(results.__getitem__, pairs)))
            return mask_from_bools([pred(fd) for fd in b.fields])

        return fieldref

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, batch: Batch) -> list[tuple[int, int]]:
        """``(variant index, row bitmask)`` of every rule of the group that fires on ``batch``."""
        return [(vid, mask) for vid, mask, _ in self.evaluate_explained(batch, False)]

    def _detection_fns(self, pos: int, variant: RuleVariant) -> list[tuple[str, DetectionFn | None]]:
        """Bitmask evaluators of the rule's named detections (``None``: not computable from the rule's tests).

        A detection is computable when every test it reads is one of the rule's own tests
        (a detection the condition does not reference may read tests that were never
        evaluated for this batch); the engine explains the others per row.
        """
        fns = self._det_fns.get(pos)
        if fns is None:
            if self._local is None:
                self._local = {g: li for li, g in enumerate(self.spec.tests)}
            local = self._local
            own = set(ir.iter_tests(variant.expr))
            fns = []
            for name, expr in variant.detections:
                if set(ir.iter_tests(expr)) <= own:
                    code = f"lambda h, F, _all=_all, _any=_any: {ir.expr_source(expr, local)}"
                    fns.append((name, eval(code, {"_all": _all, "_any": _any})))  # generated from the IR
                else:
                    fns.append((name, None))
            self._det_fns[pos] = fns
        return fns

    def evaluate_explained(
        self, batch: Batch, explain: bool, variants: Sequence[RuleVariant] = ()
    ) -> list[tuple[int, int, list[tuple[str, int | None]] | None]]:
        """Like :meth:`evaluate`, plus (when ``explain``) each fired rule's detections as row bitmasks.

        The third item lists ``(detection name, rows where it holds)`` for the rule, or
        ``None`` for a detection the bitmasks cannot decide (see :meth:`_detection_fns`);
        ``variants`` is the ruleset's variant list, needed only when ``explain``.
        """
        spec = self.spec
        n = batch.n
        h = [0] * len(spec.tests)
        hit_tests: list[int] = []
        for sc in self._scanners:
            col = batch.column(sc.field)
            if col is None:
                continue
            found: list[int] = []
            add = found.append

            def on_match(
                pid: int, _from: int, to: int, _flags: int, _ctx: object, add: Callable[[int], None] = add
            ) -> None:
                add(pid << 40 | to)  # one append per match: pattern id and end offset packed

            sc.db.scan(col.buf, match_event_handler=on_match, scratch=sc.db.scratch)
            if not found:
                continue
            pending: dict[int, int] = {}
            for pid, mask in _pattern_masks(col, np.fromiter(found, dtype=np.int64, count=len(found)), n):
                for li in sc.pattern_tests[pid]:
                    if li in self._confirm:
                        pending[li] = pending.get(li, 0) | mask
                        continue
                    if not h[li]:
                        hit_tests.append(li)
                    h[li] |= mask
            for li, mask in pending.items():
                confirmed = self._confirm_regex(li, mask, col.values)
                if confirmed:
                    if not h[li]:
                        hit_tests.append(li)
                    h[li] |= confirmed
        candidates: set[int] = set(spec.always)
        positive = spec.positive
        for li in hit_tests:
            candidates.update(positive[li])
        if not candidates:
            return []
        full = batch.full
        fired: list[tuple[int, int, list[tuple[str, int | None]] | None]] = []
        done_lazy: set[int] = set()
        rule_lazy = spec.rule_lazy
        fns = self._fns
        for pos in sorted(candidates):
            for li in rule_lazy[pos]:
                if li not in done_lazy:
                    h[li] = self._lazy_eval[li](batch)
                    done_lazy.add(li)
            m = fns[pos](h, full)
            if m:
                vid = spec.variants[pos]
                if explain:
                    dets = [
                        (name, fn(h, full) if fn is not None else None)
                        for name, fn in self._detection_fns(pos, variants[vid])
                    ]
                    fired.append((vid, m, dets))
                else:
                    fired.append((vid, m, None))
        return fired

    def _confirm_regex(self, li: int, mask: int, values: Sequence[Any]) -> int:
        rx = self._regex[li]
        keep = 0
        memo: dict[str, bool] = {}
        for r in rows_of(mask):
            for t in value_texts(values[r]):
                hit = memo.get(t)
                if hit is None:
                    hit = memo[t] = rx.search(t) is not None
                if hit:
                    keep |= 1 << r
                    break
        return keep


def compile_group_source(spec: GroupSpec) -> Any:
    """Byte-compile the generated evaluation source of a group (cached by the ruleset)."""
    return compile(spec.source, f"<sigma group {spec.logsource}>", "exec")
