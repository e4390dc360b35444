"""The syslog listener: UDP, TCP (RFC 6587) and TLS (RFC 5425) into the ingest pipeline.

Sockets are served by asyncio in a background thread; framed messages are buffered
and handed in batches (``batch_size`` messages or ``flush_interval`` seconds) to a
worker thread that calls the :class:`~openmdr.pipeline.RecordSink`, so a slow pipeline
never blocks a socket.  When too much is in flight, TCP and TLS connections stop being
read (the senders' TCP windows close: backpressure, not loss); UDP cannot be slowed, so
it is buffered up to a hard cap beyond which datagrams are counted as dropped.

The tenant of a message is decided by the route of its arrival, never by its content:
a :class:`~openmdr.config.SyslogRoute` names the tenant of a dedicated listener port
and/or of peer networks.  A message from a peer no route covers is dead-lettered as a
rejection ("no tenant route for peer ...") with an empty tenant, never dropped.  Every
record carries ``context = {"received_at", "peer", "transport"}`` and the origin
``syslog/<transport> <ip>:<port>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import queue
import ssl
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from openmdr.config import SyslogRoute, SyslogSettings
from openmdr.ingest.detect import detect_message_format
from openmdr.ingest.framing import SyslogFrameDecoder
from openmdr.models import RawRecord, Rejection

if TYPE_CHECKING:
    from openmdr.pipeline import RecordSink

log = logging.getLogger(__name__)

Item = RawRecord | Rejection
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _peer(address: Any) -> tuple[str, int]:
    """(ip, port) of a socket peer; IPv4-mapped IPv6 addresses are given as IPv4."""
    if not address:
        return "unknown", 0
    ip, port = str(address[0]), int(address[1])
    if ip.startswith("::ffff:"):
        mapped = ipaddress.ip_address(ip).ipv4_mapped  # type: ignore[union-attr]
        if mapped is not None:
            ip = str(mapped)
    return ip, port


class SyslogRouter:
    """Decides the tenant of a message from the listener port it arrived on and the peer address.

    The most specific matching route wins: one bound to the port beats one that is not,
    then the longest matching peer prefix; equal routes go by configuration order.  A
    route must name a port, peers, or both, and all it names must match.
    """

    def __init__(self, routes: Sequence[SyslogRoute]) -> None:
        self._routes: list[tuple[str, int | None, list[_Network]]] = []
        for route in routes:
            networks = [ipaddress.ip_network(cidr, strict=False) for cidr in route.peers]
            if route.port is None and not networks:
                raise ValueError(f"syslog route for tenant {route.tenant!r} names neither a port nor peers")
            self._routes.append((route.tenant, route.port, networks))
        self._cache: dict[tuple[int, str], str | None] = {}

    def tenant_for(self, local_port: int, peer_ip: str) -> str | None:
        """The tenant of messages from ``peer_ip`` on listener port ``local_port``, or None."""
        key = (local_port, peer_ip)
        try:
            return self._cache[key]
        except KeyError:
            pass
        try:
            address = ipaddress.ip_address(peer_ip)
        except ValueError:
            address = None
        best: tuple[int, int] | None = None
        tenant: str | None = None
        for name, port, networks in self._routes:
            if port is not None and port != local_port:
                continue
            prefix = -1
            if networks:
                if address is None:
                    continue
                prefix = max(
                    (n.prefixlen for n in networks if n.version == address.version and address in n),
                    default=-2,
                )
                if prefix == -2:
                    continue
            score = (1 if port is not None else 0, prefix)
            if best is None or score > best:
                best, tenant = score, name
        if len(self._cache) > 65_536:
            self._cache.clear()
        self._cache[key] = tenant
        return tenant


class _StreamProtocol(asyncio.Protocol):
    """One TCP or TLS syslog connection: RFC 6587 framing into the listener's buffer."""

    def __init__(self, listener: SyslogListener, transport_name: str, local_port: int) -> None:
        self.listener = listener
        self.name = transport_name
        self.local_port = local_port
        self.decoder = SyslogFrameDecoder(listener.settings.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.ip = "unknown"
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ip, self.port = _peer(transport.get_extra_info("peername"))
        self.listener._connection_opened(self)

    def data_received(self, data: bytes) -> None:
        messages, errors = self.decoder.feed(data)
        if messages or errors:
            self.listener._accept(self.name, self.local_port, self.ip, self.port, messages, errors)
        self.listener._activity += 1

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        messages, errors = self.decoder.close()
        if messages or errors:
            self.listener._accept(self.name, self.local_port, self.ip, self.port, messages, errors)
        self.listener._connection_closed(self)


class _DatagramProtocol(asyncio.DatagramProtocol):
    """UDP syslog: one datagram is one message (a trailing LF/CRLF/NUL is not part of it)."""

    def __init__(self, listener: SyslogListener, local_port: int) -> None:
        self.listener = listener
        self.local_port = local_port
        self.limit = listener.settings.max_message_bytes

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ip, port = _peer(addr)
        message = data.rstrip(b"\r\n\x00") if data[-1:] in (b"\n", b"\x00") else data
        listener = self.listener
        listener._activity += 1
        if len(message) > self.limit:
            reason = f"oversized syslog message: {len(message)} bytes > limit {self.limit}"
            listener._accept("udp", self.local_port, ip, port, [], [(message[: self.limit], reason)])
        elif not message:
            listener._accept("udp", self.local_port, ip, port, [], [(data, "empty syslog datagram")])
        else:
            listener._accept("udp", self.local_port, ip, port, [message], [])

    def error_received(self, exc: Exception) -> None:
        log.warning("syslog udp socket error: %s", exc)


class SyslogListener:
    """Receives syslog over UDP, TCP and TLS and delivers it to a record sink in batches.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  Ports set to 0 in the
    settings are chosen by the OS; :attr:`ports` gives the bound ones.  :meth:`stop`
    waits for data already sent to arrive, closes connections (their last unterminated
    message is kept), and flushes every buffer to the sink before returning.
    """

    def __init__(
        self,
        sink: RecordSink,
        settings: SyslogSettings,
        *,
        batch_size: int = 2_000,
        flush_interval: float = 0.1,
        max_in_flight: int = 50_000,
        drain_timeout: float = 2.0,
    ) -> None:
        self.sink = sink
        self.settings = settings
        self.router = SyslogRouter(settings.routes)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_in_flight = max_in_flight
        self.udp_cap = max_in_flight * 20
        self.drain_timeout = drain_timeout
        self.ports: dict[str, int] = {}
        self.endpoints: list[tuple[str, str, int]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._conns: set[_StreamProtocol] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._queue: queue.Queue[dict[str, list[Item]] | None] = queue.Queue()
        self._pending: dict[str, list[Item]] = {}
        self._pending_count = 0
        self._in_flight = 0
        self._paused = False
        self._stopping = False
        self._activity = 0
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "received", "rejected", "udp", "tcp", "tls", "connections", "dropped", "backpressure",
                "submitted", "stored", "duplicates", "sink_rejected", "sink_errors", "lost",
            ),
            0,
        )  # fmt: skip

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SyslogListener:
        """Bind every configured socket and start serving; raise if a socket cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("syslog listener already started")
        if self.settings.tls_port is not None and not (self.settings.tls_cert and self.settings.tls_key):
            raise ValueError("syslog TLS port configured without tls_cert and tls_key")
        self._worker = threading.Thread(target=self._work, name="syslog-submit", daemon=True)
        self._worker.start()
        self._thread = threading.Thread(target=self._serve, name="syslog-listener", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            error = self._startup_error
            self._thread.join()
            self._queue.put(None)
            self._worker.join()
            self._thread = None
            raise error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, take in what was already sent, flush everything to the sink.

        ``timeout`` bounds closing the sockets; the sink then gets every buffered message.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        finally:
            self._queue.put(None)
            if self._worker is not None:
                self._worker.join()  # every buffered message reaches the sink, however long it takes
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None
            self._loop = None

    def __enter__(self) -> SyslogListener:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of the counters: received/rejected by the listener, per transport, sink outcome."""
        with self._lock:
            return dict(self._counts)

    def describe(self) -> str:
        """Human summary of the bound endpoints, e.g. ``udp 127.0.0.1:5514, tcp 127.0.0.1:5514``."""
        return ", ".join(f"{name} {host}:{port}" for name, host, port in self.endpoints) or "no sockets"

    # ------------------------------------------------------------------ event loop thread

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open_sockets())
        except BaseException as exc:  # reported to start()'s caller
            self._startup_error = exc
            for server in self._servers:
                server.close()
            for transport in self._udp:
                transport.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            self._loop = None
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _open_sockets(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        host = s.host
        if s.udp_port is not None:
            self.ports["udp"] = await self._open_udp(loop, host, s.udp_port)
        if s.tcp_port is not None:
            self.ports["tcp"] = await self._open_stream(loop, host, s.tcp_port, "tcp", None)
        if s.tls_port is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(s.tls_cert), str(s.tls_key))
            self.ports["tls"] = await self._open_stream(loop, host, s.tls_port, "tls", context)
        main = {s.udp_port, s.tcp_port, s.tls_port}
        for port in sorted({r.port for r in s.routes if r.port is not None} - main):
            await self._open_udp(loop, host, port)
            await self._open_stream(loop, host, port, "tcp", None)
        self._ticker = loop.create_task(self._tick())

    async def _open_udp(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> int:
        holder: list[_DatagramProtocol] = []

        def factory() -> _DatagramProtocol:
            holder.append(_DatagramProtocol(self, port))
            return holder[-1]

        transport, _ = await loop.create_datagram_endpoint(factory, local_addr=(host, port))
        bound = transport.get_extra_info("sockname")[1]
        for protocol in holder:
            protocol.local_port = bound
        self._udp.append(transport)
        self.endpoints.append(("udp", host, bound))
        return bound

    async def _open_stream(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, name: str, context: ssl.SSLContext | None
    ) -> int:
        local: list[int] = [port]
        server = await loop.create_server(
            lambda: _StreamProtocol(self, name, local[0]), host, port, ssl=context, backlog=512
        )
        local[0] = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        self.endpoints.append((name, host, local[0]))
        return local[0]

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            if self._pending_count:
                self._handoff()

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = True
        self._resume()
        deadline = loop.time() + self.drain_timeout
        seen = -1
        while loop.time() < deadline and seen != self._activity:  # until the sockets go quiet
            seen = self._activity
            await asyncio.sleep(0.05)
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.close()
        while self._conns and loop.time() < deadline + 1.0:
            await asyncio.sleep(0.01)
        for conn in list(self._conns):  # a TLS peer that never answers the close: abort it
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)
        if self._ticker is not None:
            self._ticker.cancel()
        self._handoff()

    # ------------------------------------------------------------------ receive path (loop thread)

    def _connection_opened(self, conn: _StreamProtocol) -> None:
        self._conns.add(conn)
        self._counts["connections"] += 1
        if self._paused and conn.transport is not None:
            conn.transport.pause_reading()

    def _connection_closed(self, conn: _StreamProtocol) -> None:
        self._conns.discard(conn)

    def _accept(
        self,
        transport: str,
        local_port: int,
        ip: str,
        port: int,
        messages: list[bytes],
        errors: list[tuple[bytes, str]],
    ) -> None:
        """Turn framed messages of one read into records or rejections and buffer them."""
        counts = self._counts
        total = len(messages) + len(errors)
        if transport == "udp" and self._in_flight + self._pending_count >= self.udp_cap:
            counts["dropped"] += total  # UDP cannot be slowed down; memory must stay bounded
            return
        counts["received"] += total
        counts[transport] += total
        now = datetime.now(UTC)
        peer = f"{ip}:{port}"
        origin = f"syslog/{transport} {peer}"
        context = {"received_at": now, "peer": peer, "transport": transport}
        tenant = self.router.tenant_for(local_port, ip)
        items: list[Item]
        if tenant is None:
            reason = f"no tenant route for peer {ip}"
            items = [
                Rejection(m, reason, origin, detect_message_format(m), "", "route", now, context) for m in messages
            ]
            items.extend(Rejection(p, f"{reason}; {r}", origin, None, "", "route", now, context) for p, r in errors)
            counts["rejected"] += total
            tenant = ""
        else:
            items = [RawRecord(m, detect_message_format(m), origin, context) for m in messages]
            if errors:
                items.extend(Rejection(p, r, origin, None, tenant, "collect", now, context) for p, r in errors)
                counts["rejected"] += len(errors)
        bucket = self._pending.get(tenant)
        if bucket is None:
            self._pending[tenant] = items
        else:
            bucket.extend(items)
        self._pending_count += total
        if self._pending_count >= self.batch_size:
            self._handoff()

    def _handoff(self) -> None:
        """Pass the buffered items to the submit worker; pause TCP reading when too much is in flight."""
        if not self._pending_count:
            return
        batch, count = self._pending, self._pending_count
        self._pending, self._pending_count = {}, 0
        with self._lock:
            self._in_flight += count
            in_flight = self._in_flight
        self._queue.put(batch)
        if in_flight >= self.max_in_flight and not self._paused and not self._stopping:
            self._paused = True
            self._counts["backpressure"] += 1
            for conn in self._conns:
                if conn.transport is not None:
                    conn.transport.pause_reading()

    def _resume(self) -> None:
        if not self._paused:
            return
        if self._stopping or self._in_flight < self.max_in_flight // 2:
            self._paused = False
            for conn in self._conns:
                if conn.transport is not None and not conn.transport.is_closing():
                    conn.transport.resume_reading()

    # ------------------------------------------------------------------ submit worker thread

    def _work(self) -> None:
        done = False
        while not done:
            batch = self._queue.get()
            if batch is None:
                break
            count = sum(len(v) for v in batch.values())
            while count < self.batch_size * 10:  # merge what queued up meanwhile: fewer, bigger writes
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                for tenant, items in more.items():
                    batch.setdefault(tenant, []).extend(items)
                    count += len(items)
            for tenant, items in batch.items():
                self._submit(tenant, items)
            with self._lock:
                self._in_flight -= count
            loop = self._loop
            if loop is not None and self._paused:
                with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                    loop.call_soon_threadsafe(self._resume)

    def _submit(self, tenant: str, items: list[Item]) -> None:
        try:
            report = self.sink.submit(tenant, items)
        except Exception as exc:  # the route names an unknown tenant, or the store failed
            log.error("syslog batch of %d for tenant %r refused by the pipeline: %s", len(items), tenant, exc)
            with self._lock:
                self._counts["sink_errors"] += 1
            reason = f"pipeline refused the batch for tenant {tenant!r}: {exc}"
            letters = [
                Rejection(i.payload, reason, i.origin, i.format, "", "route", context=i.context)
                if isinstance(i, RawRecord)
                else i
                for i in items
            ]
            try:
                report = self.sink.submit("", letters)
            except Exception as again:
                log.error("syslog batch of %d lost: dead-lettering failed too: %s", len(items), again)
                with self._lock:
                    self._counts["lost"] += len(items)
                return
        with self._lock:
            c = self._counts
            c["submitted"] += len(items)
            c["stored"] += report.stored
            c["duplicates"] += report.duplicates
            c["sink_rejected"] += report.rejected
