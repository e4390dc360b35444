"""The syslog listener over real loopback sockets: UDP, TCP (both framings), TLS, routing, shutdown."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from openmdr.config import SyslogRoute, SyslogSettings
from openmdr.ingest.syslog_listener import SyslogListener, SyslogRouter
from openmdr.models import RawRecord, Rejection
from tests.ingest.sinks import CollectingSink

HOST = "127.0.0.1"
SSHD = "<38>1 2026-03-02T10:00:{s:02d}.000Z bastion sshd 4121 - - Failed password for root from 203.0.113.{n}"
CEF = b"<134>Mar  2 10:00:00 fw01 CEF:0|Acme|EdgeWall|4.2|100|Blocked inbound|7|src=203.0.113.9 dst=10.1.1.5"


def _sshd(n: int) -> bytes:
    return SSHD.format(s=n % 60, n=n % 250).encode()


def _octet(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


def _settings(**kw: object) -> SyslogSettings:
    base: dict[str, object] = {"host": HOST, "udp_port": 0, "tcp_port": 0, "tls_port": None,
                               "routes": [SyslogRoute(tenant="acme", peers=["127.0.0.0/8"])]}  # fmt: skip
    base.update(kw)
    return SyslogSettings(**base)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tcp_send(port: int, data: bytes) -> None:
    with socket.create_connection((HOST, port)) as s:
        s.sendall(data)


def _payloads(items: list[tuple[str, RawRecord | Rejection]]) -> list[bytes]:
    return [i.payload for _, i in items]


# ---------------------------------------------------------------------------- routing


def test_router_prefers_port_then_longest_prefix() -> None:
    router = SyslogRouter([
        SyslogRoute(tenant="wide", peers=["10.0.0.0/8"]),
        SyslogRoute(tenant="narrow", peers=["10.1.0.0/16", "fd00::/8"]),
        SyslogRoute(tenant="dedicated", port=6514),
        SyslogRoute(tenant="dedicated-branch", port=6514, peers=["10.9.0.0/16"]),
    ])  # fmt: skip
    assert router.tenant_for(5514, "10.2.3.4") == "wide"
    assert router.tenant_for(5514, "10.1.3.4") == "narrow"
    assert router.tenant_for(5514, "fd00::5") == "narrow"
    assert router.tenant_for(6514, "10.1.3.4") == "dedicated"
    assert router.tenant_for(6514, "10.9.0.1") == "dedicated-branch"
    assert router.tenant_for(6514, "192.0.2.1") == "dedicated"
    assert router.tenant_for(5514, "192.0.2.1") is None
    assert router.tenant_for(5514, "not-an-ip") is None


def test_route_without_port_or_peers_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="neither a port nor peers"):
        SyslogRouter([SyslogRoute(tenant="x")])


# ---------------------------------------------------------------------------- transports


def test_udp_one_datagram_one_message_with_context() -> None:
    sink = CollectingSink()
    with SyslogListener(sink, _settings(), flush_interval=0.02) as listener:
        port = listener.ports["udp"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            local = s.getsockname()[1]
            s.sendto(_sshd(1) + b"\n", (HOST, port))
            s.sendto(CEF, (HOST, port))
            s.sendto(b"<14>multi\nline datagram", (HOST, port))
            items = sink.wait_for(3)
    assert [t for t, _ in items] == ["acme"] * 3
    assert _payloads(items) == [_sshd(1), CEF, b"<14>multi\nline datagram"]
    assert [i.format for _, i in items] == ["syslog", "cef", "syslog"]
    record = items[0][1]
    assert isinstance(record, RawRecord) and record.origin == f"syslog/udp {HOST}:{local}"
    assert record.context["transport"] == "udp" and record.context["peer"] == f"{HOST}:{local}"
    assert isinstance(record.context["received_at"], dt.datetime) and record.context["received_at"].tzinfo
    assert listener.counters["udp"] == 3 and listener.counters["submitted"] == 3


def test_tcp_octet_counting_many_messages_in_order() -> None:
    sink = CollectingSink()
    messages = [_sshd(i) for i in range(5000)]
    with SyslogListener(sink, _settings(udp_port=None)) as listener:
        _tcp_send(listener.ports["tcp"], b"".join(_octet(m) for m in messages))
        items = sink.wait_for(len(messages))
    assert _payloads(items) == messages
    assert all(isinstance(i, RawRecord) and i.context["transport"] == "tcp" for _, i in items)
    assert listener.counters["tcp"] == 5000 and listener.counters["connections"] == 1


def test_tcp_newline_framing_lf_crlf_nul_and_last_message_without_end() -> None:
    sink = CollectingSink()
    with SyslogListener(sink, _settings(udp_port=None)) as listener:
        port = listener.ports["tcp"]
        with socket.create_connection((HOST, port)) as s:
            s.sendall(_sshd(1) + b"\n" + _sshd(2) + b"\r\n" + CEF + b"\x00")
            time.sleep(0.05)
            s.sendall(_octet(_sshd(3)) + _sshd(4))  # octet-counted, then an unterminated one
        items = sink.wait_for(5)
    assert _payloads(items) == [_sshd(1), _sshd(2), CEF, _sshd(3), _sshd(4)]
    assert [i.format for _, i in items] == ["syslog", "syslog", "cef", "syslog", "syslog"]


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 / localhost."""
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address(HOST))])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_tls_rfc5425(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)
    sink = CollectingSink()
    settings = _settings(udp_port=None, tcp_port=None, tls_port=0, tls_cert=cert, tls_key=key)
    with SyslogListener(sink, settings) as listener:
        port = listener.ports["tls"]
        client = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection((HOST, port)) as raw,
            client.wrap_socket(raw, server_hostname=HOST) as s,
        ):
            s.sendall(b"".join(_octet(_sshd(i)) for i in range(200)))
        items = sink.wait_for(200)
        # a plaintext client on the TLS port gets nothing in
        _tcp_send(port, _octet(_sshd(999)))
        time.sleep(0.2)
    assert _payloads(items) == [_sshd(i) for i in range(200)]
    assert {i.context["transport"] for _, i in items} == {"tls"}
    assert items[0][1].origin.startswith("syslog/tls 127.0.0.1:")
    assert len(sink.items) == 200


