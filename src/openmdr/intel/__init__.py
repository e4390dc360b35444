"""Threat intelligence: indicator matching at line rate, exchange, the learning loop and leak monitoring.

* :class:`IndicatorMatcher`: every active indicator against Arrow event batches -> ``ioc`` alerts;
* :mod:`openmdr.intel.exchange`: STIX 2.1, MISP and CSV readers/writers;
* :mod:`openmdr.intel.taxii`: TAXII 2.1 server router and client;
* :class:`LearningLoop`: resolved true-positive cases -> sanitized shared indicators -> retro-hunt;
* :class:`LeakMonitor`: leaked-credential feeds matched against every tenant.
"""

from openmdr.intel.leaks import LeakMonitor, LeakReport, parse_leak_feed
from openmdr.intel.learning import LearningLoop, SharingPolicy, SharingResult, Withheld, sanitize_observable
from openmdr.intel.matcher import ALERT_SOURCE, IndicatorMatcher, MatchSet
from openmdr.intel.retrohunt import hunt_lake

__all__ = [
    "ALERT_SOURCE",
    "IndicatorMatcher",
    "LeakMonitor",
    "LeakReport",
    "LearningLoop",
    "MatchSet",
    "SharingPolicy",
    "SharingResult",
    "Withheld",
    "hunt_lake",
    "parse_leak_feed",
    "sanitize_observable",
]
