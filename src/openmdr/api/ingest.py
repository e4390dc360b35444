"""HTTP ingest: ``POST /api/v1/ingest`` with a per-tenant bearer token.

The token alone decides the tenant (a ``tenant`` field in the payload is just data).
The body is a JSON array of event objects (or one object), NDJSON
(``application/x-ndjson``) or raw text lines (``text/plain``: syslog, CEF, LEEF), and
may be gzip-compressed (``Content-Encoding: gzip``).  Each object or line becomes one
record whose format is detected on its own unless ``?format=`` forces one.  A body over
the configured size is refused with 413 before it is read in full; a body that is not
JSON at all is kept as one dead letter and answered with 400.  The answer counts what
became of the batch: ``received == stored + duplicates + rejected``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from openmdr.ingest.detect import classify_json, detect_message_format
from openmdr.ingest.framing import JsonValueSplitter
from openmdr.models import RawRecord, Rejection
from openmdr.normalize.base import MAX_RECORD_BYTES, known_formats

if TYPE_CHECKING:
    from openmdr.pipeline import RecordSink

#: Rejection reasons echoed in a response (the rest are in the dead-letter store).
MAX_REASONS = 5
_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
_JSON_TYPES = frozenset({"application/json", ""})
_TEXT_TYPES = frozenset({"text/plain"})

Item = RawRecord | Rejection


@dataclass(slots=True)
class IngestEndpointStats:
    """Counters of the ingest endpoint (requests by outcome, records received)."""

    requests: int = 0
    accepted: int = 0
    unauthorized: int = 0
    too_large: int = 0
    bad_request: int = 0
    records: int = 0


class _BadBody(ValueError):
    """The body cannot be framed at all; the message is the reason given to the client."""


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _frame_json_body(body: bytes, fmt: str | None, origin: str, ctx: dict[str, Any], tenant: str) -> list[Item]:
    """One record per object of a JSON array (or the single object), with exact bytes."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "64-bit" not in str(exc):
            raise _BadBody(f"malformed JSON body: {exc}") from None
        try:  # integers beyond 64 bits are valid JSON; the parsers decide what to do with them
            doc = json.loads(body)
        except ValueError as exc2:
            raise _BadBody(f"malformed JSON body: {exc2}") from None
    if isinstance(doc, dict):
        values: list[Any] = [doc]
    elif isinstance(doc, list):
        values = [v for v in doc if isinstance(v, dict | list)]
    else:
        raise _BadBody("the JSON body must be an object or an array of objects")
    splitter = JsonValueSplitter(MAX_RECORD_BYTES)
    spans = splitter.feed(body)
    spans.extend(splitter.close())
    received_at = ctx["received_at"]
    if len(values) != len(doc if isinstance(doc, list) else values) or len(spans) != len(values):
        return _reencode(doc if isinstance(doc, list) else values, fmt, origin, ctx, tenant)
    items: list[Item] = []
    for span, value in zip(spans, values, strict=True):
        if span.error is None:
            items.append(RawRecord(span.payload, fmt or classify_json(value), origin, ctx))
        else:  # oversized
            items.append(Rejection(span.payload, span.error, origin, fmt, tenant, "collect", received_at, ctx))
    return items


def _reencode(values: list[Any], fmt: str | None, origin: str, ctx: dict[str, Any], tenant: str) -> list[Item]:
    """Per-element records for arrays the byte splitter cannot map one to one (scalars among objects)."""
    items: list[Item] = []
    for value in values:
        try:
            payload = orjson.dumps(value)
        except TypeError:  # integers beyond 64 bits
            payload = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        if not isinstance(value, dict):
            reason = "array element is not a JSON object"
            items.append(Rejection(payload, reason, origin, fmt, tenant, "collect", ctx["received_at"], ctx))
        elif len(payload) > MAX_RECORD_BYTES:
            reason = f"oversized record: {len(payload)} bytes > limit {MAX_RECORD_BYTES}"
            items.append(Rejection(payload[:MAX_RECORD_BYTES], reason, origin, fmt, tenant, "collect",
                                   ctx["received_at"], ctx))  # fmt: skip
        else:
            items.append(RawRecord(payload, fmt or classify_json(value), origin, ctx))
    return items


def _frame_lines_body(
    body: bytes, fmt: str | None, origin: str, ctx: dict[str, Any], tenant: str, ndjson: bool
) -> list[Item]:
    """One record per non-blank line; NDJSON objects are classified, text lines sniffed."""
    items: list[Item] = []
    for raw in body.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_BYTES:
            reason = f"oversized record: {len(line)} bytes > limit {MAX_RECORD_BYTES}"
            payload = line[:MAX_RECORD_BYTES]
            items.append(Rejection(payload, reason, origin, fmt, tenant, "collect", ctx["received_at"], ctx))
            continue
        detected = fmt
        if detected is None:
            if ndjson:
                try:
                    detected = classify_json(orjson.loads(line))
                except orjson.JSONDecodeError:
                    detected = "json"  # the parser says precisely what is wrong with it
            else:
                detected = detect_message_format(line)
        items.append(RawRecord(line, detected, origin, ctx))
    return items