def test_tls_without_certificate_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="tls_cert"):
        SyslogListener(CollectingSink(), _settings(tls_port=0)).start()


# ---------------------------------------------------------------------------- routing on the wire


def test_unrouted_peer_is_dead_lettered_not_dropped() -> None:
    sink = CollectingSink()
    settings = _settings(routes=[SyslogRoute(tenant="acme", peers=["10.0.0.0/8"])])
    with SyslogListener(sink, settings) as listener:
        _tcp_send(listener.ports["tcp"], _octet(_sshd(1)) + _octet(CEF))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(_sshd(2), (HOST, listener.ports["udp"]))
        items = sink.wait_for(3)
    assert len(items) == 3
    assert all(t == "" and isinstance(i, Rejection) for t, i in items)
    assert {i.reason for _, i in items} == {f"no tenant route for peer {HOST}"}
    assert sorted(i.format for _, i in items) == ["cef", "syslog", "syslog"]
    assert sorted(_payloads(items)) == sorted([_sshd(1), CEF, _sshd(2)])
    assert listener.counters["rejected"] == 3


def test_route_by_dedicated_port() -> None:
    sink = CollectingSink()
    dedicated = _free_port()
    routes = [SyslogRoute(tenant="acme", peers=["127.0.0.0/8"]), SyslogRoute(tenant="globex", port=dedicated)]
    with SyslogListener(sink, _settings(routes=routes)) as listener:
        assert ("tcp", HOST, dedicated) in listener.endpoints and (
            "udp",
            HOST,
            dedicated,
        ) in listener.endpoints
        _tcp_send(dedicated, _octet(b"<13>for globex"))
        _tcp_send(listener.ports["tcp"], _octet(b"<13>for acme"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>udp for globex", (HOST, dedicated))
        items = sink.wait_for(3)
    by_tenant = {p: t for t, p in ((t, i.payload) for t, i in items)}
    assert by_tenant == {
        b"<13>for globex": "globex",
        b"<13>for acme": "acme",
        b"<13>udp for globex": "globex",
    }


# ---------------------------------------------------------------------------- limits and failures


def test_oversized_messages_are_rejected_and_the_stream_goes_on() -> None:
    sink = CollectingSink()
    with SyslogListener(sink, _settings(max_message_bytes=1000)) as listener:
        big = b"<13>" + b"X" * 5000
        _tcp_send(listener.ports["tcp"], _octet(big) + _octet(_sshd(1)) + big + b"\n" + _sshd(2) + b"\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(big, (HOST, listener.ports["udp"]))
        items = sink.wait_for(5)
    records = sorted(i.payload for _, i in items if isinstance(i, RawRecord))
    rejections = [i for _, i in items if isinstance(i, Rejection)]
    assert records == sorted([_sshd(1), _sshd(2)])
    assert len(rejections) == 3
    assert all(r.reason.startswith("oversized syslog message: 5004 bytes > limit 1000") for r in rejections)
    assert all(r.payload == big[:1000] and r.tenant == "acme" for r in rejections)


def test_graceful_stop_flushes_everything_already_sent() -> None:
    sink = CollectingSink()
    listener = SyslogListener(sink, _settings(), batch_size=1_000_000, flush_interval=60)
    listener.start()
    messages = [_sshd(i) for i in range(3000)]
    _tcp_send(listener.ports["tcp"], b"".join(_octet(m) for m in messages[:2000]))
    with socket.create_connection((HOST, listener.ports["tcp"])) as open_conn:
        open_conn.sendall(b"".join(m + b"\n" for m in messages[2000:2999]) + messages[2999])  # last one unterminated
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>udp before stop", (HOST, listener.ports["udp"]))
        time.sleep(0.05)
        assert sink.items == []  # nothing flushed yet: batch and interval are far away
        listener.stop()
    got = _payloads(sink.items)
    assert sorted(got) == sorted([*messages, b"<13>udp before stop"])
    assert listener.counters["received"] == listener.counters["submitted"] == 3001


def test_slow_pipeline_applies_backpressure_without_loss() -> None:
    sink = CollectingSink(delay=0.05)
    messages = [_sshd(i) for i in range(20_000)]
    settings = _settings(udp_port=None)
    with SyslogListener(sink, settings, batch_size=500, max_in_flight=1000) as listener:
        senders = [
            threading.Thread(target=_tcp_send, args=(listener.ports["tcp"], b"".join(_octet(m) for m in chunk)))
            for chunk in (messages[:10_000], messages[10_000:])
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        items = sink.wait_for(len(messages), timeout=60)
    assert sorted(_payloads(items)) == sorted(messages)
    assert listener.counters["backpressure"] >= 1


def test_sink_refusing_a_tenant_gets_the_batch_dead_lettered() -> None:
    sink = CollectingSink(refuse=lambda tenant: LookupError(f"unknown tenant {tenant!r}") if tenant else None)
    with SyslogListener(sink, _settings(routes=[SyslogRoute(tenant="ghost", peers=["127.0.0.1/32"])])) as listener:
        _tcp_send(listener.ports["tcp"], _octet(_sshd(1)))
        items = sink.wait_for(1)
    ((tenant, item),) = items
    assert tenant == "" and isinstance(item, Rejection) and "unknown tenant 'ghost'" in item.reason
    assert item.payload == _sshd(1) and listener.counters["sink_errors"] == 1


def test_port_in_use_fails_start_cleanly() -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        listener = SyslogListener(CollectingSink(), _settings(udp_port=None, tcp_port=port))
        with pytest.raises(OSError):
            listener.start()
    listener.stop()  # a listener that never started stops as a no-op


def test_describe_names_every_endpoint() -> None:
    with SyslogListener(CollectingSink(), _settings()) as listener:
        text = listener.describe()
        assert f"udp {HOST}:{listener.ports['udp']}" in text and f"tcp {HOST}:{listener.ports['tcp']}" in text
