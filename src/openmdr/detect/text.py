"""How event values become text, and how Sigma string tests become matchers.

Sigma compares values as text: ``EventID: 4688`` matches the integer 4688 and the string
"4688" alike.  :func:`value_texts` is the one conversion every part of the engine uses
(the column scanner, the per-row fallback and the tests), so all of them agree.

Case-insensitive matching (Sigma's default) folds **ASCII letters only**: ``cmd.EXE``
matches ``CMD.exe`` but ``É`` does not match ``é``.  This is what Hyperscan's caseless
mode and SQLite's ``LIKE``/``NOCASE`` do, and it keeps the bulk scanner and the per-row
matcher exactly equivalent.  ``|cased`` compares exactly.  Regular expressions (``|re``)
follow Python's :mod:`re` semantics, including its flags ``i``, ``m`` and ``s``.

String tests are stored as *parts*: literal strings and the two wildcards
:data:`WILD_MULTI` (``*``) and :data:`WILD_ONE` (``?``), exactly as pySigma parsed them
(escapes ``\\*``, ``\\?`` and ``\\\\`` are already literal characters here).
"""

from __future__ import annotations

import math
import re
import re._constants as _sre_constants  # the stdlib regex parser, for literal factors
import re._parser as _sre_parser
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

#: Wildcard part: any run of characters (Sigma ``*``).
WILD_MULTI = -1
#: Wildcard part: exactly one character (Sigma ``?``).
WILD_ONE = -2

Part = str | int
Parts = tuple[Part, ...]

#: Byte that frames every value in a scanned column; it never occurs inside a value.
SEPARATOR = b"\x00"
_SEP_STR = "\x00"
#: What a NUL inside an event value is scanned as (NUL is reserved for framing).
_NUL_STAND_IN = "\x01"

# One UTF-8 encoded character: a non-continuation byte followed by continuation bytes.
_ONE_CHAR = rb"[^\x00\x80-\xbf][\x80-\xbf]*"
_ONE_CHAR_ANY = rb"(?:[^\x80-\xbf][\x80-\xbf]*)"


def scalar_text(value: Any) -> str:
    """Text form of one scalar value as Sigma compares it.

    Booleans are ``true``/``false`` (as in JSON), integral floats lose their ``.0`` so that
    a rule's ``4`` matches ``4.0``, bytes are decoded as UTF-8, containers become JSON.
    """
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def value_texts(value: Any) -> tuple[str, ...]:
    """All texts a field value offers to a test: none for a missing value, one per list item.

    A list value matches a test when any of its items does (Sigma's reading of
    multi-valued fields); nested lists are flattened.
    """
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        out: list[str] = []
        stack = [iter(value)]
        while stack:
            for item in stack[-1]:
                if isinstance(item, list | tuple):
                    stack.append(iter(item))
                    break
                if item is not None:
                    out.append(scalar_text(item))
            else:
                stack.pop()
        return tuple(out)
    return (scalar_text(value),)


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text`` for scanning; lone surrogates become U+FFFD, NUL becomes 0x01."""
    try:
        data = text.encode()
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()
    if b"\x00" in data:
        data = data.replace(b"\x00", _NUL_STAND_IN.encode())
    return data


# ---------------------------------------------------------------------------------------
# string tests


def parts_is_literal(parts: Parts) -> bool:
    """True when the parts hold no wildcard at all (an exact-equality test)."""
    return all(p.__class__ is str for p in parts)


def contains_parts(parts: Parts) -> Parts:
    """Wrap parts in ``*`` on both sides (keyword searches match anywhere in a value)."""
    out: list[Part] = list(parts)
    if not out or out[0] != WILD_MULTI:
        out.insert(0, WILD_MULTI)
    if out[-1] != WILD_MULTI:
        out.append(WILD_MULTI)
    return tuple(out)


def normalize_parts(parts: Iterable[Part]) -> Parts:
    """Merge adjacent literals and collapse runs of ``*`` (same meaning, one canonical key)."""
    out: list[Part] = []
    for p in parts:
        if p.__class__ is str:
            if not p:
                continue
            if out and out[-1].__class__ is str:
                out[-1] = out[-1] + p  # type: ignore[operator]
            else:
                out.append(p)
        elif p == WILD_MULTI and out and out[-1] == WILD_MULTI:
            continue
        else:
            out.append(p)
    return tuple(out)


def parts_display(parts: Parts) -> str:
    """Sigma notation of parts (wildcards as ``*``/``?``, literal ones escaped)."""
    out = []
    for p in parts:
        if p == WILD_MULTI:
            out.append("*")
        elif p == WILD_ONE:
            out.append("?")
        else:
            out.append(str(p).replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
    return "".join(out)


def _escape_bytes(data: bytes) -> bytes:
    """Escape every byte that is not an ASCII letter or digit for a Hyperscan/PCRE pattern."""
    out = bytearray()
    for b in data:
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122:
            out.append(b)
        else:
            out += b"\\x%02x" % b
    return bytes(out)


def scan_pattern(parts: Parts) -> bytes | None:
    """The Hyperscan pattern finding ``parts`` inside a NUL-framed column, or ``None``.

    Each value sits between NUL bytes, so equality is ``\\x00value\\x00``, a prefix test is
    ``\\x00prefix``, a suffix test ``suffix\\x00`` and a substring test the bare literal.
    Inner wildcards become ``[^\\x00]*`` / one UTF-8 character, so a match never crosses
    into a neighbouring value.  ``None`` means the test cannot be scanned this way and is
    evaluated per row instead: a pattern that is only wildcards (it matches every present
    value) or one whose text contains NUL (as ``|wide`` produces).
    """
    body = list(parts)
    start_anchor = True
    end_anchor = True
    while body and body[0] == WILD_MULTI:
        body.pop(0)
        start_anchor = False
    while body and body[-1] == WILD_MULTI:
        body.pop()
        end_anchor = False
    if not any(p.__class__ is str for p in body) and not (start_anchor and end_anchor):
        return None  # only wildcards: not a scannable literal
    out = bytearray()
    if start_anchor:
        out += rb"\x00"
    for p in body:
        if p == WILD_MULTI:
            out += rb"[^\x00]*"
        elif p == WILD_ONE:
            out += _ONE_CHAR
        else:
            if "\x00" in p:  # type: ignore[operator]
                return None
            out += _escape_bytes(encode_text(p))  # type: ignore[arg-type]
    if end_anchor:
        out += rb"\x00"
    return bytes(out)


def compile_parts(parts: Parts, cased: bool) -> re.Pattern[bytes]:
    """A Python matcher (``fullmatch`` on UTF-8 bytes) with the same meaning as :func:`scan_pattern`."""
    out = bytearray()
    for p in parts:
        if p == WILD_MULTI:
            out += b".*"
        elif p == WILD_ONE:
            out += _ONE_CHAR_ANY
        else:
            out += re.escape(encode_text_exact(p))  # type: ignore[arg-type]
    flags = re.DOTALL if cased else re.DOTALL | re.IGNORECASE
    return re.compile(bytes(out), flags)


def encode_text_exact(text: str) -> bytes:
    """UTF-8 bytes of ``text`` keeping NUL (rule text is matched against values as they are)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()


