"""TAXII 2.1: a read-only server for our shared collection, and a client that pulls collections.

:func:`taxii_router` returns a FastAPI router (the API service mounts it) serving the TAXII
2.1 discovery, API root, collections, objects (with ``added_after``, ``limit``/``next``
paging, ``match[type]``/``match[id]``), object and manifest endpoints for one collection:
the provider-wide indicators no more restricted than ``max_tlp`` (TLP:GREEN by default;
AMBER+STRICT, RED and tenant-scoped indicators are never served).  Optional HTTP basic
credentials protect it.

:func:`pull_taxii` uses ``taxii2-client`` to read a collection of any TAXII 2.1 server into an
:class:`~openmdr.intel.exchange.ImportReport`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from openmdr.intel.exchange import ImportReport, exportable, read_stix, stix_objects
from openmdr.models.indicator import Indicator
from openmdr.store.intel import IntelStore

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
#: Id of the collection holding our shared indicators.
SHARED_COLLECTION_ID = "5c0d6f0e-7f55-4e93-a0c8-6b1d9f0e2a11"
_MAX_PAGE = 1000


def _taxii_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_added_after(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"added_after is not a timestamp: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def taxii_router(
    store: IntelStore | Callable[[], IntelStore],
    *,
    title: str = "OpenMDR threat intelligence",
    api_root: str = "intel",
    collection_id: str = SHARED_COLLECTION_ID,
    max_tlp: str = "green",
    credentials: dict[str, str] | None = None,
) -> APIRouter:
    """A FastAPI router serving our shared collection over TAXII 2.1 (read-only).

    ``store`` is the intel store or a callable returning it (so the API can open it lazily);
    ``credentials`` maps user names to passwords for HTTP basic authentication (None: open).
    """
    router = APIRouter()
    hashed = {u: hashlib.sha256(p.encode()).digest() for u, p in (credentials or {}).items()}

    def intel() -> IntelStore:
        """The store (opened on first use when a factory was given)."""
        return store if isinstance(store, IntelStore) else store()

    def check(request: Request) -> None:
        """Refuse the request (401) unless credentials are off or its HTTP basic ones match."""
        if not hashed:
            return
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            expected = hashed.get(user)
            if expected is not None and secrets.compare_digest(expected, hashlib.sha256(password.encode()).digest()):
                return
        raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": 'Basic realm="taxii"'})

    def reply(body: Any, headers: dict[str, str] | None = None) -> Response:
        """A TAXII 2.1 JSON response."""
        return Response(orjson.dumps(body), media_type=TAXII_MEDIA_TYPE, headers=headers)

    def collection_info() -> dict[str, Any]:
        """The collection resource of our shared collection."""
        return {
            "id": collection_id,
            "title": f"{title}: shared indicators",
            "description": f"Provider-wide indicators up to TLP:{max_tlp.upper()}",
            "can_read": True,
            "can_write": False,
            "media_types": [STIX_MEDIA_TYPE],
        }

    def need_collection(cid: str) -> None:
        """404 for any collection but ours."""
        if cid != collection_id:
            raise HTTPException(404, f"no collection {cid}")

    def page(request: Request) -> tuple[list[Indicator], bool, int]:
        """One page of shareable indicators for the request's filters: (indicators, more, next offset)."""
        params = request.query_params
        added_after = _parse_added_after(params.get("added_after"))
        try:
            limit = min(_MAX_PAGE, max(1, int(params.get("limit", _MAX_PAGE))))
            offset = int(params.get("next", "0") or 0)
        except ValueError:
            raise HTTPException(400, "limit and next must be integers") from None
        found = intel().list_indicators(
            None, updated_after=added_after, limit=limit + 1, offset=offset, max_tlp="amber"
        )
        more = len(found) > limit
        found = found[:limit]
        shared = exportable(found, max_tlp)
        wanted_ids = {i.removeprefix("indicator--") for i in params.get("match[id]", "").split(",") if i}
        if wanted_ids:
            shared = [i for i in shared if i.id in wanted_ids]
        wanted_types = {t for t in params.get("match[type]", "").split(",") if t}
        if wanted_types and "indicator" not in wanted_types:
            shared = []
        return shared, more, offset + limit

    @router.get("/taxii2/", name="taxii_discovery")
    def discovery(request: Request) -> Response:
        """TAXII discovery: where our API root is."""
        check(request)
        root = str(request.url_for("taxii_api_root"))
        return reply({"title": title, "default": root, "api_roots": [root]})

    @router.get(f"/{api_root}/", name="taxii_api_root")
    def api_root_info(request: Request) -> Response:
        """The API root's information."""
        check(request)
        return reply({"title": title, "versions": [TAXII_MEDIA_TYPE], "max_content_length": 104_857_600})

    @router.get(f"/{api_root}/collections/")
    def collections(request: Request) -> Response:
        """The one collection we serve."""
        check(request)
        return reply({"collections": [collection_info()]})

    @router.get(f"/{api_root}/collections/{{cid}}/")
    def collection(cid: str, request: Request) -> Response:
        """Our collection's information."""
        check(request)
        need_collection(cid)
        return reply(collection_info())

    @router.get(f"/{api_root}/collections/{{cid}}/objects/")
    def objects(cid: str, request: Request) -> Response:
        """A page of STIX objects of the shared indicators."""
        check(request)
        need_collection(cid)
        shared, more, next_offset = page(request)
        body: dict[str, Any] = {"more": more}
        if shared:
            body["objects"] = stix_objects(shared, title)
        if more:
            body["next"] = str(next_offset)
        headers = {}
        if shared:
            stamps = [i.updated_at for i in shared if i.updated_at]
            if stamps:
                headers = {
                    "X-TAXII-Date-Added-First": _taxii_time(min(stamps)),
                    "X-TAXII-Date-Added-Last": _taxii_time(max(stamps)),
                }
        return reply(body, headers)

    @router.get(f"/{api_root}/collections/{{cid}}/objects/{{object_id}}/")
    def one_object(cid: str, object_id: str, request: Request) -> Response:
        """One shared indicator as STIX."""
        check(request)
        need_collection(cid)
        try:
            ind = intel().get_indicator(object_id.removeprefix("indicator--"), None)
        except Exception:
            raise HTTPException(404, f"no object {object_id}") from None
        shared = exportable([ind], max_tlp)
        if not shared:
            raise HTTPException(404, f"no object {object_id}")
        return reply({"more": False, "objects": stix_objects(shared, title)})

    @router.get(f"/{api_root}/collections/{{cid}}/manifest/")
    def manifest(cid: str, request: Request) -> Response:
        """Ids, versions and dates of the shared indicators."""
        check(request)
        need_collection(cid)
        shared, more, next_offset = page(request)
        body: dict[str, Any] = {
            "more": more,
            "objects": [
                {
                    "id": f"indicator--{i.id}",
                    "date_added": _taxii_time(i.updated_at or datetime.now(UTC)),
                    "version": _taxii_time(i.updated_at or datetime.now(UTC)),
                    "media_type": STIX_MEDIA_TYPE,
                }
                for i in shared
            ],
        }
        if more:
            body["next"] = str(next_offset)
        return reply(body)

    return router


