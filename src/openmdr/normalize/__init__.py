"""Normalize stage: parsers that turn raw records of every telemetry family into events."""

from openmdr.normalize.base import (
    MAX_RECORD_BYTES,
    BatchParser,
    Parser,
    get_parser,
    known_formats,
    parse_each,
    register,
)

__all__ = ["MAX_RECORD_BYTES", "BatchParser", "Parser", "get_parser", "known_formats", "parse_each", "register"]
