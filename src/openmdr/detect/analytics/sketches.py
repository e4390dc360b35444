"""Bounded-memory state: a capped LRU map, a count-min sketch and a HyperLogLog.

Baselines must not grow with history: a tenant that has seen a billion connections
keeps the same state size as one that has seen a million.  Each structure here has a
fixed or capped size and a JSON/bytes form for the state store (``to_state`` /
``from_state``).  Hashes are BLAKE2b, never Python's ``hash()`` (randomised per
process), so a snapshot restored in another process keeps its meaning.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import numpy as np

K = TypeVar("K")
V = TypeVar("V")


def stable_hash64(key: str) -> int:
    """64-bit hash of ``key`` that is the same in every process and version."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class LruMap(Generic[K, V]):
    """A dict capped at ``capacity`` entries; the least recently used entry is evicted.

    ``get``/``setdefault_factory`` mark an entry as used.  ``evictions`` counts how many
    entries were dropped, so a caller can report that a cap was reached.
    """

    __slots__ = ("_data", "capacity", "evictions")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: K) -> V | None:
        """The value of ``key`` (marking it used) or None."""
        data = self._data
        value = data.get(key)
        if value is not None:
            data.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        """The value of ``key`` without marking it used."""
        return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        """Insert or replace ``key``, evicting the least recently used entry if full."""
        data = self._data
        if key in data:
            data.move_to_end(key)
        data[key] = value
        if len(data) > self.capacity:
            data.popitem(last=False)
            self.evictions += 1

    def setdefault_factory(self, key: K, factory: Callable[[], V]) -> V:
        """The value of ``key``, creating it with ``factory()`` when absent."""
        value = self.get(key)
        if value is None:
            value = factory()
            self.put(key, value)
        return value

    def items(self) -> Iterator[tuple[K, V]]:
        """Entries from least to most recently used."""
        return iter(list(self._data.items()))

    def keys(self) -> list[K]:
        """Keys from least to most recently used."""
        return list(self._data)

    def pop(self, key: K) -> V | None:
        """Remove ``key`` and return its value (None if absent)."""
        return self._data.pop(key, None)