def _gunzip_limited(body: bytes, limit: int) -> bytes | None:
    """Decompress a gzip body; None when it would exceed ``limit`` bytes."""
    decomp = zlib.decompressobj(31)
    try:
        out = decomp.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _BadBody(f"malformed gzip body: {exc}") from None
    if len(out) > limit or decomp.unconsumed_tail:
        return None
    if not decomp.eof:
        raise _BadBody("truncated gzip body: the compressed stream ends early")
    return out


def create_ingest_router(
    sink: RecordSink,
    resolve_ingest_token: Callable[[str], str | None],
    max_batch_bytes: int,
    *,
    stats: IngestEndpointStats | None = None,
) -> APIRouter:
    """The ingest route over ``sink``; ``resolve_ingest_token(secret)`` names the token's tenant or None."""
    router = APIRouter()
    counters = stats if stats is not None else IngestEndpointStats()

    def refuse(status: int, detail: str, **headers: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)

    @router.post("/api/v1/ingest")
    async def ingest(
        request: Request,
        format: str | None = Query(None, description="force this parser instead of detecting per record"),
    ) -> JSONResponse:
        """Ingest a batch of events for the tenant of the bearer token."""
        counters.requests += 1
        token = _bearer(request.headers.get("authorization"))
        tenant = await run_in_threadpool(resolve_ingest_token, token) if token else None
        if not tenant:
            counters.unauthorized += 1
            return refuse(401, "missing or invalid ingest token", **{"WWW-Authenticate": "Bearer"})
        if format is not None and format not in known_formats():
            counters.bad_request += 1
            return refuse(400, f"unknown format {format!r}; known: {', '.join(known_formats())}")
        too_large = f"request body larger than the {max_batch_bytes} byte limit; send smaller batches"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_batch_bytes:
            counters.too_large += 1
            return refuse(413, too_large)
        parts: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_batch_bytes:
                counters.too_large += 1
                return refuse(413, too_large)
            parts.append(chunk)
        body = b"".join(parts)
        client = request.client.host if request.client else "unknown"
        origin = f"http {tenant} {client}"
        now = datetime.now(UTC)
        ctx: dict[str, Any] = {"received_at": now, "peer": client, "transport": "http"}
        encoding = request.headers.get("content-encoding", "").strip().lower()
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        try:
            if encoding == "gzip":
                inflated = _gunzip_limited(body, max_batch_bytes)
                if inflated is None:
                    counters.too_large += 1
                    return refuse(413, too_large + " (after decompression)")
                body = inflated
            elif encoding not in ("", "identity"):
                counters.bad_request += 1
                return refuse(415, f"unsupported Content-Encoding {encoding!r}; use gzip or none")
            if media in _NDJSON_TYPES:
                items = _frame_lines_body(body, format, origin, ctx, tenant, ndjson=True)
            elif media in _TEXT_TYPES:
                items = _frame_lines_body(body, format, origin, ctx, tenant, ndjson=False)
            elif media in _JSON_TYPES or media.endswith("+json"):
                items = _frame_json_body(body, format, origin, ctx, tenant)
            else:
                counters.bad_request += 1
                return refuse(415, f"unsupported Content-Type {media!r}; use application/json, "
                              "application/x-ndjson or text/plain")  # fmt: skip
        except _BadBody as exc:
            counters.bad_request += 1
            letter = Rejection(body[:MAX_RECORD_BYTES], str(exc), origin, format, tenant, "collect", now, ctx)
            try:
                report = await run_in_threadpool(sink.submit, tenant, [letter])
            except LookupError:
                counters.unauthorized += 1
                return refuse(401, "missing or invalid ingest token", **{"WWW-Authenticate": "Bearer"})
            content = _summary(report, [str(exc)])
            content["detail"] = str(exc)
            return JSONResponse(content, status_code=400)
        try:
            report = await run_in_threadpool(sink.submit, tenant, items)
        except LookupError:  # the token's tenant no longer exists
            counters.unauthorized += 1
            return refuse(401, "missing or invalid ingest token", **{"WWW-Authenticate": "Bearer"})
        counters.accepted += 1
        counters.records += report.received
        own = [i.reason for i in items if isinstance(i, Rejection)]
        return JSONResponse(_summary(report, own))

    return router


def _summary(report: Any, own_reasons: list[str]) -> dict[str, Any]:
    """The response body: the accounting and the first few rejection reasons."""
    reasons: list[str] = []
    for reason in own_reasons:
        if reason not in reasons:
            reasons.append(reason)
    grouped = getattr(report, "rejection_reasons", None)
    if grouped:
        for reason, _n in grouped.most_common():
            if not any(r.startswith(reason) for r in reasons):
                reasons.append(reason)
    return {
        "received": report.received,
        "stored": report.stored,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "rejections": reasons[:MAX_REASONS],
    }


def create_ingest_app(
    sink: RecordSink,
    resolve_ingest_token: Callable[[str], str | None],
    max_batch_bytes: int = 16 * 1024 * 1024,
) -> FastAPI:
    """A standalone FastAPI app serving only the ingest route (stats in ``app.state.ingest_stats``)."""
    app = FastAPI(title="OpenMDR ingest")
    stats = IngestEndpointStats()
    app.include_router(create_ingest_router(sink, resolve_ingest_token, max_batch_bytes, stats=stats))
    app.state.ingest_stats = stats
    return app
