"""The lab relay: the receiving side of OpenMDR's signed webhook contracts, as a small real HTTP service.

It answers :class:`~openmdr.respond.connectors.edr.WebhookEdrConnector` (``POST /edr/{tenant}``:
isolate/unisolate host, kill process, quarantine/restore file) and
:class:`~openmdr.respond.connectors.webhook.WebhookActionConnector` (``POST /actions/{tenant}``:
disable/enable account, revoke sessions) the way a real EDR or IdP bridge must:

- the HMAC signature and timestamp are verified with :func:`~openmdr.respond.connectors.signing.verify`;
  a missing, wrong or stale signature gets 401, which the sender does not retry;
- the delivery id (the action id, stable across retries) makes every request idempotent: a repeat
  gets the first answer and changes nothing; the same id with another body gets 409;
- each tenant has its own state (isolated hosts, quarantined files, killed processes, disabled
  accounts, revoked sessions), in memory and optionally in a JSON state file, readable over
  ``GET /state/{tenant}``; every delivery, accepted or refused, is logged and kept in a bounded journal;
- answers carry the ``prior`` state the engine needs for rollback (``{"isolated": true}`` when the
  host was already isolated), and a rollback given that prior leaves the state as it found it.

Labs and ``openmdr demo`` run it in-process (:class:`LabRelay`); ``openmdr relay serve`` runs it
standalone.  An integrator bridging to a real EDR or IdP replaces the functions of the
"operations" section with calls to that system and keeps the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from openmdr.respond.connectors.base import ConnectorRegistry
from openmdr.respond.connectors.edr import EDR_KINDS, WebhookEdrConnector
from openmdr.respond.connectors.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from openmdr.respond.connectors.webhook import WebhookActionConnector, WebhookSender

log = logging.getLogger(__name__)

#: Account action kinds the relay answers on ``/actions/{tenant}``.
ACCOUNT_KINDS: frozenset[str] = frozenset({"disable_account", "enable_account", "revoke_sessions"})
#: Environment variable holding the relay's shared secret (CLI, demo and generated configuration).
RELAY_SECRET_ENV = "OPENMDR_LAB_RELAY_SECRET"
#: Largest request body accepted (an action is a few hundred bytes).
MAX_BODY_BYTES = 1 << 20
#: How many deliveries the journal keeps (oldest dropped first).
JOURNAL_SIZE = 10_000


# ---------------------------------------------------------------- state
@dataclass(slots=True)
class TenantState:
    """What the relay's simulated EDR and IdP hold for one tenant, and the answers it already gave.

    Hosts are keyed by lower-case hostname, files by ``host|file``, accounts by lower-case account
    name without ``DOMAIN\\`` or ``@domain`` (as the LDAP connector resolves them).
    """

    isolated_hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    quarantined_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    killed_processes: list[dict[str, Any]] = field(default_factory=list)
    disabled_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        """The state as JSON-ready data (deliveries counted, not listed)."""
        doc = asdict(self)
        doc["deliveries"] = len(self.deliveries)
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TenantState:
        """Rebuild a tenant's state from its state-file form."""
        return cls(
            isolated_hosts=dict(doc.get("isolated_hosts") or {}),
            quarantined_files=dict(doc.get("quarantined_files") or {}),
            killed_processes=list(doc.get("killed_processes") or []),
            disabled_accounts=dict(doc.get("disabled_accounts") or {}),
            revoked_sessions=dict(doc.get("revoked_sessions") or {}),
            deliveries=dict(doc.get("deliveries") or {}),
        )


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    """An HTTP answer of the relay: status and JSON body."""

    status: int
    body: dict[str, Any]


