"""A reference Sigma evaluator built on pysigma-backend-sqlite: one SQL query per rule.

This is the slow, independent baseline the engine is compared against (differential
test) and measured against (``bench/bench_sigma.py``).  Each rule is converted by
pySigma's SQLite backend with pySigma's own log-source pipelines (Sysmon and Windows
channels; the Windows-audit pipeline for the Security-log form of process-creation and
registry rules), the events are loaded into an in-memory SQLite table with one TEXT
column per field, and each query's result rows are the rule's hits.  Nothing of the
engine's code is used, except reading events (the foundation's parsers).

Known limits of this reference (they show up as explained disagreements):

* SQL's three-valued logic: ``NOT (Field LIKE ...)`` is NULL, not true, when ``Field`` is
  absent, so "selection and not filter" misses events lacking the filter's field, where
  Sigma says the negated filter matches.  The reference therefore also evaluates each
  query with NULL-safe negation (``NOT coalesce(x, 0)``) and reports both.
* keyword (field-less) searches are not supported by the backend;
* a rule whose log source no pySigma pipeline maps to a Windows channel cannot be routed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.rule import SigmaRule

TABLE = "events"
_NO_COLUMN = re.compile(r"no such column: (.+)$")
_AUDIT_CATEGORIES = {"process_creation", "registry_add", "registry_delete", "registry_event", "registry_set"}


@dataclass
class ReferenceRule:
    """The SQL form(s) of one rule (one per pipeline variant)."""

    rule_id: str
    queries: list[str]


@dataclass
class Reference:
    """Converted rules and what could not be converted, with the reason."""

    rules: list[ReferenceRule] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  #: rule id -> reason
    failed: dict[str, str] = field(default_factory=dict)  #: rule id -> SQLite error at evaluation

    def comparable(self) -> set[str]:
        """Ids of the rules whose reference hits are meaningful (converted and evaluated)."""
        return {r.rule_id for r in self.rules} - set(self.failed)


def _sql_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SigmaFaithfulSqliteBackend(sqliteBackend):  # type: ignore[misc]
    """The SQLite backend with two corrections towards Sigma's semantics.

    * plain equality compares case-insensitively (``COLLATE NOCASE``), as Sigma does by
      default; the stock backend's ``=`` is case-sensitive;
    * booleans are compared as the text ``true``/``false`` that event values carry; the
      stock backend compares with SQLite's integer ``true`` (1).
    """

    bool_values = {True: "'true'", False: "'false'"}  # noqa: RUF012 - overrides a ClassVar

    def convert_condition_field_eq_val_str(self, cond: Any, state: Any) -> Any:
        """Plain string equality with ``COLLATE NOCASE`` (LIKE forms are already caseless)."""
        out = super().convert_condition_field_eq_val_str(cond, state)
        if isinstance(out, str) and " LIKE " not in out:
            return out + " COLLATE NOCASE"
        return out


def convert_rules(texts: Iterable[str | bytes], faithful: bool = True) -> Reference:
    """Convert every Windows detection rule of ``texts`` to SQLite queries.

    ``faithful`` uses :class:`SigmaFaithfulSqliteBackend`; ``False`` the stock backend.
    """
    ref = Reference()
    cls = SigmaFaithfulSqliteBackend if faithful else sqliteBackend
    base = cls(sysmon_pipeline() + windows_logsource_pipeline())
    audit = cls(windows_audit_pipeline() + windows_logsource_pipeline())
    for text in texts:
        try:
            collection = SigmaCollection.from_yaml(text)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError):
            continue
        for ordinal, rule in enumerate(collection.rules):
            if not isinstance(rule, SigmaRule) or rule.errors:
                continue
            rid = str(rule.id)
            if (rule.logsource.product or "").lower() != "windows":
                ref.skipped[rid] = "not a Windows rule"
                continue
            queries: list[str] = []
            reason = ""
            backends = [base]
            if (rule.logsource.category or "").lower() in _AUDIT_CATEGORIES:
                backends.append(audit)
            for n, backend in enumerate(backends):
                try:
                    fresh = rule if n == 0 else SigmaCollection.from_yaml(text).rules[ordinal]
                    out = backend.convert(SigmaCollection([fresh]))  # type: ignore[list-item]
                except (SigmaError, ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as exc:
                    reason = f"backend: {str(exc)[:120]}"
                    continue
                for q in out:
                    if "Channel=" not in q:
                        reason = "log source not mapped to a channel by pySigma pipelines"
                        continue
                    queries.append(q.replace("<TABLE_NAME>", TABLE))
            if queries:
                ref.rules.append(ReferenceRule(rid, queries))
            else:
                ref.skipped[rid] = reason or "no query"
    return ref


def _regexp(pattern: str, value: Any) -> bool | None:
    if value is None:
        return None
    try:
        return re.search(pattern, str(value)) is not None
    except re.error:
        return False


def load_events(rows: Sequence[Mapping[str, Any]]) -> sqlite3.Connection:
    """An in-memory SQLite database with table ``events``: rowid = position + 1, TEXT columns."""
    conn = sqlite3.connect(":memory:")
    conn.create_function("REGEXP", 2, _regexp, deterministic=True)
    # SQLite column names are case-insensitive: fields differing only in case share a column
    # (first present value wins), a limit of this reference.
    folded: list[dict[str, Any]] = []
    columns: dict[str, str] = {}
    for r in rows:
        row: dict[str, Any] = {}
        for k, v in r.items():
            low = k.lower()
            columns.setdefault(low, k)
            if row.get(low) is None:
                row[low] = v
        folded.append(row)
    cols = list(columns)
    defs = ", ".join(f'"{columns[c]}" TEXT' for c in cols) or '"_" TEXT'
    conn.execute(f"CREATE TABLE {TABLE} (idx INTEGER PRIMARY KEY, {defs})")
    if cols:
        marks = ", ".join("?" for _ in range(len(cols) + 1))
        names = ", ".join(f'"{columns[c]}"' for c in cols)
        conn.executemany(
            f"INSERT INTO {TABLE} (idx, {names}) VALUES ({marks})",
            ([i, *(_sql_text(r.get(c)) for c in cols)] for i, r in enumerate(folded)),
        )
    return conn


def _ensure_column(conn: sqlite3.Connection, name: str) -> bool:
    name = name.strip().strip('"')
    try:
        conn.execute(f'ALTER TABLE {TABLE} ADD COLUMN "{name}" TEXT')
    except sqlite3.OperationalError:
        return False
    return True


def run_query(conn: sqlite3.Connection, query: str) -> set[int]:
    """Row indexes the query selects (absent columns are added as all-NULL)."""
    sql = query.replace("SELECT *", "SELECT idx", 1)
    for _ in range(64):
        try:
            return {r[0] for r in conn.execute(sql)}
        except sqlite3.OperationalError as exc:
            m = _NO_COLUMN.search(str(exc))
            if not m or not _ensure_column(conn, m.group(1)):
                raise
    raise sqlite3.OperationalError(f"too many missing columns in {query[:200]}")


def _operand_end(query: str, k: int) -> int:
    """End of the operand starting at ``k``: a parenthesised group, or up to AND/OR/``)``."""
    depth = 0
    i = k
    n = len(query)
    while i < n:
        c = query[i]
        if c == "'":
            i += 1
            while i < n:
                if query[i] == "'":
                    if i + 1 < n and query[i + 1] == "'":
                        i += 2
                        continue
                    break
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                return i
            depth -= 1
            if depth == 0 and query[k] == "(":
                return i + 1
        elif depth == 0 and (query.startswith(" AND ", i) or query.startswith(" OR ", i)):
            return i
        i += 1
    return n


def null_safe(query: str) -> str:
    """The query with every ``NOT x`` read as ``NOT coalesce(x, 0)`` (absent field = no match)."""
    out: list[str] = []
    i = 0
    n = len(query)
    in_quote = False
    while i < n:
        c = query[i]
        if c == "'":
            in_quote = not in_quote
            out.append(c)
            i += 1
            continue
        if (
            not in_quote
            and query.startswith("NOT ", i)
            and (i == 0 or not (query[i - 1].isalnum() or query[i - 1] == "_"))
        ):
            k = i + 4
            end = _operand_end(query, k)
            out.append(f"NOT coalesce(({null_safe(query[k:end])}), 0)")
            i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def evaluate(ref: Reference, rows: Sequence[Mapping[str, Any]], sigma_nulls: bool = True) -> set[tuple[str, int]]:
    """``(rule id, row index)`` hits of every converted rule over ``rows``.

    ``sigma_nulls`` applies :func:`null_safe` so that negations over absent fields follow
    Sigma (true) rather than SQL (unknown).
    """
    conn = load_events(rows)
    hits: set[tuple[str, int]] = set()
    try:
        for rule in ref.rules:
            for q in rule.queries:
                sql = null_safe(q) if sigma_nulls else q
                try:
                    hits.update((rule.rule_id, i) for i in run_query(conn, sql))
                except sqlite3.OperationalError as exc:
                    ref.failed[rule.rule_id] = f"sqlite: {exc}"
    finally:
        conn.close()
    return hits
