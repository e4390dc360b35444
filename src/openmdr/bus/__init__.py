"""The message bus stages publish to and subscribe on.

Stages never call each other: the ingest pipeline publishes event batches on
:data:`TOPIC_EVENTS`, later stages (detection, analytics, intel matching) subscribe.
:class:`InProcessBus` delivers synchronously inside one process (the embedded
default); a distributed broker implements the same :class:`Bus` protocol, carrying
messages as bytes through a :class:`Codec`, so stages do not change when it is swapped.
"""

from openmdr.bus.base import (
    TOPIC_ACTIONS,
    TOPIC_ALERTS,
    TOPIC_CASES,
    TOPIC_EVENTS,
    TOPIC_INDICATORS,
    Bus,
    Codec,
    Handler,
    Subscription,
)
from openmdr.bus.inprocess import InProcessBus

__all__ = [
    "TOPIC_ACTIONS",
    "TOPIC_ALERTS",
    "TOPIC_CASES",
    "TOPIC_EVENTS",
    "TOPIC_INDICATORS",
    "Bus",
    "Codec",
    "Handler",
    "InProcessBus",
    "Subscription",
]
