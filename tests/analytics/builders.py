"""Hand-built events for analytics tests, shaped like the parsers' output.

Zeek conn/dns records carry product ``zeek`` and the log path as service with the
original Zeek field names; logons carry the action/outcome/entity fields the Windows and
Linux parsers fill.  Internal/external flags and geolocation are set as the enricher
would, so each test states exactly what the analytics see.
"""

from __future__ import annotations

import ipaddress
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from openmdr.models import Event

#: Monday 2024-01-01 00:00 UTC, a convenient day start for window-aligned cases.
DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
T0 = DAY0.timestamp()

_ids = itertools.count()


def at(seconds: float) -> datetime:
    """``DAY0`` plus ``seconds``."""
    return DAY0 + timedelta(seconds=seconds)


def _internal(ip: str | None) -> bool | None:
    if not ip:
        return None
    return not ipaddress.ip_address(ip).is_global


def _eid(prefix: str) -> str:
    return f"{prefix}-{next(_ids):08d}"


def conn(
    t: float,
    src: str,
    dst: str,
    dport: int,
    *,
    proto: str = "tcp",
    sport: int = 50000,
    bytes_out: int = 100,
    bytes_in: int = 200,
    duration: float | None = 0.5,
    state: str = "SF",
    tenant: str = "acme",
) -> Event:
    """One Zeek conn record at ``DAY0 + t`` seconds."""
    fields: dict[str, Any] = {
        "ts": T0 + t,
        "uid": f"C{next(_ids):x}",
        "id.orig_h": src,
        "id.orig_p": sport,
        "id.resp_h": dst,
        "id.resp_p": dport,
        "proto": proto,
        "conn_state": state,
        "orig_bytes": bytes_out,
        "resp_bytes": bytes_in,
    }
    if duration is not None:
        fields["duration"] = duration
    return Event(
        time=at(t),
        source_format="zeek_tsv",
        fields=fields,
        tenant=tenant,
        event_id=_eid("conn"),
        product="zeek",
        service="conn",
        event_code="conn",
        action="conn",
        src_ip=src,
        src_port=sport,
        dst_ip=dst,
        dst_port=dport,
        protocol=proto,
        bytes_out=bytes_out,
        bytes_in=bytes_in,
        src_internal=_internal(src),
        dst_internal=_internal(dst),
    )


def dns(
    t: float,
    src: str,
    query: str,
    qtype: str = "A",
    resolver: str = "10.0.0.2",
    tenant: str = "acme",
    rcode: str = "NOERROR",
) -> Event:
    """One Zeek dns record at ``DAY0 + t`` seconds (``rcode`` as Zeek's ``rcode_name``)."""
    return Event(
        time=at(t),
        source_format="zeek_tsv",
        fields={
            "ts": T0 + t,
            "query": query,
            "qtype_name": qtype,
            "rcode_name": rcode,
            "id.orig_h": src,
            "id.resp_h": resolver,
        },
        tenant=tenant,
        event_id=_eid("dns"),
        product="zeek",
        service="dns",
        event_code="dns",
        action="dns",
        src_ip=src,
        src_port=53000,
        dst_ip=resolver,
        dst_port=53,
        protocol="udp",
        domain=query,
        src_internal=_internal(src),
        dst_internal=_internal(resolver),
    )


def logon(
    t: float,
    user: str,
    *,
    src: str | None = "10.0.0.50",
    host: str = "ws01",
    failed: bool = False,
    logon_type: str | None = "10",
    country: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    code: str | None = None,
    product: str = "windows",
    tenant: str = "acme",
) -> Event:
    """A successful or failed logon at ``DAY0 + t`` seconds (Windows 4624/4625 by default)."""
    fields: dict[str, Any] = {"TargetUserName": user}
    if logon_type is not None:
        fields["LogonType"] = logon_type
    if code is None:
        code = ("4625" if failed else "4624") if product == "windows" else None
    return Event(
        time=at(t),
        source_format="winevent_json" if product == "windows" else "syslog",
        fields=fields,
        tenant=tenant,
        event_id=_eid("logon"),
        product=product,
        service="security" if product == "windows" else "sshd",
        event_code=code,
        action="logon_failed" if failed else "logon",
        outcome="failure" if failed else "success",
        host=host,
        user=user,
        src_ip=src,
        src_internal=_internal(src),
        src_country=country,
        src_lat=lat,
        src_lon=lon,
    )


def group_added(t: float, group: str, member: str, actor: str = "admin", tenant: str = "acme") -> Event:
    """Windows 4732-style 'member added to group' at ``DAY0 + t``."""
    return Event(
        time=at(t),
        source_format="winevent_json",
        fields={"TargetUserName": group, "MemberName": member, "SubjectUserName": actor},
        tenant=tenant,
        event_id=_eid("grp"),
        product="windows",
        service="security",
        event_code="4732",
        action="group_member_added",
        outcome="success",
        host="dc01",
        user=actor,
    )


def file_access(t: float, user: str, path: str = r"\\fs01\share\doc.xlsx", tenant: str = "acme") -> Event:
    """Security 5145 share access by ``user`` at ``DAY0 + t``."""
    return Event(
        time=at(t),
        source_format="winevent_json",
        fields={"SubjectUserName": user, "RelativeTargetName": path},
        tenant=tenant,
        event_id=_eid("file"),
        product="windows",
        service="security",
        event_code="5145",
        action="share_access",
        outcome="success",
        host="fs01",
        user=user,
        file_path=path,
    )


def ssl(t: float, src: str, dst: str, server_name: str, tenant: str = "acme") -> Event:
    """One Zeek ssl record (TLS handshake with SNI ``server_name``) at ``DAY0 + t`` seconds."""
    return Event(
        time=at(t),
        source_format="zeek_tsv",
        fields={"ts": T0 + t, "id.orig_h": src, "id.resp_h": dst, "id.resp_p": 443, "server_name": server_name},
        tenant=tenant,
        event_id=_eid("ssl"),
        product="zeek",
        service="ssl",
        event_code="ssl",
        action="ssl",
        src_ip=src,
        src_port=50000,
        dst_ip=dst,
        dst_port=443,
        protocol="tcp",
        domain=server_name,
        src_internal=_internal(src),
        dst_internal=_internal(dst),
    )
