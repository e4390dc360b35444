"""The tamper-evident audit trail: canonical form, chain hashing and verification.

Each record is hashed together with the hash of the record before it::

    hash = sha256(prev_hash + canonical(record))

where ``canonical`` is the record as JSON with sorted keys (orjson): ``seq``, ``time``
(ISO 8601 UTC, microseconds), ``actor``, ``action``, ``tenant``, ``target`` and
``details``.  Editing, deleting or reordering any record breaks the chain at that
record, and the head row (last seq and hash) reveals deleted newest records.  Anyone
can re-verify an exported trail with these rules alone; anchoring the head hash
outside the database (a ticket, a signed log) also proves the head was not rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from openmdr.store.errors import ValidationError
from openmdr.store.schema import GENESIS_HASH

_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the audit trail: who did what to which tenant and object, and when."""

    seq: int
    time: datetime
    actor: str
    action: str
    tenant: str | None
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """Outcome of re-computing the chain: ``ok`` or the first bad ``seq`` and what is wrong."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_details(details: Mapping[str, Any]) -> str:
    """The details as canonical JSON text (sorted keys); raises ValidationError if not JSON-able."""
    try:
        return orjson.dumps(dict(details), default=_default, option=_JSON_OPTIONS | orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValidationError(f"audit details are not JSON-serializable: {exc}") from None


def format_time(time: datetime) -> str:
    """The canonical text of an audit time: UTC, microseconds, ``+00:00``."""
    return time.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_record(
    seq: int,
    time: datetime,
    actor: str,
    action: str,
    tenant: str | None,
    target: str | None,
    details: Any,
) -> bytes:
    """The bytes that are hashed for one record (sorted-key JSON)."""
    return orjson.dumps(
        {
            "seq": seq,
            "time": format_time(time),
            "actor": actor,
            "action": action,
            "tenant": tenant,
            "target": target,
            "details": details,
        },
        option=_JSON_OPTIONS,
    )


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """``sha256(prev_hash + canonical)`` as lower-case hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def verify_chain(rows: Iterable[Mapping[str, Any]], head_seq: int, head_hash: str) -> AuditVerification:
    """Verify audit rows given in ascending ``seq`` order against the head row.

    Reports the first record whose sequence number, link or hash is wrong; a record that
    is missing is reported by its own (missing) sequence number.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for row in rows:
        seq = int(row["seq"])
        count += 1
        if seq != expected_seq:
            if seq > expected_seq:
                problem = f"record {expected_seq} is missing (next record is {seq})"
            else:
                problem = f"record {seq} appears out of order after record {expected_seq - 1}"
            return AuditVerification(False, count, expected_seq, problem)
        if row["prev_hash"] != prev_hash:
            return AuditVerification(False, count, seq, f"record {seq} does not link to record {seq - 1}")
        try:
            details = orjson.loads(row["details"])
        except orjson.JSONDecodeError:
            return AuditVerification(False, count, seq, f"record {seq} has details that are not valid JSON")
        digest = chain_hash(
            prev_hash,
            canonical_record(seq, row["time"], row["actor"], row["action"], row["tenant"], row["target"], details),
        )
        if digest != row["hash"]:
            return AuditVerification(False, count, seq, f"record {seq} was altered (hash mismatch)")
        prev_hash = digest
        expected_seq += 1
    last_seq = expected_seq - 1
    if head_seq != last_seq:
        if head_seq > last_seq:
            problem = f"records {last_seq + 1}..{head_seq} are missing (the chain head is at {head_seq})"
            return AuditVerification(False, count, last_seq + 1, problem)
        problem = f"records after {head_seq} were added outside the audit chain"
        return AuditVerification(False, count, head_seq + 1, problem)
    if head_hash != prev_hash:
        return AuditVerification(False, count, last_seq or None, "the chain head hash does not match the last record")
    return AuditVerification(True, count, None, None, prev_hash)


def id_ranges(ids: Iterable[int]) -> list[list[int]]:
    """Compress ids into ``[first, last]`` runs for compact audit details."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs
