"""Fixtures of the response tests: tenants and inventory, a signed-webhook receiver acting as EDR, slapd, EDL server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from openmdr.models import AssetInfo, TenantInfo
from openmdr.respond.clock import ManualClock
from openmdr.respond.connectors.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from openmdr.store.state import StateStore
from tests.conftest import IN_CI

WEBHOOK_SECRET = b"test-webhook-secret-\x00\xff"
#: Monday 2 March 2026, 03:00 in Berlin (02:00 UTC): off hours for acme.
ACME_NIGHT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
#: Monday 2 March 2026, 10:00 in Berlin: working hours for acme.
ACME_DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

ACME_ASSETS = [
    AssetInfo("BER-WS-007", ("10.10.10.27",), "l.mueller", "low", "workstation", True),
    AssetInfo("BER-NB-012", ("10.10.10.32",), "a.schmidt", "medium", "workstation", True),
    AssetInfo("ACME-FS01", ("10.10.0.20",), "it-infrastructure", "high", "server", True),
    AssetInfo("ACME-SQL01", ("10.10.0.22",), "erp-team", "critical", "server", True),
    AssetInfo("ACME-DC01", ("10.10.0.10",), "it-infrastructure", "critical", "domain_controller", True),
    AssetInfo("ACME-GW01", ("10.10.0.1",), "it-infrastructure", "high", "network", False),
]
GLOBEX_ASSETS = [
    AssetInfo("NYC-WS-007", ("10.10.10.27",), "jsmith", "low", "workstation", True),
    AssetInfo("GLX-FS01", ("10.10.0.20",), "it-infrastructure", "high", "server", True),
]


def add_tenants(state: StateStore) -> None:
    """acme (Berlin) and globex (New York), sharing the private range 10.10.0.0/16 as in the generator."""
    state.create_tenant(TenantInfo("acme", "ACME", "Europe/Berlin", (8, 17), (0, 1, 2, 3, 4),
                                   ("10.10.0.0/16",), ("acme.example", "corp.acme.example")), "test")  # fmt: skip
    state.create_tenant(TenantInfo("globex", "Globex", "America/New_York", (9, 18), (0, 1, 2, 3, 4),
                                   ("10.10.0.0/16",), ("globex.example",)), "test")  # fmt: skip
    state.upsert_assets("acme", ACME_ASSETS, "test")
    state.upsert_assets("globex", GLOBEX_ASSETS, "test")


@pytest.fixture()
def tenants_store(state_store: StateStore) -> StateStore:
    """A migrated state store (each backend) with the acme and globex tenants and inventories."""
    add_tenants(state_store)
    return state_store


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite state store with both tenants, built once and copied by :func:`sqlite_tenants`."""
    path = tmp_path_factory.mktemp("respond-template") / "state.db"
    store = StateStore(f"sqlite:///{path}")
    store.migrate()
    add_tenants(store)
    store.close()
    return path


@pytest.fixture()
def sqlite_tenants(sqlite_template: Path, tmp_path: Path) -> Iterator[StateStore]:
    """A fresh copy of the template store (SQLite only: for logic tests that are not about the backend)."""
    target = tmp_path / "state.db"
    shutil.copyfile(sqlite_template, target)
    store = StateStore(f"sqlite:///{target}", blob_dir=tmp_path / "blobs")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture()
def clock() -> ManualClock:
    """A controllable clock starting at 03:00 Berlin time on a Monday."""
    return ManualClock(ACME_NIGHT)