class Refused(Exception):
    """A request the relay will not act on; ``status`` is the 4xx the sender sees (never retried)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def account_key(target: str) -> str:
    """The account a target names: ``CORP\\j.doe``, ``j.doe@corp.example`` and ``J.Doe`` are all ``j.doe``."""
    return target.strip().rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def _text(payload: Mapping[str, Any], key: str, what: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise Refused(422, f"{what} ({key!r}) is missing")
    return value.strip()


def _was(prior: Any, key: str) -> bool:
    return isinstance(prior, Mapping) and prior.get(key) is True


# ---------------------------------------------------------------- operations (pure over TenantState)
def apply_edr(state: TenantState, payload: Mapping[str, Any], at: str) -> dict[str, Any]:
    """Apply one EDR-contract operation to ``state``; returns the ``{"details", "prior"}`` answer.

    ``prior`` in the payload (sent on rollback) is honoured: a host or file that was isolated or
    quarantined before the original action stays so.
    """
    operation = payload.get("operation")
    host = _text(payload, "host", "the host").lower()
    ref = {"action_id": payload.get("action_id"), "case_id": payload.get("case_id"), "at": at}
    if operation == "isolate_host":
        was = host in state.isolated_hosts
        if not was:
            state.isolated_hosts[host] = ref
        return {"details": {"host": host, "isolated": True, "changed": not was}, "prior": {"isolated": was}}
    if operation == "unisolate_host":
        was = host in state.isolated_hosts
        if _was(payload.get("prior"), "isolated"):
            return {"details": {"host": host, "isolated": was, "changed": False, "kept": "isolated before"},
                    "prior": {"isolated": was}}  # fmt: skip
        state.isolated_hosts.pop(host, None)
        return {"details": {"host": host, "isolated": False, "changed": was}, "prior": {"isolated": was}}
    if operation == "kill_process":
        process = _text(payload, "process", "the process")
        state.killed_processes.append({"host": host, "process": process, **ref})
        return {"details": {"host": host, "process": process, "killed": True}}
    if operation in ("quarantine_file", "restore_file"):
        file = _text(payload, "file", "the file")
        key = f"{host}|{file}"
        was = key in state.quarantined_files
        if operation == "quarantine_file":
            if not was:
                state.quarantined_files[key] = {"host": host, "file": file, **ref}
            return {"details": {"host": host, "file": file, "quarantined": True, "changed": not was},
                    "prior": {"quarantined": was}}  # fmt: skip
        if _was(payload.get("prior"), "quarantined"):
            return {"details": {"host": host, "file": file, "quarantined": was, "changed": False,
                                "kept": "quarantined before"}, "prior": {"quarantined": was}}  # fmt: skip
        state.quarantined_files.pop(key, None)
        return {"details": {"host": host, "file": file, "quarantined": False, "restored": was, "changed": was},
                "prior": {"quarantined": was}}  # fmt: skip
    raise Refused(422, f"unknown EDR operation {operation!r}")


def apply_account(state: TenantState, payload: Mapping[str, Any], at: str) -> dict[str, Any]:
    """Apply one account action (disable, enable, revoke sessions) to ``state``; returns the answer.

    An ``enable_account`` that rolls back a disable whose prior was ``{"disabled": true}`` leaves
    the account disabled, as the LDAP connector does.
    """
    kind = payload.get("kind")
    target = _text(payload, "target", "the account")
    account = account_key(target)
    if not account:
        raise Refused(422, f"no account name in {target!r}")
    ref = {"target": target, "action_id": payload.get("action_id"), "case_id": payload.get("case_id"), "at": at}
    params = payload.get("params") if isinstance(payload.get("params"), Mapping) else {}
    was = account in state.disabled_accounts
    if kind == "disable_account":
        if not was:
            state.disabled_accounts[account] = ref
        return {"details": {"account": account, "disabled": True, "changed": not was}, "prior": {"disabled": was}}
    if kind == "enable_account":
        if payload.get("rollback_of") and _was(params.get("prior"), "disabled"):
            return {"details": {"account": account, "disabled": was, "changed": False, "left_disabled": True,
                                "reason": "it was disabled before"}, "prior": {"disabled": was}}  # fmt: skip
        state.disabled_accounts.pop(account, None)
        return {"details": {"account": account, "disabled": False, "changed": was}, "prior": {"disabled": was}}
    if kind == "revoke_sessions":
        entry = state.revoked_sessions.setdefault(account, {"revocations": 0})
        entry.update(ref, revocations=int(entry.get("revocations", 0)) + 1)
        return {"details": {"account": account, "sessions_revoked": True, "revocations": entry["revocations"]}}
    raise Refused(422, f"the relay does not run {kind!r} (it runs {', '.join(sorted(ACCOUNT_KINDS))})")


# ---------------------------------------------------------------- the relay core (no HTTP)
@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One delivery the relay received: when, for which tenant and channel, and what it answered."""

    at: str
    tenant: str
    channel: str
    event: str | None
    delivery: str | None
    status: int
    outcome: str
    replay: bool = False


