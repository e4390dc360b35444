"""Entities of an alert as correlation keys, their specificity, and the alert's telemetry channel.

An alert's ``entities`` (host, user, src/dst ip, process, hash, domain, ...) become
normalized keys such as ``host:ws01`` or ``ip:203.0.113.9``.  Each key has a base weight
(how strongly sharing it suggests one attack): a host, a user, a process lineage or an
outside address attacking in alone is enough to link two alerts; other addresses, domains
and hashes need a second shared entity.
Values that everyone shares (SYSTEM, loopback addresses, machine accounts) never link.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from openmdr.models.alert import Alert

#: Channels a case spans (the issue's "endpoint, network, identity").
CHANNELS: tuple[str, ...] = ("endpoint", "network", "identity", "cloud", "other")

#: Base linking weight of each entity kind; alerts join a case when shared weights reach 1
#: (an external *source* address weighs like a host: see :func:`_ip_entity`).
KIND_WEIGHTS: dict[str, float] = {
    "host": 1.0,
    "user": 1.0,
    "lineage": 1.0,
    "ip": 0.5,
    "domain": 0.5,
    "hash": 0.5,
}

#: Account names every machine has: they say nothing about which attack an alert belongs to.
GENERIC_USERS: frozenset[str] = frozenset(
    {
        "",
        "-",
        "n/a",
        "na",
        "none",
        "null",
        "unknown",
        "system",
        "local service",
        "localservice",
        "network service",
        "networkservice",
        "anonymous logon",
        "anonymous",
        "nobody",
        "dwm-1",
        "umfd-0",
        "umfd-1",
        "font driver host",
        "window manager",
    }
)

_ENDPOINT_CATEGORIES = (
    "process",
    "file",
    "registry",
    "image",
    "driver",
    "pipe",
    "wmi",
    "ps_",
    "powershell",
    "create_remote_thread",
    "raw_access",
    "sysmon",
    "create_stream",
)
_NETWORK_WORDS = (
    "zeek",
    "suricata",
    "firewall",
    "dns",
    "proxy",
    "network",
    "netflow",
    "conn",
    "http",
    "beacon",
    "exfil",
    "scan",
    "long_conn",
    "tunnel",
    "c2",
    "lateral",
    "ids",
)
_IDENTITY_WORDS = (
    "logon",
    "login",
    "auth",
    "kerberos",
    "travel",
    "brute",
    "spray",
    "country",
    "privilege",
    "account",
    "okta",
    "azure",
    "m365",
    "identity",
    "ldap",
    "credential",
    "password",
    "mfa",
)
_CLOUD_WORDS = ("cloudtrail", "aws", "gcp", "cloud")


class EntityKey(NamedTuple):
    """One normalized entity of an alert: ``kind`` (host/user/ip/domain/hash/lineage), value, display.

    ``key`` (``kind:value``) is what the correlator indexes; build one with :func:`entity_key`.
    A named tuple of strings: immutable, cheap, and not tracked by the garbage collector.
    """

    kind: str
    value: str
    display: str
    role: str | None
    key: str
    weight: float


def entity_key(kind: str, value: str, display: str, role: str | None = None, weight: float | None = None) -> EntityKey:
    """An :class:`EntityKey` with its index key and linking weight (default: :data:`KIND_WEIGHTS`)."""
    return EntityKey(kind, value, display, role, f"{kind}:{value}", KIND_WEIGHTS[kind] if weight is None else weight)


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (list, tuple, set, frozenset)):
        return [str(v) for v in raw if v is not None and str(v) != ""]
    text = str(raw)
    return [text] if text else []


def normalize_host(name: str) -> str:
    """Host key: lower-case short name (``WS01.corp.local`` -> ``ws01``); addresses stay whole."""
    text = name.strip().lower().rstrip(".")
    if not text or _is_ip(text):
        return text
    return text.split(".", 1)[0]


def normalize_user(name: str) -> str:
    """User key: lower-case account without domain (``CORP\\Alice`` and ``alice@corp.com`` -> ``alice``)."""
    text = name.strip().lower()
    if "\\" in text:
        text = text.rsplit("\\", 1)[1]
    if "@" in text:
        text = text.split("@", 1)[0]
    return text


def is_generic_user(user: str) -> bool:
    """True for built-in and machine accounts that every host has (``SYSTEM``, ``WS01$``)."""
    return user in GENERIC_USERS or user.endswith("$") or user.startswith("nt authority") or user.startswith("dwm-")


@lru_cache(maxsize=65536)
def _ip_info(text: str) -> tuple[str, bool, bool] | None:
    """(normalized address, internal, linkable) or None when ``text`` is no address."""
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    linkable = not (addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local)
    if addr.version == 4 and str(addr).endswith(".255"):
        linkable = False
    return str(addr), addr.is_private, linkable


def _is_ip(text: str) -> bool:
    return _ip_info(text) is not None


def basename(path: str) -> str:
    """Last path component of a Windows or POSIX path, lower-cased (process names)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1].lower()


@lru_cache(maxsize=65536)
def _host_entity(raw: str) -> EntityKey | None:
    host = normalize_host(raw)
    if not host or host in ("localhost", "-"):
        return None
    return entity_key("host", host, raw)


@lru_cache(maxsize=65536)
def _user_entity(raw: str) -> EntityKey | None:
    user = normalize_user(raw)
    return None if is_generic_user(user) else entity_key("user", user, raw)


