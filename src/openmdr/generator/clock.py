"""Time arithmetic for the generator: integer microseconds since the Unix epoch, UTC.

Every generated record carries its time as an ``int`` of microseconds, so that sorting
is exact, no rounding differs between output formats, and no per-record ``datetime``
objects are created on the hot path.  Local (tenant) time is only needed to plan
activity (working hours, nights, weekends) and to print syslog offsets.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def iso_z(us: int) -> str:
    """ISO 8601 UTC with microseconds and ``Z`` (Windows ``SystemTime`` style)."""
    t = time.gmtime(us // SECOND)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{us % SECOND:06d}Z"
    )


def sysmon_utc(us: int) -> str:
    """Sysmon ``UtcTime`` style: ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC."""
    t = time.gmtime(us // SECOND)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{(us % SECOND) // 1000:03d}"
    )


def zeek_ts(us: int) -> str:
    """Zeek ``time`` column: epoch seconds with six decimals."""
    return f"{us // SECOND}.{us % SECOND:06d}"


def bsd_header_time(us: int) -> str:
    """RFC 3164 timestamp (``Mmm dd hh:mm:ss``, day space-padded) in UTC."""
    t = time.gmtime(us // SECOND)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def zeek_open_stamp(us: int) -> str:
    """Zeek ``#open``/``#close`` header stamp (``YYYY-MM-DD-HH-MM-SS``, UTC)."""
    t = time.gmtime(us // SECOND)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}-{t.tm_hour:02d}-{t.tm_min:02d}-{t.tm_sec:02d}"


def to_datetime(us: int) -> datetime:
    """Timezone-aware UTC datetime of a microsecond timestamp (for labels and manifests)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class LocalClock:
    """Converts between a tenant's wall-clock time and UTC microseconds.

    Offsets are looked up once per hour bucket and cached, so the per-record cost of
    printing a local timestamp (syslog) is a dict lookup.
    """

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._offsets: dict[int, int] = {}

    def at(self, day: date, hour: int = 0, minute: int = 0, second: float = 0.0) -> int:
        """UTC microseconds of a local wall-clock moment (``hour`` may exceed 23)."""
        extra_days, hour = divmod(hour, 24)
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
        local = local + timedelta(days=extra_days)
        # Re-attach the zone after day arithmetic so the offset of the final day applies.
        local = local.replace(tzinfo=None).replace(tzinfo=self.zone)
        return int(local.timestamp()) * SECOND + int(second * SECOND)

    def local_day_start(self, day: date) -> int:
        """UTC microseconds of local midnight starting ``day``."""
        return self.at(day)

    def offset_us(self, us: int) -> int:
        """UTC offset (microseconds) in effect at ``us``."""
        bucket = us // HOUR
        off = self._offsets.get(bucket)
        if off is None:
            dt = datetime.fromtimestamp(bucket * 3600, self.zone)
            delta = dt.utcoffset() or timedelta(0)
            off = int(delta.total_seconds()) * SECOND
            self._offsets[bucket] = off
        return off

    def local_hour(self, us: int) -> float:
        """Local hour of day (fractional) at ``us``."""
        return ((us + self.offset_us(us)) % DAY) / HOUR

    def local_weekday(self, us: int) -> int:
        """Local weekday (0 = Monday) at ``us``."""
        days = (us + self.offset_us(us)) // DAY
        return (days + 3) % 7  # 1970-01-01 was a Thursday

    def rfc3339(self, us: int) -> str:
        """RFC 3339 local time with microseconds and numeric offset (RFC 5424 ``TIMESTAMP``)."""
        off = self.offset_us(us)
        t = time.gmtime((us + off) // SECOND)
        sign = "+" if off >= 0 else "-"
        mins = abs(off) // MINUTE
        return (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{us % SECOND:06d}{sign}{mins // 60:02d}:{mins % 60:02d}"
        )
