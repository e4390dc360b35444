"""Per-tenant, per-entity baselines with bounded memory and snapshot/restore.

A :class:`BaselineStore` maps entity keys (a user, a host address, ``"*"`` for the tenant
as a whole) to profile objects, keeps at most ``capacity`` of them (least recently seen
evicted) and turns them into bytes for the state store.  The state store's ``baselines``
table is keyed by ``(tenant, analytic, entity)``: :meth:`BaselineStore.rows` yields exactly
those rows and :meth:`BaselineStore.restore_rows` reads them back, while
:meth:`BaselineStore.snapshot` / :meth:`BaselineStore.restore` move a whole store as one
blob.  A profile class provides ``to_state() -> JSON-able`` and
``from_state(state, store) -> profile``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import orjson

from openmdr.detect.analytics.sketches import CountMinSketch, HyperLogLog, LruMap, RecentSet
from openmdr.detect.analytics.stats import Ewma

SNAPSHOT_VERSION = 1


class Profile(Protocol):
    """What a baseline profile must offer to be stored."""

    def to_state(self) -> Any:
        """JSON-able state of the profile."""
        ...


P = TypeVar("P", bound=Profile)


class BaselineStore(Generic[P]):
    """Capped map of entity -> profile for one tenant and analytic, with persistence.

    ``decode(state)`` rebuilds a profile from :meth:`Profile.to_state` output; ``factory()``
    makes an empty one.
    """

    def __init__(
        self,
        analytic: str,
        capacity: int,
        factory: Callable[[], P],
        decode: Callable[[Any], P],
    ) -> None:
        self.analytic = analytic
        self.entities: LruMap[str, P] = LruMap(capacity)
        self._factory = factory
        self._decode = decode

    def __len__(self) -> int:
        return len(self.entities)

    def get(self, entity: str) -> P | None:
        """The profile of ``entity`` or None (marks it recently used)."""
        return self.entities.get(entity)

    def profile(self, entity: str) -> P:
        """The profile of ``entity``, created empty when unknown."""
        return self.entities.setdefault_factory(entity, self._factory)

    def rows(self) -> Iterator[tuple[str, bytes]]:
        """``(entity, state bytes)`` per entity, for the ``baselines`` table."""
        for entity, profile in self.entities.items():
            yield entity, orjson.dumps(profile.to_state(), option=orjson.OPT_SERIALIZE_NUMPY)

    def restore_rows(self, rows: Iterable[tuple[str, bytes]]) -> int:
        """Load ``(entity, state bytes)`` rows (as written by :meth:`rows`); returns how many."""
        n = 0
        for entity, data in rows:
            self.entities.put(entity, self._decode(orjson.loads(data)))
            n += 1
        return n

    def snapshot(self) -> bytes:
        """The whole store as one JSON document (least recently used entities first)."""
        return orjson.dumps(
            {
                "version": SNAPSHOT_VERSION,
                "analytic": self.analytic,
                "entities": [[e, p.to_state()] for e, p in self.entities.items()],
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    def restore(self, data: bytes) -> None:
        """Replace the store's content with a :meth:`snapshot`; raises ValueError if foreign."""
        doc = orjson.loads(data)
        if doc.get("version") != SNAPSHOT_VERSION or doc.get("analytic") != self.analytic:
            raise ValueError(
                f"snapshot of {doc.get('analytic')!r} v{doc.get('version')} cannot restore "
                f"{self.analytic!r} v{SNAPSHOT_VERSION}"
            )
        self.entities = LruMap(self.entities.capacity)
        for entity, state in doc["entities"]:
            self.entities.put(entity, self._decode(state))


# ------------------------------------------------------------------------------ profiles


