"""Enrich stage: tenant networks (internal/external), asset inventory, offline geolocation."""

from openmdr.enrich.enricher import AssetIndex, Enricher, NetworkClassifier
from openmdr.enrich.geo import GeoLocation, GeoLocator, default_database_path

__all__ = ["AssetIndex", "Enricher", "GeoLocation", "GeoLocator", "NetworkClassifier", "default_database_path"]
