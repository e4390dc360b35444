"""A controllable clock for response timing (approval deadlines, escalation, block expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """A clock that only moves when told: ``clock()`` is the current time, ``advance`` moves it forward.

    Tests and simulations (the generator's attack timeline) pass it to the response service
    instead of the wall clock, so timeouts happen without waiting.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs a timezone-aware start time")
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        """The current time."""
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a :class:`~datetime.timedelta` given as keywords (``minutes=16``)."""
        self.now += timedelta(**delta)
        return self.now

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (timezone-aware)."""
        self.now = at.astimezone(UTC)