def pull_taxii(
    url: str,
    collection_id: str | None = None,
    user: str | None = None,
    password: str | None = None,
    added_after: datetime | None = None,
    tenant: str | None = None,
    source: str = "taxii",
    default_tlp: str = "amber",
    per_request: int = 500,
) -> ImportReport:
    """Pull every indicator of a TAXII 2.1 collection (the first readable one unless named).

    ``url`` is the server's discovery URL (``.../taxii2/``) or an API root URL.
    """
    from taxii2client.v21 import ApiRoot, Server, as_pages

    report = ImportReport()
    roots: list[Any]
    if url.rstrip("/").endswith("taxii2"):
        server = Server(url, user=user, password=password)
        roots = list(server.api_roots)
    else:
        roots = [ApiRoot(url, user=user, password=password)]
    chosen = None
    for root in roots:
        for col in root.collections:
            if (collection_id is None and col.can_read) or col.id == collection_id:
                chosen = col
                break
        if chosen is not None:
            break
    if chosen is None:
        raise LookupError(f"no readable collection {collection_id or ''} at {url}".replace("  ", " "))
    kwargs: dict[str, Any] = {}
    if added_after is not None:
        kwargs["added_after"] = _taxii_time(added_after)
    for n, envelope in enumerate(as_pages(chosen.get_objects, per_request=per_request, **kwargs)):
        report.extend(read_stix(envelope, f"{url}#collection={chosen.id}&page={n}", tenant, default_tlp, source=source))
    return report