# ---------------------------------------------------------------- signed webhook receiver
@dataclass
class Received:
    """One request the receiver got."""

    event: str
    delivery: str
    payload: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that verifies signatures and keeps EDR host state.

    ``fail_next`` lists status codes to answer before succeeding; ``hold`` makes EDR operations
    wait until it is set (to provoke the engine's attempt timeout).
    """

    url: str = ""
    secret: bytes = WEBHOOK_SECRET
    requests: list[Received] = field(default_factory=list)
    rejected: int = 0
    fail_next: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    isolated: set[tuple[str, str]] = field(default_factory=set)
    quarantined: set[tuple[str, str, str]] = field(default_factory=set)
    killed: list[tuple[str, str, str]] = field(default_factory=list)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, event: str, delivery: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Apply an EDR operation idempotently (a repeated delivery gets the first answer)."""
        with self.lock:
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "injected"}
            if delivery in self.done:
                return 200, self.done[delivery]
            op = payload.get("operation")
            key = (payload.get("tenant", ""), str(payload.get("host", "")).lower())
            body: dict[str, Any] = {}
            if op == "isolate_host":
                body = {"details": {"isolated": True}, "prior": {"isolated": key in self.isolated}}
                self.isolated.add(key)
            elif op == "unisolate_host":
                prior = payload.get("prior") or {}
                if prior.get("isolated"):
                    body = {"details": {"isolated": True, "kept": "was isolated before"}}
                else:
                    self.isolated.discard(key)
                    body = {"details": {"isolated": False}}
            elif op == "kill_process":
                self.killed.append((*key, str(payload.get("process"))))
                body = {"details": {"killed": True}}
            elif op == "quarantine_file":
                fkey = (*key, str(payload.get("file")))
                body = {"details": {"quarantined": True}, "prior": {"quarantined": fkey in self.quarantined}}
                self.quarantined.add(fkey)
            elif op == "restore_file":
                if not (payload.get("prior") or {}).get("quarantined"):
                    self.quarantined.discard((*key, str(payload.get("file"))))
                body = {"details": {"restored": True}}
            self.done[delivery] = body
            return 200, body


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """The signed-webhook receiver on a free loopback port (stopped afterwards)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify(state.secret, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER), body,
                        time.time())  # fmt: skip
            if not ok:
                state.rejected += 1
                self._send(401, {"error": "bad signature"})
                return
            payload = orjson.loads(body)
            event, delivery = self.headers.get(EVENT_HEADER, ""), self.headers.get(DELIVERY_HEADER, "")
            state.requests.append(Received(event, delivery, payload, ok))
            if state.hold is not None and payload.get("operation"):
                state.hold.wait(10)
            status, answer = state.answer(event, delivery, payload)
            self._send(status, answer)

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = orjson.dumps(doc)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- slapd
@dataclass(frozen=True)
class Slapd:
    """A running slapd: URL, admin credentials and the people subtree."""

    url: str
    admin_dn: str
    admin_password: str
    base_dn: str
    people_dn: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
maxsize 16777216
suffix "dc=acme,dc=example"
rootdn "cn=admin,dc=acme,dc=example"
rootpw {password}
directory {dir}/db
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=acme,dc=example"
"""


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A private slapd (mdb + ppolicy) on a free loopback port with a temporary config and database."""
    import ldap3

    binary = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None)
    if binary is None:
        if IN_CI:
            pytest.fail("slapd is not installed (CI=true): .ci/run installs it")
        pytest.skip("slapd is not installed (apt-get install slapd)")
    workdir = tmp_path_factory.mktemp("slapd")
    (workdir / "db").mkdir()
    password = "admin-secret"
    conf = workdir / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(dir=workdir, password=password))
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = (workdir / "slapd.log").open("wb")
    proc = subprocess.Popen([binary, "-f", str(conf), "-h", f"{url}/", "-d", "0"], stdout=log, stderr=log)
    info = Slapd(url, "cn=admin,dc=acme,dc=example", password, "dc=acme,dc=example", "ou=people,dc=acme,dc=example")
    try:
        conn = None
        deadline = time.monotonic() + 15
        while conn is None:
            try:
                conn = ldap3.Connection(ldap3.Server(url, connect_timeout=1), info.admin_dn, password, auto_bind=True)
            except ldap3.core.exceptions.LDAPException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"slapd did not start: {(workdir / 'slapd.log').read_text()}") from None
                time.sleep(0.05)
        conn.add(info.base_dn, ["dcObject", "organization"], {"o": "ACME", "dc": "acme"})
        conn.add(info.people_dn, ["organizationalUnit"], {"ou": "people"})
        conn.add("ou=policies,dc=acme,dc=example", ["organizationalUnit"], {"ou": "policies"})
        conn.add("cn=default,ou=policies,dc=acme,dc=example", ["pwdPolicy", "person"],
                 {"cn": "default", "sn": "policy", "pwdAttribute": "userPassword", "pwdLockout": "TRUE"})  # fmt: skip
        conn.unbind()
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
