"""Enrichment: internal/external by the tenant's networks, asset inventory, geolocation.

An :class:`Enricher` holds one tenant's context (its networks and asset inventory) and
fills the enrichment fields of events in place.  Everything it learns is cached per
address or host name, so the per-event cost is a few dictionary look-ups.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from openmdr.enrich.geo import GeoLocator
from openmdr.models import AssetInfo, Event, TenantInfo

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True, frozen=True)
class AssetFacts:
    """The inventory facts an event is enriched with."""

    criticality: str
    owner: str | None
    has_edr: bool
    asset_class: str


class NetworkClassifier:
    """Decides whether an address is internal to a tenant.

    Internal means inside one of the tenant's declared networks, or not globally
    routable at all (private, loopback, link-local): such traffic never left a network
    the tenant controls, even when the range was not declared.  IPv4 is decided on
    integers (declared ranges compared directly, global-or-not cached per /24, which is
    exact because every special-purpose IPv4 range is a whole number of /24s except two,
    decided per address), so a new address costs about a microsecond.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._v4_ranges = [(int(n.network_address), int(n.broadcast_address)) for n in self.networks
                           if n.version == 4]  # fmt: skip
        self._cache: dict[str, bool | None] = {}
        self._global_24: dict[int, bool] = {}

    def is_internal(self, ip: str | None) -> bool | None:
        """True/False for an address, None when ``ip`` is empty or not an address."""
        if not ip:
            return None
        cached = self._cache.get(ip, ...)
        if cached is not ...:
            return cached  # type: ignore[return-value]
        number = ipv4_number(ip)
        result: bool | None
        if number is not None:
            result = any(a <= number <= b for a, b in self._v4_ranges) or not self._v4_global(number)
        else:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                result = None
            else:
                result = any(addr in net for net in self.networks) or not addr.is_global
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[ip] = result
        return result

    def _v4_global(self, number: int) -> bool:
        block = number >> 8
        if block in _MIXED_V4_BLOCKS:
            return ipaddress.IPv4Address(number).is_global
        known = self._global_24.get(block)
        if known is None:
            known = self._global_24[block] = ipaddress.IPv4Address(block << 8).is_global
        return known


#: The only /24s holding both global and non-global IPv4 addresses (192.0.0.0/24, 255.255.255.0/24).
_MIXED_V4_BLOCKS = frozenset({0xC00000, 0xFFFFFF})


def ipv4_number(ip: str) -> int | None:
    """The integer of a dotted-quad IPv4 address, or None for anything else (IPv6, names, junk)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError, TypeError):
        return None


def _short_name(hostname: str) -> str:
    return hostname.split(".", 1)[0].lower()


class AssetIndex:
    """Finds a tenant's inventory entry by host name (full or short, any case) or address."""

    def __init__(self, assets: Iterable[AssetInfo]) -> None:
        self.by_name: dict[str, AssetFacts] = {}
        self.by_ip: dict[str, AssetFacts] = {}
        for asset in assets:
            facts = AssetFacts(asset.criticality, asset.owner, asset.has_edr, asset.asset_class)
            self.by_name[asset.hostname.lower()] = facts
            self.by_name.setdefault(_short_name(asset.hostname), facts)
            for ip in asset.ips:
                self.by_ip[ip] = facts

    def find(self, host: str | None, ip: str | None) -> AssetFacts | None:
        """The asset behind an event's host name, else behind its source address."""
        if host:
            key = host.lower()
            facts = self.by_name.get(key) or self.by_name.get(_short_name(key))
            if facts is not None:
                return facts
        if ip:
            return self.by_ip.get(ip)
        return None


class Enricher:
    """Fills enrichment fields of one tenant's events (pure apart from its caches)."""

    def __init__(self, tenant: TenantInfo, assets: Iterable[AssetInfo], geo: GeoLocator | None) -> None:
        self.tenant = tenant
        self.networks = NetworkClassifier(tenant.networks)
        self.assets = AssetIndex(assets)
        self.geo = geo

    def enrich(self, events: list[Event]) -> None:
        """Set internal/external flags, geolocation of external addresses and asset facts."""
        is_internal = self.networks.is_internal
        find_asset = self.assets.find
        geo = self.geo.lookup if self.geo is not None else None
        for event in events:
            src, dst = event.src_ip, event.dst_ip
            if src:
                internal = event.src_internal = is_internal(src)
                if internal is False and geo is not None:
                    loc = geo(src)
                    event.src_country, event.src_city = loc.country, loc.city
                    event.src_lat, event.src_lon = loc.latitude, loc.longitude
            if dst:
                internal = event.dst_internal = is_internal(dst)
                if internal is False and geo is not None:
                    event.dst_country = geo(dst).country
            facts = find_asset(event.host, src if event.src_internal else None)
            if facts is not None:
                event.asset_criticality = facts.criticality
                event.asset_owner = facts.owner
                event.asset_has_edr = facts.has_edr
                event.asset_class = facts.asset_class
