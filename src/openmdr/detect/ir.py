"""The engine's own form of a Sigma detection: primitive tests and boolean expressions.

pySigma parses a rule and applies its modifiers; the compiler then lowers the condition
tree to this small, picklable form:

* a :class:`Test` is one primitive check of one field (or of every field, for keyword
  searches): a string pattern, a regular expression, a CIDR range, a numeric comparison,
  ``null``, ``exists``, a field reference or a timestamp part;
* an expression is a nested tuple: ``("T", i)`` test *i*, ``("A", children)`` AND,
  ``("O", children)`` OR, ``("N", child)`` NOT, ``("C", bool)`` constant.

Tests are shared by every rule of a ruleset (one ``CommandLine|contains: ' -enc '`` is
scanned once however many rules use it).  :func:`row_predicate` gives the per-row meaning
of every test; the column scanner in :mod:`openmdr.detect.matcher` must agree with it,
and the tests check that they do.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from openmdr.detect.text import (
    Parts,
    compile_parts,
    compile_regex,
    match_parts,
    parts_display,
    value_texts,
)

# Test kinds
STR = "str"  #: string/wildcard pattern (arg: (parts, cased))
RE = "re"  #: regular expression (arg: (pattern, flags))
CIDR = "cidr"  #: IP network membership (arg: network text)
CMP = "cmp"  #: numeric comparison (arg: (op, number)); op in lt lte gt gte neq
NULL = "null"  #: field absent or null (arg: None)
EXISTS = "exists"  #: field present (arg: bool expected)
FIELDREF = "fieldref"  #: compare with another field (arg: (field, startswith, endswith))
TSPART = "tspart"  #: part of a timestamp value (arg: (part, number))

Expr = tuple[Any, ...]
TRUE: Expr = ("C", True)
FALSE: Expr = ("C", False)


@dataclass(frozen=True, slots=True)
class Test:
    """One primitive check; ``field`` is ``None`` for a keyword search over every field."""

    kind: str
    field: str | None
    arg: Any

    def describe(self) -> str:
        """Sigma-like notation, used in explanations and reports."""
        name = self.field if self.field is not None else "<keyword>"
        if self.kind == STR:
            parts, cased = self.arg
            return f"{name}{'|cased' if cased else ''}: {parts_display(parts)!r}"
        if self.kind == RE:
            return f"{name}|re{'|' + '|'.join(self.arg[1]) if self.arg[1] else ''}: {self.arg[0]!r}"
        if self.kind == CMP:
            return f"{name}|{self.arg[0]}: {self.arg[1]}"
        if self.kind == FIELDREF:
            return f"{name}|fieldref: {self.arg[0]}"
        if self.kind == TSPART:
            return f"{name}|{self.arg[0]}: {self.arg[1]}"
        return f"{name}|{self.kind}: {self.arg}"


def atom(index: int) -> Expr:
    """Expression node for test ``index``."""
    return ("T", index)


def make_and(children: list[Expr]) -> Expr:
    """AND of ``children``, flattened and with constants folded."""
    out: list[Expr] = []
    for c in children:
        if c[0] == "C":
            if not c[1]:
                return FALSE
            continue
        if c[0] == "A":
            out.extend(c[1])
        else:
            out.append(c)
    if not out:
        return TRUE
    if len(out) == 1:
        return out[0]
    return ("A", tuple(out))


def make_or(children: list[Expr]) -> Expr:
    """OR of ``children``, flattened and with constants folded."""
    out: list[Expr] = []
    for c in children:
        if c[0] == "C":
            if c[1]:
                return TRUE
            continue
        if c[0] == "O":
            out.extend(c[1])
        else:
            out.append(c)
    if not out:
        return FALSE
    if len(out) == 1:
        return out[0]
    # drop duplicate branches (lists of values often repeat)
    seen: dict[Expr, None] = {}
    for c in out:
        seen.setdefault(c, None)
    out = list(seen)
    return ("O", tuple(out)) if len(out) > 1 else out[0]


def make_not(child: Expr) -> Expr:
    """NOT of ``child`` (double negation and constants simplified)."""
    if child[0] == "C":
        return ("C", not child[1])
    if child[0] == "N":
        return child[1]
    return ("N", child)


def iter_tests(expr: Expr) -> Iterator[int]:
    """Every test index used in ``expr`` (with repetitions)."""
    stack = [expr]
    while stack:
        e = stack.pop()
        tag = e[0]
        if tag == "T":
            yield e[1]
        elif tag in ("A", "O"):
            stack.extend(e[1])
        elif tag == "N":
            stack.append(e[1])


def positive_tests(expr: Expr, negated: bool = False) -> set[int]:
    """Tests that occur under an even number of NOTs (those that can make the rule true)."""
    out: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(expr, negated)]
    while stack:
        e, neg = stack.pop()
        tag = e[0]
        if tag == "T":
            if not neg:
                out.add(e[1])
        elif tag in ("A", "O"):
            stack.extend((c, neg) for c in e[1])
        elif tag == "N":
            stack.append((e[1], not neg))
    return out


def can_be_true_without(expr: Expr, absent: set[int]) -> bool:
    """Whether ``expr`` can be true on a row where every test in ``absent`` is false.

    Used to decide which rules must be evaluated although none of their scanned tests hit:
    ``not filter`` can, ``selection and not filter`` cannot.  The answer over-approximates
    (a test occurring with both polarities is treated as free), which is the safe side.
    """

    def hi(e: Expr) -> bool:
        tag = e[0]
        if tag == "T":
            return e[1] not in absent
        if tag == "A":
            return all(hi(c) for c in e[1])
        if tag == "O":
            return any(hi(c) for c in e[1])
        if tag == "N":
            return not lo(e[1])
        return bool(e[1])

    def lo(e: Expr) -> bool:
        tag = e[0]
        if tag == "T":
            return False
        if tag == "A":
            return all(lo(c) for c in e[1])
        if tag == "O":
            return any(lo(c) for c in e[1])
        if tag == "N":
            return not hi(e[1])
        return bool(e[1])

    return hi(expr)


def eval_expr(expr: Expr, truth: Callable[[int], bool]) -> bool:
    """Evaluate ``expr`` for one row given the truth of each test."""
    tag = expr[0]
    if tag == "T":
        return truth(expr[1])
    if tag == "A":
        return all(eval_expr(c, truth) for c in expr[1])
    if tag == "O":
        return any(eval_expr(c, truth) for c in expr[1])
    if tag == "N":
        return not eval_expr(expr[1], truth)
    return bool(expr[1])


def expr_source(expr: Expr, local: Mapping[int, int]) -> str:
    """Python source evaluating ``expr`` over row bitmasks.

    ``h[i]`` is the bitmask of rows where local test *i* holds and ``F`` the mask of all
    rows; AND/OR/NOT become ``&``/``|``/``F ^``.  Long operand lists call the helpers
    ``_all``/``_any`` so that the compiler never meets a deeply nested expression.
    """
    tag = expr[0]
    if tag == "T":
        return f"h[{local[expr[1]]}]"
    if tag == "C":
        return "F" if expr[1] else "0"
    if tag == "N":
        return f"(F ^ {expr_source(expr[1], local)})"
    parts = [expr_source(c, local) for c in expr[1]]
    if len(parts) > 24:
        return ("_all(" if tag == "A" else "_any(") + ", ".join(parts) + ")"
    return "(" + (" & " if tag == "A" else " | ").join(parts) + ")"


# ---------------------------------------------------------------------------------------
# per-row meaning of each test


def _cmp(op: str, a: float, b: float) -> bool:
    if op == "lt":
        return a < b
    if op == "lte":
        return a <= b
    if op == "gt":
        return a > b
    if op == "gte":
        return a >= b
    return a != b  # neq


def number_of(value: Any) -> float | None:
    """Numeric reading of a field value (int, float or numeric text), else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            try:
                f = float(int(value.strip(), 0))
            except ValueError:
                return None
    else:
        return None
    return f if not math.isnan(f) else None


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def ip_in_network(text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether ``text`` is an IP address inside ``network`` (IPv4-mapped IPv6 counts as IPv4)."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    if addr.version != network.version:
        if addr.version == 6 and addr.ipv4_mapped is not None:  # type: ignore[union-attr]
            addr = addr.ipv4_mapped  # type: ignore[union-attr]
        else:
            return False
    return addr in network


def timestamp_of(value: Any) -> datetime | None:
    """Timestamp reading of a field value (datetime, ISO 8601 text or epoch seconds)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return None


def timestamp_part(dt: datetime, part: str) -> int:
    """Minute, hour, day (of month), ISO week, month or year of ``dt``."""
    if part == "minute":
        return dt.minute
    if part == "hour":
        return dt.hour
    if part == "day":
        return dt.day
    if part == "week":
        return dt.isocalendar()[1]
    if part == "month":
        return dt.month
    return dt.year


def _ascii_fold(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").lower()


def value_predicate(test: Test) -> Callable[[Any], bool]:
    """Per-value predicate of a field test (not for NULL/EXISTS/FIELDREF, which need the row)."""
    kind = test.kind
    if kind == STR:
        parts, cased = test.arg
        matcher = compile_parts(parts, cased)
        return lambda v: match_parts(matcher, value_texts(v))
    if kind == RE:
        rx = compile_regex(*test.arg)
        return lambda v: any(rx.search(t) is not None for t in value_texts(v))
    if kind == CIDR:
        net = _network(test.arg)
        return lambda v: any(ip_in_network(t, net) for t in value_texts(v))
    if kind == CMP:
        op, number = test.arg

        def compare(v: Any) -> bool:
            items = v if isinstance(v, list | tuple) else (v,)
            for item in items:
                x = number_of(item)
                if x is not None and _cmp(op, x, number):
                    return True
            return False

        return compare
    if kind == TSPART:
        part, number = test.arg

        def ts_part(v: Any) -> bool:
            dt = timestamp_of(v)
            return dt is not None and timestamp_part(dt, part) == number

        return ts_part
    raise ValueError(f"test kind {kind!r} has no per-value predicate")


def row_predicate(test: Test) -> Callable[[Mapping[str, Any]], bool]:
    """The per-row meaning of ``test`` over an event's ``fields`` mapping.

    A test on an absent (or null) field is false, except ``null`` and ``exists: false``;
    a keyword test (``field is None``) holds when any field value satisfies it.
    """
    field = test.field
    kind = test.kind
    if kind == NULL:
        return lambda row: row.get(field) is None  # type: ignore[arg-type]
    if kind == EXISTS:
        want = bool(test.arg)
        return lambda row: (row.get(field) is not None) == want  # type: ignore[arg-type]
    if kind == FIELDREF:
        other, startswith, endswith = test.arg

        def fieldref(row: Mapping[str, Any]) -> bool:
            mine = value_texts(row.get(field))  # type: ignore[arg-type]
            theirs = value_texts(row.get(other))
            for a in mine:
                fa = _ascii_fold(a)
                for b in theirs:
                    fb = _ascii_fold(b)
                    if startswith and endswith:
                        if fb in fa:
                            return True
                    elif startswith:
                        if fa.startswith(fb):
                            return True
                    elif endswith:
                        if fa.endswith(fb):
                            return True
                    elif fa == fb:
                        return True
            return False

        return fieldref
    pred = value_predicate(test)
    if field is None:
        return lambda row: any(pred(v) for v in row.values() if v is not None)
    return lambda row: (v := row.get(field)) is not None and pred(v)


def regex_is_valid(pattern: str, flags: str) -> str | None:
    """``None`` when the regular expression compiles in Python, else the error text."""
    try:
        compile_regex(pattern, flags)
    except re.error as exc:
        return str(exc)
    return None


__all__ = [
    "CIDR",
    "CMP",
    "EXISTS",
    "FALSE",
    "FIELDREF",
    "NULL",
    "RE",
    "STR",
    "TRUE",
    "TSPART",
    "Expr",
    "Parts",
    "Test",
    "atom",
    "can_be_true_without",
    "eval_expr",
    "expr_source",
    "iter_tests",
    "make_and",
    "make_not",
    "make_or",
    "positive_tests",
    "row_predicate",
    "value_predicate",
]
