"""Threat intelligence: indicator matching at line rate, exchange, the learning loop and leak monitoring."""

from openmdr.intel.matcher import ALERT_SOURCE, IndicatorMatcher, MatchSet

__all__ = ["ALERT_SOURCE", "IndicatorMatcher", "MatchSet"]
