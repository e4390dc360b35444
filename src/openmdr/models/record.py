"""What travels from a transport to a parser, and what is kept when input is refused.

A :class:`RawRecord` is one framed record exactly as received (bytes), with where it
came from.  A :class:`Rejection` is the dead-letter form of input that could not be
framed or parsed: the bytes, the reason and the origin are kept so the input can be
replayed after a parser fix.  Nothing the platform receives is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class RawRecord:
    """One framed record as received.

    ``format`` names the parser that should read it (see :mod:`openmdr.normalize`);
    ``origin`` says where it came from (``path:offset``, ``syslog/tcp 10.0.0.5:5514``,
    ``http token 'edge-1'``); ``context`` carries per-stream facts the framer learned,
    such as the ``#fields`` header of a Zeek TSV log, shared by all of its records.
    """

    payload: bytes
    format: str
    origin: str
    context: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Rejection:
    """Input that did not become an event: kept with its reason and origin."""

    payload: bytes
    reason: str
    origin: str
    format: str | None = None
    tenant: str = ""
    stage: str = "parse"
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    context: Mapping[str, Any] | None = None


class ParseError(ValueError):
    """A record that a parser cannot turn into an event; the message is the reason kept."""