@lru_cache(maxsize=65536)
def _ip_entity(raw: str, role: str) -> EntityKey | None:
    info = _ip_info(raw)
    if info is None or not info[2]:
        return None
    # an outside address that comes at us (a spray, a scan, a VPN logon) is the attacker's own
    # infrastructure: as specific as a host; other addresses need a second shared entity
    weight = KIND_WEIGHTS["host"] if role == "src" and not info[1] else KIND_WEIGHTS["ip"]
    return entity_key("ip", info[0], info[0], role, weight)


@lru_cache(maxsize=65536)
def _domain_entity(raw: str) -> EntityKey | None:
    dom = raw.strip().lower().rstrip(".")
    return entity_key("domain", dom, dom) if dom and "." in dom else None


@lru_cache(maxsize=65536)
def _hash_entity(raw: str) -> EntityKey | None:
    digest = raw.strip().lower()
    return entity_key("hash", digest, digest) if len(digest) >= 32 else None


@lru_cache(maxsize=65536)
def _lineage_entity(host: str, parent: str | None, process: str) -> EntityKey:
    lineage = f"{basename(parent)} > {basename(process)}" if parent else basename(process)
    return entity_key("lineage", f"{host}|{lineage}", f"{lineage} on {host}")


def _each(raw: Any) -> tuple[str, ...] | list[str]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,) if raw else ()
    return _values(raw)


@lru_cache(maxsize=65536)
def _src_ip_entity(raw: str) -> EntityKey | None:
    return _ip_entity(raw, "src")


@lru_cache(maxsize=65536)
def _dst_ip_entity(raw: str) -> EntityKey | None:
    return _ip_entity(raw, "dst")


#: Entity key of the alert's ``entities`` -> maker of its correlation key.
_MAKERS: dict[str, Any] = {
    "host": _host_entity,
    "user": _user_entity,
    "src_ip": _src_ip_entity,
    "dst_ip": _dst_ip_entity,
    "domain": _domain_entity,
    "hash": _hash_entity,
}


def alert_entities(alert: Alert) -> list[EntityKey]:
    """The alert's correlation keys, de-duplicated, in the order of its ``entities``."""
    return weighted_entities(alert)[0]


def weighted_entities(alert: Alert) -> tuple[list[EntityKey], list[float]]:
    """The alert's correlation keys and how much of each the alert is about.

    A key listed alone counts fully; one of N values of a list (a fan-out to 7 hosts, a
    scan of 200 addresses) counts 2/N when N > 2: the alert is about all of them a little,
    so it must not glue together everything it lists.
    """
    ents = alert.entities
    if not ents:
        return [], []
    out: list[EntityKey] = []
    shares: list[float] = []
    seen: set[str] = set()
    first_host: str | None = None
    for kind, raw in ents.items():
        make = _MAKERS.get(kind)
        if make is None or raw is None:
            continue
        values = (raw,) if type(raw) is str else _values(raw)
        share = 1.0 if len(values) <= 2 else 2.0 / len(values)
        for value in values:
            if not value:
                continue
            ent = make(value)
            if ent is not None and ent.key not in seen:
                seen.add(ent.key)
                out.append(ent)
                shares.append(share)
                if first_host is None and kind == "host":
                    first_host = ent.value
    processes = ents.get("process")
    if first_host is not None and processes:
        parents = _each(ents.get("parent_process"))
        parent = parents[0] if parents else None
        for proc in list(_each(processes))[:3]:
            ent = _lineage_entity(first_host, parent, proc)
            if ent.key not in seen:
                seen.add(ent.key)
                out.append(ent)
                shares.append(1.0)
    return out, shares


def dedup_fingerprint(alert: Alert) -> str:
    """What makes two alerts "the same": source, rule and the full entity set."""
    parts = [alert.source, alert.rule_id]
    ents = alert.entities or {}
    for key in sorted(ents):
        raw = ents[key]
        parts.append(f"{key}={raw}" if isinstance(raw, str) else f"{key}={'|'.join(sorted(_values(raw)))}")
    return "\x1f".join(parts)


def alert_channel(alert: Alert) -> str:
    """Which telemetry the alert came from: endpoint, network, identity, cloud or other.

    ``details["channel"]`` wins when a source states it; otherwise the Sigma log source,
    the analytic's name or the indicator's type decide.
    """
    details = alert.details or {}
    stated = details.get("channel")
    if isinstance(stated, str) and stated in CHANNELS:
        return stated
    logsource = details.get("logsource") if isinstance(details.get("logsource"), dict) else {}
    words = " ".join(
        str(x).lower()
        for x in (alert.source, logsource.get("product"), logsource.get("service"), logsource.get("category"))
        if x
    )
    if alert.source.startswith("analytics:"):
        words = alert.source.lower()
    if any(w in words for w in _CLOUD_WORDS):
        return "cloud"
    if any(w in words for w in _IDENTITY_WORDS):
        return "identity"
    if any(w in words for w in _ENDPOINT_CATEGORIES):
        return "endpoint"
    if any(w in words for w in _NETWORK_WORDS):
        return "network"
    if alert.source == "ioc":
        kind = str(details.get("indicator_type", "")).lower()
        return "endpoint" if "hash" in kind or "file" in kind else "network"
    if logsource.get("product") in ("windows", "linux", "macos"):
        return "endpoint" if logsource.get("service") != "security" else "identity"
    return "other"


def joined_words(items: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
