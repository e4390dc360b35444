"""Rules for names and values the stores accept, shared by the state store and the lake.

A tenant name is also a directory name in the event lake (``tenant=<name>``), so the
rule is strict: lower-case ASCII letters, digits, ``-`` and ``_``, 1 to 64 characters.
"""

from __future__ import annotations

import ipaddress
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openmdr.models.tenant import ASSET_CLASSES, CRITICALITY_LEVELS, AssetInfo, TenantInfo
from openmdr.store.errors import ValidationError

_TENANT_NAME = re.compile(r"[a-z0-9_-]{1,64}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
MAX_HOSTNAME = 255
MAX_TAGS = 64
MAX_TAG = 64
MAX_IPS = 64
MAX_OWNER = 200


def validate_tenant_name(name: object) -> str:
    """Return ``name`` if it is a valid tenant key, else raise :class:`ValidationError`."""
    if not isinstance(name, str) or not _TENANT_NAME.fullmatch(name):
        raise ValidationError(f"invalid tenant name {name!r}: use 1-64 lower-case letters, digits, '-' or '_'")
    return name


def validate_token_name(name: object) -> str:
    """Return ``name`` if it is a valid ingest-token label (letters, digits, ``.``, ``-``, ``_``)."""
    if not isinstance(name, str) or not _TOKEN_NAME.fullmatch(name):
        raise ValidationError(f"invalid token name {name!r}: use 1-64 letters, digits, '.', '-' or '_'")
    return name


def validate_tenant(info: TenantInfo) -> TenantInfo:
    """Check every field of a tenant and return it with normalized networks and domains.

    Networks become canonical CIDR text (``10.1.2.3/16`` -> ``10.1.0.0/16``); domains are
    lower-cased.  The first problem found is raised as :class:`ValidationError`.
    """
    validate_tenant_name(info.name)
    if len(info.display_name) > 200:
        raise ValidationError("display name longer than 200 characters")
    try:
        ZoneInfo(info.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationError(f"unknown time zone {info.timezone!r}") from None
    if len(info.working_hours) != 2 or not all(isinstance(h, int) and 0 <= h <= 24 for h in info.working_hours):
        raise ValidationError(f"working hours {info.working_hours!r} must be two hours between 0 and 24")
    if info.working_hours[0] == info.working_hours[1]:
        raise ValidationError("working hours start and end at the same hour")
    days = tuple(info.working_days)
    if any(not isinstance(d, int) or not 0 <= d <= 6 for d in days) or len(set(days)) != len(days):
        raise ValidationError(f"working days {days!r} must be distinct numbers 0 (Monday) to 6 (Sunday)")
    networks: list[str] = []
    for cidr in info.networks:
        try:
            networks.append(str(ipaddress.ip_network(str(cidr).strip(), strict=False)))
        except ValueError:
            raise ValidationError(f"invalid network {cidr!r}: expected a CIDR such as 10.0.0.0/8") from None
    domains: list[str] = []
    for domain in info.domains:
        text = str(domain).strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(text):
            raise ValidationError(f"invalid domain {domain!r}")
        domains.append(text)
    if info.retention_days is not None and (not isinstance(info.retention_days, int) or info.retention_days < 1):
        raise ValidationError(f"retention days {info.retention_days!r} must be a whole number of at least 1")
    return TenantInfo(
        name=info.name,
        display_name=info.display_name,
        timezone=info.timezone,
        working_hours=(info.working_hours[0], info.working_hours[1]),
        working_days=tuple(sorted(days)),
        networks=tuple(dict.fromkeys(networks)),
        domains=tuple(dict.fromkeys(domains)),
        retention_days=info.retention_days,
    )


def hostname_key(hostname: str) -> str:
    """The case-insensitive identity of an asset's hostname (assets are matched on this)."""
    return hostname.strip().lower()


def validate_asset(asset: AssetInfo) -> AssetInfo:
    """Check an inventory entry and return it normalized (canonical IPs, stripped text).

    Raises :class:`ValidationError` naming the hostname and the first bad field.
    """
    if not isinstance(asset.hostname, str):
        raise ValidationError(f"hostname {asset.hostname!r} is not text")
    host = asset.hostname.strip()
    if not host:
        raise ValidationError("hostname is empty")
    if len(host) > MAX_HOSTNAME:
        raise ValidationError(f"hostname longer than {MAX_HOSTNAME} characters")
    if any(c.isspace() or not c.isprintable() for c in host):
        raise ValidationError(f"hostname {host!r} contains spaces or control characters")
    if len(asset.ips) > MAX_IPS:
        raise ValidationError(f"{host}: more than {MAX_IPS} addresses")
    ips: list[str] = []
    for ip in asset.ips:
        try:
            ips.append(str(ipaddress.ip_address(str(ip).strip())))
        except ValueError:
            raise ValidationError(f"{host}: invalid IP address {ip!r}") from None
    if asset.criticality not in CRITICALITY_LEVELS:
        raise ValidationError(
            f"{host}: criticality {asset.criticality!r} is not one of {', '.join(CRITICALITY_LEVELS)}"
        )
    if asset.asset_class not in ASSET_CLASSES:
        raise ValidationError(f"{host}: asset class {asset.asset_class!r} is not one of {', '.join(ASSET_CLASSES)}")
    if not isinstance(asset.has_edr, bool):
        raise ValidationError(f"{host}: has_edr must be true or false")
    owner = asset.owner.strip() if isinstance(asset.owner, str) else asset.owner
    if owner is not None and (not isinstance(owner, str) or len(owner) > MAX_OWNER):
        raise ValidationError(f"{host}: owner must be text of at most {MAX_OWNER} characters")
    if len(asset.tags) > MAX_TAGS:
        raise ValidationError(f"{host}: more than {MAX_TAGS} tags")
    tags: list[str] = []
    for tag in asset.tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG or not tag.isprintable():
            raise ValidationError(f"{host}: invalid tag {tag!r}")
        tags.append(tag.strip())
    return AssetInfo(
        hostname=host,
        ips=tuple(dict.fromkeys(ips)),
        owner=owner or None,
        criticality=asset.criticality,
        asset_class=asset.asset_class,
        has_edr=asset.has_edr,
        tags=tuple(dict.fromkeys(tags)),
    )
