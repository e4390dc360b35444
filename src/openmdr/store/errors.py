"""Errors the stores raise: each says what was wrong in words a person can act on.

They subclass the built-in exception a caller would naturally catch (``LookupError`` for
something missing, ``ValueError`` for bad input), so surfaces such as the CLI and the
HTTP API can map them to "not found", "conflict" and "bad request" without importing
storage details.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by the state store and the event lake."""


class NotFoundError(StoreError, LookupError):
    """The named tenant, asset, token or dead letter does not exist."""


class ConflictError(StoreError, ValueError):
    """The change would break a uniqueness rule (a tenant or active token name already in use)."""


class ValidationError(StoreError, ValueError):
    """Input that does not satisfy the store's rules (bad tenant name, unknown criticality, ...)."""


class NotMigratedError(StoreError):
    """The database has not been brought to the current schema: call ``StateStore.migrate()``."""


class QueryError(StoreError, ValueError):
    """A lake query was refused (not a single read-only statement) or failed in DuckDB."""
