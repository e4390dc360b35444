"""The parser contract and registry.

A parser is a small object with a ``name`` (the format it reads) and a ``parse``
method turning one :class:`~openmdr.models.RawRecord` into one
:class:`~openmdr.models.Event`, or raising :class:`~openmdr.models.ParseError` with
a reason a person can act on.  Parsers are pure: no I/O, no tenant knowledge (the
transport decides the tenant), no enrichment.  Register a parser with
:func:`register`; the ingest stage looks parsers up by format name with
:func:`get_parser`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from openmdr.models import Event, ParseError, RawRecord

#: Largest single record a parser accepts; larger input is dead-lettered, not parsed.
MAX_RECORD_BYTES = 1 << 20
#: Deepest JSON nesting accepted before a record is refused as hostile.
MAX_NESTING = 64


@runtime_checkable
class Parser(Protocol):
    """Reads one record format into events."""

    name: str

    def parse(self, record: RawRecord) -> Event:
        """Return the normalized event for ``record`` or raise :class:`ParseError`."""
        ...


@runtime_checkable
class BatchParser(Parser, Protocol):
    """A parser that also reads a block of records of its format in one call (the import hot path).

    ``parse_batch`` must give, for every record in order, exactly what :meth:`parse`
    gives for it: the same event, or the exception ``parse`` would raise (returned, not
    raised, so one bad record costs only itself).  Parsers without it are called record
    by record.
    """

    def parse_batch(self, records: Sequence[RawRecord]) -> list[Event | Exception]:
        """Return the event (or the exception ``parse`` would raise) for each of ``records``."""
        ...


def parse_each(parser: Parser, records: Sequence[RawRecord]) -> list[Event | Exception]:
    """Parse ``records`` with ``parser``: its ``parse_batch`` when it has one, else ``parse`` per record.

    Every exception a parser raises is returned in the record's place (a parser bug
    costs one record, never the block): a ``parse_batch`` that fails as a whole, or
    answers for the wrong number of records, is replaced by ``parse`` per record.
    """
    if isinstance(parser, BatchParser):
        try:
            results = parser.parse_batch(records)
        except Exception:  # a bug in the block path: the per-record path still answers for each record
            results = None
        if results is not None and len(results) == len(records):
            return results
    out: list[Event | Exception] = []
    parse = parser.parse
    for record in records:
        try:
            out.append(parse(record))
        except Exception as exc:  # handed back: the caller dead-letters it
            out.append(exc)
    return out


_REGISTRY: dict[str, Parser] = {}


def register(parser: Parser) -> Parser:
    """Add ``parser`` to the registry under its ``name`` (last registration wins)."""
    _REGISTRY[parser.name] = parser
    return parser


def get_parser(name: str) -> Parser:
    """Return the parser for format ``name``; raise ``KeyError`` naming the known formats."""
    _load_builtin_parsers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no parser for format {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def known_formats() -> list[str]:
    """Names of every registered format, sorted."""
    _load_builtin_parsers()
    return sorted(_REGISTRY)


_loaded = False


def _load_builtin_parsers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from openmdr.normalize import parsers  # noqa: F401  (registers on import)


def parser_function(name: str) -> Callable[[Callable[[RawRecord], Event]], Parser]:
    """Decorator turning a plain ``parse(record) -> Event`` function into a registered parser."""

    def wrap(fn: Callable[[RawRecord], Event]) -> Parser:
        class _FunctionParser:
            __slots__ = ("name",)

            def parse(self, record: RawRecord) -> Event:
                return fn(record)

            def __repr__(self) -> str:
                return f"<parser {name}>"

        p = _FunctionParser()
        p.name = name
        return register(p)  # type: ignore[arg-type]

    return wrap


def check_depth(value: object, limit: int = MAX_NESTING) -> None:
    """Raise :class:`ParseError` if a decoded JSON value nests deeper than ``limit``."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            raise ParseError(f"nesting deeper than {limit} levels")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, dict | list))


def parse_time(value: object) -> datetime:
    """Parse the common timestamp shapes (ISO 8601 with or without zone, epoch seconds/ms) to UTC.

    Naive timestamps are taken as UTC.  Raises :class:`ParseError` for anything else.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if seconds > 1e14:  # microseconds
            seconds /= 1e6
        elif seconds > 1e11:  # milliseconds
            seconds /= 1e3
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ParseError(f"timestamp out of range: {value!r}") from exc
    if isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            try:
                return parse_time(float(text))
            except (ValueError, ParseError):
                raise ParseError(f"unreadable timestamp {text[:64]!r}") from None
        if dt.tzinfo is None:
            return dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    raise ParseError(f"unreadable timestamp {value!r:.64}")