class RecentSet:
    """The ``capacity`` most recently seen keys of one entity, with first/last seen times.

    Used for "has this user ever logged on from this country/host/source": membership is
    exact for what is remembered; a key evicted long ago looks new again, which is the
    bounded-memory trade-off (a long-unused country *is* unusual again).  A plain dict
    (insertion-ordered; re-inserted on use) rather than an ``OrderedDict``: a user holds three
    of these, and a dict costs about 40 % less memory.
    """

    __slots__ = ("_seen", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: dict[str, list[float]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: str, when: float) -> bool:
        """Record ``key`` seen at ``when``; True if it was not remembered before."""
        seen = self._seen
        entry = seen.pop(key, None)
        if entry is not None:
            if when > entry[1]:
                entry[1] = when
            seen[key] = entry  # re-inserted: now the most recently seen
            return False
        seen[key] = [when, when]
        if len(seen) > self.capacity:
            del seen[next(iter(seen))]
        return True

    def first_seen(self, key: str) -> float | None:
        """When ``key`` was first seen (None if not remembered)."""
        entry = self._seen.get(key)
        return entry[0] if entry else None

    def keys(self) -> list[str]:
        """Remembered keys, least recently seen first."""
        return list(self._seen)

    def to_state(self) -> list[list[Any]]:
        """JSON-able state: ``[[key, first, last], ...]`` oldest first."""
        return [[k, v[0], v[1]] for k, v in self._seen.items()]

    @classmethod
    def from_state(cls, capacity: int, state: Iterable[list[Any]]) -> RecentSet:
        """Inverse of :meth:`to_state` (keeps the newest ``capacity`` entries)."""
        out = cls(capacity)
        for key, first, last in state:
            out._seen[str(key)] = [float(first), float(last)]
        while len(out._seen) > capacity:
            del out._seen[next(iter(out._seen))]
        return out


class CountMinSketch:
    """Count-min sketch: approximate counts of many keys in ``depth x width`` counters.

    An estimate never undercounts; it overcounts by at most ``e / width * total`` with
    probability ``1 - exp(-depth)``.  Rows are indexed by double hashing of one 64-bit
    BLAKE2b hash.  Updates are vectorised with numpy for batches of keys.
    """

    __slots__ = ("depth", "table", "total", "width")

    def __init__(self, width: int = 2048, depth: int = 4) -> None:
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be positive")
        self.width = width
        self.depth = depth
        self.table = np.zeros((depth, width), dtype=np.int64)
        self.total = 0

    def _columns(self, hashes: np.ndarray) -> np.ndarray:
        h = hashes.astype(np.uint64)
        h1 = h & np.uint64(0xFFFFFFFF)
        h2 = (h >> np.uint64(32)) | np.uint64(1)
        rows = np.arange(self.depth, dtype=np.uint64)[:, None]
        return ((h1[None, :] + rows * h2[None, :]) % np.uint64(self.width)).astype(np.int64)

    def add_many(self, keys: Iterable[str], counts: Iterable[int] | None = None) -> None:
        """Add ``counts`` (default 1 each) to ``keys``."""
        key_list = list(keys)
        if not key_list:
            return
        hashes = np.fromiter((stable_hash64(k) for k in key_list), dtype=np.uint64, count=len(key_list))
        inc = np.ones(len(key_list), dtype=np.int64) if counts is None else np.fromiter(counts, dtype=np.int64)
        cols = self._columns(hashes)
        for row in range(self.depth):
            np.add.at(self.table[row], cols[row], inc)
        self.total += int(inc.sum())

    def add(self, key: str, count: int = 1) -> None:
        """Add ``count`` to ``key``."""
        self.add_many([key], [count])

    def estimate_many(self, keys: Iterable[str]) -> np.ndarray:
        """Estimated counts of ``keys`` (upper bounds)."""
        key_list = list(keys)
        if not key_list:
            return np.zeros(0, dtype=np.int64)
        hashes = np.fromiter((stable_hash64(k) for k in key_list), dtype=np.uint64, count=len(key_list))
        cols = self._columns(hashes)
        return np.min(self.table[np.arange(self.depth)[:, None], cols], axis=0)

    def estimate(self, key: str) -> int:
        """Estimated count of ``key``."""
        return int(self.estimate_many([key])[0])

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (counters base64-encoded little-endian int64)."""
        return {
            "width": self.width,
            "depth": self.depth,
            "total": self.total,
            "table": base64.b64encode(self.table.astype("<i8").tobytes()).decode(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CountMinSketch:
        """Inverse of :meth:`to_state`."""
        out = cls(int(state["width"]), int(state["depth"]))
        raw = np.frombuffer(base64.b64decode(state["table"]), dtype="<i8")
        out.table = raw.reshape(out.depth, out.width).astype(np.int64)
        out.total = int(state["total"])
        return out


class HyperLogLog:
    """HyperLogLog distinct-count estimator with ``2**precision`` one-byte registers.

    Standard error is about ``1.04 / sqrt(2**precision)`` (1.6 % at precision 12, in 4 KiB).
    Small cardinalities use linear counting, as in the original paper.
    """

    __slots__ = ("precision", "registers")

    def __init__(self, precision: int = 12) -> None:
        if not 4 <= precision <= 16:
            raise ValueError("precision must be between 4 and 16")
        self.precision = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add_many(self, keys: Iterable[str]) -> None:
        """Add ``keys`` to the set."""
        p = self.precision
        hashes = np.fromiter((stable_hash64(k) for k in keys), dtype=np.uint64)
        if len(hashes) == 0:
            return
        idx = (hashes >> np.uint64(64 - p)).astype(np.int64)
        rest = (hashes << np.uint64(p)) & np.uint64(0xFFFFFFFFFFFFFFFF)
        # rank = position of the first 1-bit in the remaining 64 - p bits (1-based)
        ranks = np.full(len(hashes), 64 - p + 1, dtype=np.int64)
        nz = rest != 0
        if nz.any():
            ranks[nz] = 64 - _bit_length64(rest[nz]) + 1
        ranks = np.minimum(ranks, 64 - p + 1).astype(np.uint8)
        np.maximum.at(self.registers, idx, ranks)

    def add(self, key: str) -> None:
        """Add one key."""
        self.add_many([key])

    def merge(self, other: HyperLogLog) -> None:
        """Union with ``other`` (same precision)."""
        if other.precision != self.precision:
            raise ValueError("cannot merge HyperLogLogs of different precision")
        np.maximum(self.registers, other.registers, out=self.registers)

    def count(self) -> float:
        """Estimated number of distinct keys added."""
        m = float(len(self.registers))
        alpha = 0.7213 / (1 + 1.079 / m)
        estimate = alpha * m * m / float(np.sum(np.power(2.0, -self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if estimate <= 2.5 * m and zeros:
            return m * math.log(m / zeros)
        return estimate

    def to_state(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"precision": self.precision, "registers": base64.b64encode(self.registers.tobytes()).decode()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HyperLogLog:
        """Inverse of :meth:`to_state`."""
        out = cls(int(state["precision"]))
        out.registers = np.frombuffer(base64.b64decode(state["registers"]), dtype=np.uint8).copy()
        return out


def _bit_length32(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.int64)
    nz = values != 0
    # exact: every 32-bit integer is representable in float64, and log2 of 2**k - 1 stays below k
    out[nz] = np.floor(np.log2(values[nz].astype(np.float64))).astype(np.int64) + 1
    return out


def _bit_length64(values: np.ndarray) -> np.ndarray:
    """Exact bit length of unsigned 64-bit integers (no float rounding of large values)."""
    hi = values >> np.uint64(32)
    lo = values & np.uint64(0xFFFFFFFF)
    return np.where(hi != 0, 32 + _bit_length32(hi), _bit_length32(lo))