def match_parts(matcher: re.Pattern[bytes], texts: Sequence[str]) -> bool:
    """True when any of ``texts`` fully matches a matcher from :func:`compile_parts`."""
    return any(matcher.fullmatch(encode_text_exact(t)) is not None for t in texts)


# ---------------------------------------------------------------------------------------
# regular expressions

_RE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}


def compile_regex(pattern: str, flags: str) -> re.Pattern[str]:
    """Compile a Sigma ``|re`` value with its ``i``/``m``/``s`` flags (Python semantics)."""
    value = 0
    for f in flags:
        value |= _RE_FLAGS[f]
    return re.compile(pattern, value)


def regex_factors(pattern: str, flags: str, min_length: int = 3) -> frozenset[str] | None:
    """Literals of which at least one occurs in every match of the regular expression.

    ``None`` when no such set of literals of at least ``min_length`` characters exists.
    The column scanner looks for these literals (a cheap superset test) and confirms the
    candidate rows with :mod:`re`.  Under case-insensitive matching only ASCII letters
    are used, and not ``i``/``k``/``s``, which Python folds with non-ASCII letters
    (``ı``, ``K``, ``ſ``); the scanner folds ASCII only.
    """
    try:
        parsed = _sre_parser.parse(pattern, _flag_value(flags))
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    icase = bool(parsed.state.flags & re.IGNORECASE)
    try:
        best = _seq_factors(list(parsed), icase)
    except RecursionError:
        return None
    if not best or min(len(x) for x in best) < min_length:
        return None
    return frozenset(best)


def _flag_value(flags: str) -> int:
    value = 0
    for f in flags:
        value |= _RE_FLAGS[f]
    return value


_FOLD_UNSAFE = frozenset("iIkKsS")


def _literal_ok(code: int, icase: bool) -> bool:
    if code == 0:
        return False
    if icase:
        return code < 128 and chr(code) not in _FOLD_UNSAFE
    return True


def _score(factors: set[str] | None) -> tuple[int, int]:
    if not factors:
        return (-1, 0)
    return (min(len(x) for x in factors), -len(factors))


def _seq_factors(items: list[Any], icase: bool) -> set[str] | None:
    """Best literal set for a sequence of parsed regex items (see :func:`regex_factors`)."""
    c = _sre_constants
    best: set[str] | None = None
    run: list[str] = []

    def close_run() -> None:
        nonlocal best, run
        if run:
            cand = {"".join(run)}
            if _score(cand) > _score(best):
                best = cand
            run = []

    for op, av in items:
        if op is c.LITERAL and _literal_ok(av, icase):
            run.append(chr(av))
            continue
        close_run()
        cand: set[str] | None = None
        if op is c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            sub_icase = (icase or bool(add_flags & re.IGNORECASE)) and not (del_flags & re.IGNORECASE)
            cand = _seq_factors(list(sub), sub_icase)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, _high, sub = av
            if low >= 1:
                cand = _seq_factors(list(sub), icase)
        elif op is getattr(c, "ATOMIC_GROUP", None):
            cand = _seq_factors(list(av), icase)
        elif op is c.BRANCH:
            union: set[str] = set()
            for alt in av[1]:
                sub_f = _seq_factors(list(alt), icase)
                if not sub_f:
                    union = set()
                    break
                union |= sub_f
            cand = union or None
        if cand is not None and _score(cand) > _score(best):
            best = cand
    close_run()
    return best
