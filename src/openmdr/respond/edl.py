"""External Dynamic Lists over HTTP: each tenant's block lists in the formats firewalls poll.

``GET {prefix}/{tenant}/{kind}.txt`` returns one entry per line (Palo Alto EDL, FortiGate
external threat feed, pfSense URL table alias); ``.json`` returns the entries with expiry,
case and reason.  ``kind`` is ``ip``, ``domain``, ``url`` or ``hash``.  Only entries in force
at the time of the request are listed, so an expired block disappears on the firewall's next
poll without anyone acting.  Access needs the tenant's EDL token (``openmdr respond edl-token``)
as HTTP Basic password (what PAN-OS and FortiGate send), a Bearer token, or ``?token=`` for
pollers that can only fetch a URL.  A wrong token and an unknown tenant answer the same 401,
so tenant names cannot be probed.  Responses carry an ``ETag``; ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from openmdr.store.response import BLOCK_KINDS, BlockEntry, ResponseStore


def edl_lines(entries: list[BlockEntry]) -> list[str]:
    """The plain-text lines of a list: URLs without their scheme (as PAN-OS URL lists expect), sorted, unique."""
    out: set[str] = set()
    for e in entries:
        value = e.value
        if e.kind == "url":
            value = value.split("://", 1)[-1]
        out.add(value)
    return sorted(out)


def create_edl_router(
    store: ResponseStore,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    prefix: str = "/edl",
) -> APIRouter:
    """A FastAPI router serving every tenant's block lists under ``prefix`` (mount it on the API app)."""
    router = APIRouter(prefix=prefix, tags=["response"])

    def _authorise(request: Request, tenant: str) -> None:
        token = request.query_params.get("token") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                token = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                token = ""
        elif auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        try:
            ok = store.check_edl_token(tenant, token)
        except LookupError:
            ok = False
        if not ok:
            raise HTTPException(401, "EDL token required", headers={"WWW-Authenticate": 'Basic realm="openmdr-edl"'})

    def _entries(tenant: str, kind: str) -> list[BlockEntry]:
        if kind not in BLOCK_KINDS:
            raise HTTPException(404, f"no list {kind!r}; lists are {', '.join(BLOCK_KINDS)}")
        return store.list_blocks(tenant, kind, now=clock())

    def _respond(request: Request, body: bytes, media_type: str) -> Response:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    @router.get("/{tenant}/{kind}.txt")
    def edl_text(tenant: str, kind: str, request: Request) -> Response:
        """The tenant's list as plain text, one entry per line."""
        _authorise(request, tenant)
        lines = edl_lines(_entries(tenant, kind))
        body = ("\n".join(lines) + "\n").encode() if lines else b""
        return _respond(request, body, "text/plain; charset=utf-8")

    @router.get("/{tenant}/{kind}.json")
    def edl_json(tenant: str, kind: str, request: Request) -> Response:
        """The tenant's list as JSON with each entry's expiry, case and reason."""
        _authorise(request, tenant)
        entries = _entries(tenant, kind)
        doc = {
            "tenant": tenant, "type": kind, "count": len(entries),
            "entries": [{"value": e.value, "added_at": e.added_at.isoformat(),
                         "expires_at": e.expires_at.isoformat() if e.expires_at else None,
                         "case_id": e.case_id, "action_id": e.action_id, "reason": e.reason} for e in entries],
        }  # fmt: skip
        return _respond(request, orjson.dumps(doc), "application/json")

    return router