class UserProfile:
    """What is normal for one user: logon hours, countries, hosts, sources, last location.

    ``hours`` counts successful logons per hour of day in the tenant's time zone; when the
    total passes ``HOUR_CAP`` all counts are halved, so the profile follows slow changes
    and stays bounded.  ``last_geo`` is ``[time, lat, lon, country, ip]`` of the last
    geolocated logon (impossible travel).  ``bulk`` is the per-window file-access counter
    and its baseline.
    """

    __slots__ = (
        "bulk_count",
        "bulk_evidence",
        "bulk_fired",
        "bulk_stat",
        "bulk_window",
        "countries",
        "first_seen",
        "geo_logons",
        "hosts",
        "hours",
        "last_geo",
        "last_seen",
        "logons",
        "sources",
    )

    HOUR_CAP = 10_000.0

    def __init__(self, capacity: int = 32, alpha: float = 0.1) -> None:
        self.hours = array("d", bytes(8 * 24))  # 24 doubles: a quarter of a list of floats
        self.logons = 0
        self.geo_logons = 0
        self.countries = RecentSet(capacity)
        self.hosts = RecentSet(capacity)
        self.sources = RecentSet(capacity)
        self.last_geo: list[Any] | None = None
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.bulk_window = -1
        self.bulk_count = 0
        self.bulk_fired = False
        self.bulk_evidence: list[str] = []
        self.bulk_stat = Ewma(alpha)

    def add_hour(self, hour: int) -> None:
        """Count one successful logon in ``hour`` (0-23, tenant time)."""
        hours = self.hours
        hours[hour] += 1.0
        if sum(hours) > self.HOUR_CAP:
            self.hours = array("d", (h / 2.0 for h in hours))

    def hour_share(self, hour: int) -> float:
        """Share of past logons within one hour of ``hour`` (circular), 0 for no history."""
        hours = self.hours
        total = sum(hours)
        if total <= 0:
            return 0.0
        return (hours[(hour - 1) % 24] + hours[hour] + hours[(hour + 1) % 24]) / total

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (open bulk window evidence is not kept)."""
        return {
            "hours": self.hours.tolist(),
            "logons": self.logons,
            "geo_logons": self.geo_logons,
            "countries": self.countries.to_state(),
            "hosts": self.hosts.to_state(),
            "sources": self.sources.to_state(),
            "last_geo": self.last_geo,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "bulk_window": self.bulk_window,
            "bulk_count": self.bulk_count,
            "bulk_fired": self.bulk_fired,
            "bulk_stat": self.bulk_stat.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], capacity: int = 32, alpha: float = 0.1) -> UserProfile:
        """Inverse of :meth:`to_state`."""
        out = cls(capacity, alpha)
        out.hours = array("d", (float(h) for h in state["hours"]))
        out.logons = int(state["logons"])
        out.geo_logons = int(state.get("geo_logons", 0))
        out.countries = RecentSet.from_state(capacity, state["countries"])
        out.hosts = RecentSet.from_state(capacity, state["hosts"])
        out.sources = RecentSet.from_state(capacity, state["sources"])
        out.last_geo = state.get("last_geo")
        out.first_seen = state.get("first_seen")
        out.last_seen = state.get("last_seen")
        out.bulk_window = int(state.get("bulk_window", -1))
        out.bulk_count = int(state.get("bulk_count", 0))
        out.bulk_fired = bool(state.get("bulk_fired", False))
        out.bulk_stat = Ewma.from_state(alpha, state.get("bulk_stat", [0.0, 0.0, 0]))
        return out


class VolumeProfile:
    """Baseline of one per-window quantity of an entity (outbound bytes, fan-out)."""

    __slots__ = ("last_window", "stat")

    def __init__(self, alpha: float = 0.1) -> None:
        self.stat = Ewma(alpha)
        self.last_window = -1

    def to_state(self) -> list[float]:
        """JSON-able state ``[mean, var, n, last_window]``."""
        return [*self.stat.to_state(), self.last_window]

    @classmethod
    def from_state(cls, state: list[float], alpha: float = 0.1) -> VolumeProfile:
        """Inverse of :meth:`to_state`."""
        out = cls(alpha)
        out.stat = Ewma.from_state(alpha, state[:3])
        out.last_window = int(state[3]) if len(state) > 3 else -1
        return out


class LateralProfile:
    """Admin-protocol habits of one source: fan-out baseline and destinations it uses."""

    __slots__ = ("fanout", "pairs")

    def __init__(self, capacity: int = 256, alpha: float = 0.1) -> None:
        self.fanout = Ewma(alpha)
        self.pairs = RecentSet(capacity)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"fanout": self.fanout.to_state(), "pairs": self.pairs.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any], capacity: int = 256, alpha: float = 0.1) -> LateralProfile:
        """Inverse of :meth:`to_state`."""
        out = cls(capacity, alpha)
        out.fanout = Ewma.from_state(alpha, state["fanout"])
        out.pairs = RecentSet.from_state(capacity, state["pairs"])
        return out


class SeenHost:
    """A host address seen on the network: first/last seen and what was reported."""

    __slots__ = ("first", "last", "reported")

    def __init__(self, first: float = 0.0, last: float = 0.0, reported: str = "") -> None:
        self.first = first
        self.last = last
        self.reported = reported

    def to_state(self) -> list[Any]:
        """JSON-able state ``[first, last, reported]``."""
        return [self.first, self.last, self.reported]

    @classmethod
    def from_state(cls, state: list[Any]) -> SeenHost:
        """Inverse of :meth:`to_state`."""
        return cls(float(state[0]), float(state[1]), str(state[2]))


class TenantProfile:
    """Tenant-wide network facts: destination popularity as host-windows per destination
    (count-min sketch) and how many distinct internal hosts were seen (HyperLogLog)."""

    __slots__ = ("hosts", "popularity")

    def __init__(self) -> None:
        self.popularity = CountMinSketch(width=4096, depth=4)
        self.hosts = HyperLogLog(12)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"popularity": self.popularity.to_state(), "hosts": self.hosts.to_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TenantProfile:
        """Inverse of :meth:`to_state`."""
        out = cls()
        out.popularity = CountMinSketch.from_state(state["popularity"])
        out.hosts = HyperLogLog.from_state(state["hosts"])
        return out


class IdentityTenantProfile:
    """Tenant-wide identity facts: when its logon telemetry started (warm-up), the countries
    its users log on from, and how many located logons came from each (bounded: countries)."""

    __slots__ = ("countries", "country_logons", "first_seen", "geo_logons")

    def __init__(self) -> None:
        self.first_seen: float | None = None
        self.countries = RecentSet(512)
        self.country_logons: dict[str, int] = {}
        self.geo_logons = 0

    def add_country(self, country: str, when: float) -> None:
        """Count one located logon from ``country``."""
        self.countries.add(country, when)
        if country in self.country_logons or len(self.country_logons) < 512:
            self.country_logons[country] = self.country_logons.get(country, 0) + 1
        self.geo_logons += 1

    def country_share(self, country: str) -> float:
        """Share of the tenant's located logons that came from ``country``."""
        return self.country_logons.get(country, 0) / self.geo_logons if self.geo_logons else 0.0

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {
            "first_seen": self.first_seen,
            "countries": self.countries.to_state(),
            "country_logons": self.country_logons,
            "geo_logons": self.geo_logons,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IdentityTenantProfile:
        """Inverse of :meth:`to_state`."""
        out = cls()
        out.first_seen = state.get("first_seen")
        out.countries = RecentSet.from_state(512, state["countries"])
        out.country_logons = {str(k): int(v) for k, v in state.get("country_logons", {}).items()}
        out.geo_logons = int(state.get("geo_logons", 0))
        return out