class RelayCore:
    """Signature check, idempotency, per-tenant state, persistence and journal, independent of HTTP.

    ``secret`` signs for every tenant unless ``tenant_secrets`` gives a tenant its own;
    ``tenants`` (when given) is the only tenants accepted (others get 404); ``clock`` is Unix
    seconds for the timestamp check; ``state_file`` persists state and answered deliveries.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        tenant_secrets: Mapping[str, str | bytes] | None = None,
        tenants: Iterable[str] | None = None,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        self.secret = _as_bytes(secret) if secret else None
        self.tenant_secrets = {t: _as_bytes(s) for t, s in (tenant_secrets or {}).items()}
        if self.secret is None and not self.tenant_secrets:
            raise ValueError("the relay needs a shared secret or per-tenant secrets")
        self.tenants = frozenset(tenants) if tenants is not None else None
        self.state_file = state_file
        self.clock = clock
        self.tolerance = tolerance
        self.problems: list[str] = []
        self.counters: dict[str, int] = {"accepted": 0, "replayed": 0, "refused": 0}
        self._states: dict[str, TenantState] = {}
        self._journal: deque[JournalEntry] = deque(maxlen=JOURNAL_SIZE)
        self._lock = threading.Lock()
        if state_file is not None:
            self._load(state_file)

    # -------------------------------------------------------- receiving
    def receive(self, channel: str, tenant: str | None, headers: Mapping[str, str], body: bytes) -> RelayAnswer:
        """Handle one POST on ``/{channel}/{tenant}`` (``edr`` or ``actions``): verify, dedupe, apply, answer.

        ``tenant=None`` (``POST /{channel}`` without a tenant) takes the tenant from the body; it
        is then proven by that tenant's secret like any other request.  ``headers`` must be
        case-insensitive (Starlette's are) or use the canonical names.
        """
        event, delivery = headers.get(EVENT_HEADER), headers.get(DELIVERY_HEADER)
        tenant = tenant if tenant is not None else _body_tenant(body)
        try:
            answer, replay = self._receive(channel, tenant, headers, body, event, delivery)
        except Refused as exc:
            answer, replay = RelayAnswer(exc.status, {"error": exc.reason}), False
        outcome = "ok" if answer.status < 300 else str(answer.body.get("error"))
        with self._lock:
            self.counters["replayed" if replay else "accepted" if answer.status < 300 else "refused"] += 1
            self._journal.append(JournalEntry(_now_iso(self.clock), tenant, channel, event, delivery, answer.status,
                                              outcome, replay))  # fmt: skip
        level = logging.INFO if answer.status < 300 else logging.WARNING
        log.log(level, "relay %s tenant=%s event=%s delivery=%s -> %d %s%s", channel, tenant, event, delivery,
                answer.status, outcome, " (replay)" if replay else "")  # fmt: skip
        return answer

    def _receive(
        self, channel: str, tenant: str, headers: Mapping[str, str], body: bytes, event: str | None,
        delivery: str | None,
    ) -> tuple[RelayAnswer, bool]:  # fmt: skip
        if channel not in ("edr", "actions"):
            raise Refused(404, f"no channel {channel!r}")
        if self.tenants is not None and tenant not in self.tenants:
            raise Refused(404, f"tenant {tenant!r} is not served by this relay")
        secret = self.tenant_secrets.get(tenant, self.secret)
        if secret is None:
            raise Refused(401, f"no secret for tenant {tenant!r}")
        if len(body) > MAX_BODY_BYTES:
            raise Refused(413, "body too large")
        ts, sig = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        if not verify(secret, ts, sig, body, self.clock(), self.tolerance):
            raise Refused(401, "missing, wrong or stale signature")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refused(400, "body is not JSON") from None
        if not isinstance(payload, dict):
            raise Refused(400, "body is not a JSON object")
        if payload.get("tenant") != tenant:
            raise Refused(403, f"body is for tenant {payload.get('tenant')!r}, not {tenant!r}")
        if not delivery:
            raise Refused(400, f"{DELIVERY_HEADER} is required (it makes the request idempotent)")
        name = payload.get("operation") if channel == "edr" else payload.get("kind")
        prefix = "edr." if channel == "edr" else "action."
        if event != f"{prefix}{name}":
            raise Refused(400, f"event {event!r} does not match the body's {name!r}")
        if channel == "edr" and name not in EDR_KINDS:
            raise Refused(422, f"unknown EDR operation {name!r}")
        digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
        with self._lock:
            state = self._states.setdefault(tenant, TenantState())
            seen = state.deliveries.get(delivery)
            if seen is not None:
                if seen["digest"] != digest:
                    raise Refused(409, f"delivery {delivery} was already used for another request")
                return RelayAnswer(int(seen["status"]), dict(seen["body"])), True
            apply = apply_edr if channel == "edr" else apply_account
            answer = apply(state, payload, _now_iso(self.clock))
            state.deliveries[delivery] = {"digest": digest, "status": 200, "body": answer, "event": event}
            self._save()
        return RelayAnswer(200, answer), False

    # -------------------------------------------------------- reading
    def state(self, tenant: str) -> dict[str, Any]:
        """A snapshot of the tenant's state (empty for a tenant never seen)."""
        with self._lock:
            return json.loads(json.dumps(self._states.get(tenant, TenantState()).view()))

    def tenant_names(self) -> list[str]:
        """The tenants the relay holds state for."""
        with self._lock:
            return sorted(self._states)

    def journal(self, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deliveries (newest last), optionally of one tenant."""
        with self._lock:
            entries = [e for e in self._journal if tenant is None or e.tenant == tenant]
        return [asdict(e) for e in entries[-limit:]] if limit > 0 else []

    # -------------------------------------------------------- persistence
    def _load(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            doc = orjson.loads(path.read_bytes())
            tenants = doc["tenants"]
            self._states = {str(t): TenantState.from_doc(s) for t, s in tenants.items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            try:
                path.replace(aside)
            except OSError:
                aside = path
            problem = f"state file {path} unreadable ({type(exc).__name__}: {exc}); kept as {aside}, starting empty"
            self.problems.append(problem)
            self._states = {}
            log.warning("relay: %s", problem)

    def _save(self) -> None:
        """Write the state file atomically (caller holds the lock)."""
        if self.state_file is None:
            return
        doc = {"version": 1, "tenants": {t: asdict(s) for t, s in self._states.items()}}
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            os.replace(tmp, self.state_file)
        except OSError as exc:  # the action happened (in memory); losing persistence must not fail it
            problem = f"state file {self.state_file} not written: {exc}"
            if problem not in self.problems:
                self.problems.append(problem)
            log.error("relay: %s", problem)


def _body_tenant(body: bytes) -> str:
    """The tenant a body names (empty when it names none; the request is then refused as unsigned or 403)."""
    if len(body) > MAX_BODY_BYTES:
        return ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    tenant = doc.get("tenant") if isinstance(doc, dict) else None
    return tenant if isinstance(tenant, str) else ""


def _as_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat()


# ---------------------------------------------------------------- HTTP
def create_relay_app(core: RelayCore, read_token: str | None = None) -> Any:
    """The relay's FastAPI app: ``POST /edr/{tenant}``, ``POST /actions/{tenant}``, ``GET /state[/{tenant}]``,
    ``GET /journal``, ``GET /healthz``.  With ``read_token`` the GETs (not ``/healthz``) need ``Bearer <token>``."""
    app = FastAPI(title="OpenMDR lab relay", version="1", docs_url=None, redoc_url=None)

    def check_read(request: Request) -> None:
        if read_token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {read_token}".encode()):
            raise HTTPException(401, "read token required")

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Callable[[Request], Any]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        log.info("relay http %s %s -> %d in %.1f ms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - started) * 1000)  # fmt: skip
        return response

    async def receive(channel: str, tenant: str | None, request: Request) -> JSONResponse:
        body = await request.body()
        answer = await run_in_threadpool(core.receive, channel, tenant, request.headers, body)
        return JSONResponse(answer.body, status_code=answer.status)

    @app.post("/edr/{tenant}")
    async def edr(tenant: str, request: Request) -> JSONResponse:
        """The EDR contract: ``edr.<operation>`` deliveries of :class:`WebhookEdrConnector`."""
        return await receive("edr", tenant, request)

    @app.post("/actions/{tenant}")
    async def actions(tenant: str, request: Request) -> JSONResponse:
        """The account-action webhook: ``action.<kind>`` deliveries of :class:`WebhookActionConnector`."""
        return await receive("actions", tenant, request)

    @app.post("/edr")
    async def edr_any(request: Request) -> JSONResponse:
        """The EDR contract for the tenant the body names (one shared connector for every tenant)."""
        return await receive("edr", None, request)

    @app.post("/actions")
    async def actions_any(request: Request) -> JSONResponse:
        """The account-action webhook for the tenant the body names."""
        return await receive("actions", None, request)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness, the counters and any state-file problem."""
        return {"ok": True, "counters": dict(core.counters), "problems": list(core.problems)}

    @app.get("/state")
    def all_state(request: Request) -> dict[str, Any]:
        """Every tenant's state."""
        check_read(request)
        return {t: core.state(t) for t in core.tenant_names()}

    @app.get("/state/{tenant}")
    def tenant_state(tenant: str, request: Request) -> dict[str, Any]:
        """One tenant's state: isolated hosts, quarantined files, killed processes, accounts, sessions."""
        check_read(request)
        return core.state(tenant)

    @app.get("/journal")
    def journal(request: Request, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deliveries with their answers, accepted and refused."""
        check_read(request)
        return core.journal(tenant, max(0, min(limit, JOURNAL_SIZE)))

    return app


class LabRelay:
    """The relay as a real HTTP server in a background thread (labs, tests, ``openmdr demo``).

    ``with LabRelay(secret="...") as relay:`` binds ``host:port`` (0: a free port), serves until
    the block ends, and exposes :attr:`url`, :meth:`state`, :meth:`journal` and :meth:`register`.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tenant_secrets: Mapping[str, str | bytes] | None = None,
        tenants: Iterable[str] | None = None,
        state_file: Path | None = None,
        read_token: str | None = None,
        clock: Callable[[], float] = time.time,
        tolerance: int = DEFAULT_TOLERANCE_SECONDS,
        log_level: str = "warning",
    ) -> None:
        self.core = RelayCore(secret, tenant_secrets, tenants, state_file, clock, tolerance)
        self.host, self.port, self.read_token, self.log_level = host, port, read_token, log_level
        self.app = create_relay_app(self.core, read_token)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL (``http://host:port``) once started."""
        if self._server is None:
            raise RuntimeError("the relay is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def edr_url(self, tenant: str) -> str:
        """Where the tenant's EDR connector posts."""
        return relay_endpoints(self.url, tenant)[0]

    def actions_url(self, tenant: str) -> str:
        """Where the tenant's account-action connector posts."""
        return relay_endpoints(self.url, tenant)[1]

    def start(self, timeout: float = 10.0) -> LabRelay:
        """Bind and serve in a daemon thread; returns once the server accepts connections."""
        import uvicorn

        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level=self.log_level, lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="openmdr-lab-relay",
                                  daemon=True)  # fmt: skip
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the lab relay did not start on {self.host}:{self.port}")
            time.sleep(0.005)
        self._server, self._thread, self._sock = server, thread, sock
        log.info("lab relay listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the server thread."""
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server, self._thread, self._sock = None, None, None

    def __enter__(self) -> LabRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self, tenant: str) -> dict[str, Any]:
        """The tenant's state: isolated_hosts, quarantined_files, killed_processes, disabled_accounts, ..."""
        return self.core.state(tenant)

    def journal(self, tenant: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest deliveries the relay answered or refused."""
        return self.core.journal(tenant, limit)

    def register(self, registry: ConnectorRegistry, tenants: Iterable[str] | None = None,
                 timeout: float = 10.0) -> None:  # fmt: skip
        """Route EDR and account actions to this relay in ``registry`` (in code, no configuration file).

        With ``tenants``, one pair of connectors per tenant (``/edr/{tenant}``, the tenant's own
        secret when one was given); without, one shared pair for every tenant, present and future
        (``/edr`` with the tenant from the body, signed with the shared secret).  A tenant's own
        connectors for the same kinds (an LDAP directory) still come first.
        """
        if tenants is None:
            if self.core.secret is None:
                raise ValueError("shared routing needs the shared secret")
            base = self.url
            registry.add(WebhookEdrConnector(WebhookSender(f"{base}/edr", self.core.secret, timeout),
                                             name="lab-relay-edr"))  # fmt: skip
            registry.add(WebhookActionConnector("lab-relay-accounts", WebhookSender(f"{base}/actions",
                                                self.core.secret, timeout), ACCOUNT_KINDS))  # fmt: skip
            return
        for tenant in tenants:
            secret = self.core.tenant_secrets.get(tenant, self.core.secret)
            if secret is None:
                raise ValueError(f"no secret for tenant {tenant!r}")
            edr_url, actions_url = relay_endpoints(self.url, tenant)
            registry.add(WebhookEdrConnector(WebhookSender(edr_url, secret, timeout), name="lab-relay-edr"), tenant)
            registry.add(WebhookActionConnector(f"lab-relay-accounts:{tenant}", WebhookSender(actions_url, secret,
                                                timeout), ACCOUNT_KINDS), tenant)  # fmt: skip


def relay_endpoints(relay_url: str, tenant: str) -> tuple[str, str]:
    """The EDR and account-action URLs of ``tenant`` on the relay at ``relay_url``."""
    base = relay_url.rstrip("/")
    name = quote(tenant, safe="")
    return f"{base}/edr/{name}", f"{base}/actions/{name}"


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML for every character)."""
    return json.dumps(value, ensure_ascii=False)


def write_response_config(
    path: Path,
    tenants: Iterable[str],
    relay_url: str,
    secret_env: str | Mapping[str, str] = RELAY_SECRET_ENV,
    timeout: float = 10.0,
    overwrite: bool = False,
) -> Path:
    """Write a response configuration (``response.toml``) routing each tenant's EDR and account actions to the relay.

    ``secret_env`` names the environment variable holding the secret, one for all or one per
    tenant.  The file is what :func:`~openmdr.respond.config.load_response_config` reads
    (``[tenants.<t>.edr]`` and ``[tenants.<t>.webhook_actions]``); an existing file is only
    replaced with ``overwrite=True``.
    """
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    kinds = ", ".join(_toml_string(k) for k in sorted(ACCOUNT_KINDS))
    lines = ["# Written by openmdr.respond.relay.write_response_config: every tenant's host and account",
             f"# actions go to the lab relay at {relay_url}.", ""]  # fmt: skip
    for tenant in tenants:
        env = secret_env if isinstance(secret_env, str) else secret_env[tenant]
        edr_url, actions_url = relay_endpoints(relay_url, tenant)
        key = _toml_string(tenant)
        lines += [
            f"[tenants.{key}.edr]", 'type = "webhook"', f"url = {_toml_string(edr_url)}",
            f"secret_env = {_toml_string(env)}", f"timeout = {float(timeout)}", "",
            f"[tenants.{key}.webhook_actions]", f"url = {_toml_string(actions_url)}",
            f"secret_env = {_toml_string(env)}", f"timeout = {float(timeout)}", f"kinds = [{kinds}]", "",
        ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
