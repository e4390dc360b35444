"""Columnar lookup structures: exact string sets, domain suffixes and IPv4 prefixes over Arrow arrays.

Everything here works on whole arrays with numpy/pyarrow kernels; no Python runs per row.

* :class:`StringIndex` hashes strings with a vectorised 64-bit polynomial hash over the Arrow
  buffers (:func:`hash_strings`), keeps the sorted hashes of the indexed values, and probes a
  batch with ``np.searchsorted``; every candidate is then confirmed by comparing the strings,
  so a hash collision can never produce a false match.  The index is built once; a probe costs
  a pass over the batch's bytes, whatever the size of the index.
* Domain suffix matching strips one leading label at a time from the batch's distinct domains
  and probes each level (``a.b.evil.example`` -> ``b.evil.example`` -> ``evil.example``).
* :class:`Ip4Index` is a longest-prefix table: for every prefix length present it keeps the
  sorted network numbers, and a batch of addresses is shifted and probed per length, which
  finds every CIDR (and single address, a /32) containing each address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MULT = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POWERS = np.ones(1, dtype=np.uint64)
_IPV4_RE = r"^(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})$"
#: Most labels a domain is stripped through when probing for parent domains.
MAX_DOMAIN_LABELS = 16
_HASH_BLOCK_BYTES = 1 << 20


def _powers(n: int) -> np.ndarray:
    global _POWERS
    if len(_POWERS) < n:
        size = max(n, 2 * len(_POWERS))
        out = np.empty(size, dtype=np.uint64)
        out[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, size):  # once per new maximum length, not per row
                out[i] = out[i - 1] * _MULT
        _POWERS = out
    return _POWERS


def as_string_array(values: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """One contiguous ``string`` array (chunks combined, large strings and dictionaries cast)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def hash_strings(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every string and the validity mask (nulls hash to 0 and are invalid).

    The hash is ``sum(byte[i] * M**i) mod 2**64`` mixed with the length and a splitmix64
    finalizer, computed from the array's offset and data buffers with prefix sums.
    """
    arr = as_string_array(values)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    if arr.nbytes > _HASH_BLOCK_BYTES and n > 1:
        # Cache-sized blocks: the per-byte temporaries of a huge array would not fit.
        step = max(1, int(n * _HASH_BLOCK_BYTES / arr.nbytes))
        parts = [_hash_block(arr.slice(i, step)) for i in range(0, n, step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _hash_block(arr)


def _hash_block(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    base = int(offsets[0])
    total = int(offsets[-1]) - base
    lengths = np.diff(offsets)
    rel = offsets - base
    if total:
        data = np.frombuffer(buffers[2], dtype=np.uint8, count=total, offset=base).astype(np.uint64)
        position = np.arange(total, dtype=np.int64) - np.repeat(rel[:-1], lengths)
        contrib = data * _powers(int(lengths.max()))[position]
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(contrib, out=prefix[1:])
        h = prefix[rel[1:]] - prefix[rel[:-1]]
    else:
        h = np.zeros(n, dtype=np.uint64)
    h ^= lengths.astype(np.uint64) * _GOLDEN
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    valid = np.asarray(arr.is_valid())
    h[~valid] = 0
    return h, valid


def _csr(keys: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group ``members`` by ``keys``: sorted unique keys, offsets into the grouped members, members."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    unique, starts = np.unique(sorted_keys, return_index=True)
    offsets = np.append(starts, len(sorted_keys)).astype(np.int64)
    return unique, offsets, members[order]


def _expand(
    rows: np.ndarray, slots: np.ndarray, offsets: np.ndarray, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each (row, slot) pair, one (row, member) pair per member grouped under that slot."""
    counts = offsets[slots + 1] - offsets[slots]
    out_rows = np.repeat(rows, counts)
    starts = np.repeat(offsets[slots], counts)
    within = np.arange(len(out_rows), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return out_rows, members[starts + within]


@dataclass(slots=True)
class StringIndex:
    """Exact string lookup: distinct values (grouped members per value) behind sorted 64-bit hashes."""

    hashes: np.ndarray  # sorted hashes of the distinct values (equal hashes adjacent)
    values: pa.StringArray  # distinct values, in hash order
    offsets: np.ndarray  # members of value i are members[offsets[i]:offsets[i+1]]
    members: np.ndarray

    @classmethod
    def build(cls, values: Sequence[str] | pa.Array, members: np.ndarray) -> StringIndex:
        """Index ``values`` (one per member id in ``members``; repeats allowed)."""
        arr = as_string_array(pa.array(values, type=pa.string()) if not isinstance(values, pa.Array) else values)
        if len(arr) == 0:
            return cls(np.zeros(0, np.uint64), pa.array([], pa.string()), np.zeros(1, np.int64), np.zeros(0, np.int64))
        encoded = pc.dictionary_encode(arr)
        distinct = as_string_array(encoded.dictionary)
        codes = np.asarray(encoded.indices, dtype=np.int64)
        dh, _ = hash_strings(distinct)
        order = np.argsort(dh, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        _, offsets, grouped = _csr(rank[codes], np.asarray(members, dtype=np.int64))
        # Every distinct value has at least one member, so the unique keys are 0..n-1.
        return cls(dh[order], distinct.take(pa.array(order)), offsets, grouped)

    def __len__(self) -> int:
        return len(self.values)

    def probe(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``values``, slot of the equal indexed value) for every exact hit."""
        if len(self.hashes) == 0 or len(values) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        h, valid = hash_strings(values)
        left = np.searchsorted(self.hashes, h, side="left")
        found = self.hashes[np.minimum(left, len(self.hashes) - 1)] == h
        hit = np.nonzero(found & valid)[0]
        if len(hit) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Equal hashes sit side by side: the run length is one except for collisions.
        counts = np.searchsorted(self.hashes, h[hit], side="right") - left[hit]
        rows = np.repeat(hit, counts)
        within = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = np.repeat(left[hit], counts) + within
        same = pc.equal(as_string_array(values).take(pa.array(rows)), self.values.take(pa.array(slots)))
        keep = np.asarray(same.fill_null(False), dtype=bool)
        return rows[keep], slots[keep]

    def lookup(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``values``, member) for every member whose value equals the string there."""
        rows, slots = self.probe(values)
        return _expand(rows, slots, self.offsets, self.members)

    def lookup_suffixes(self, values: pa.Array, max_labels: int = MAX_DOMAIN_LABELS) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`lookup`, but a value also hits every indexed parent domain of it."""
        arr = as_string_array(values)
        all_rows: list[np.ndarray] = []
        all_members: list[np.ndarray] = []
        current = arr
        positions = np.arange(len(arr), dtype=np.int64)
        for _ in range(max_labels):
            rows, members = self.lookup(current)
            all_rows.append(positions[rows])
            all_members.append(members)
            has_dot = np.asarray(pc.match_substring(current, ".").fill_null(False), dtype=bool)
            if not has_dot.any():
                break
            keep = np.nonzero(has_dot)[0]
            positions = positions[keep]
            current = pc.replace_substring_regex(current.take(pa.array(keep)), r"^[^.]*\.", "", max_replacements=1)
        return np.concatenate(all_rows), np.concatenate(all_members)


def parse_ipv4(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """IPv4 dotted quads as uint32 numbers and the mask of values that were valid IPv4."""
    arr = as_string_array(values)
    if len(arr) == 0:
        return np.zeros(0, np.uint32), np.zeros(0, bool)
    parts = pc.extract_regex(arr, _IPV4_RE)
    ok = np.asarray(parts.is_valid())
    number = np.zeros(len(arr), dtype=np.int64)
    for name in ("a", "b", "c", "d"):
        octet = np.asarray(pc.cast(pc.struct_field(parts, name), pa.int64()).fill_null(0), dtype=np.int64)
        ok &= octet <= 255
        number = (number << 8) | octet
    return number.astype(np.uint32), ok


@dataclass(slots=True)
class Ip4Index:
    """IPv4 longest-prefix table: per prefix length, sorted networks with their grouped members."""

    tables: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]  # (prefixlen, networks, offsets, members)

    @classmethod
    def build(cls, networks: np.ndarray, prefixlens: np.ndarray, members: np.ndarray) -> Ip4Index:
        """Index IPv4 networks (uint32 network address, prefix length 0-32) with a member each."""
        tables = []
        networks = np.asarray(networks, dtype=np.uint64)
        prefixlens = np.asarray(prefixlens, dtype=np.int64)
        members = np.asarray(members, dtype=np.int64)
        for length in np.unique(prefixlens):
            sel = prefixlens == length
            keys = networks[sel] >> np.uint64(32 - int(length))
            unique, offsets, grouped = _csr(keys, members[sel])
            tables.append((int(length), unique, offsets, grouped))
        return cls(tables)

    def __len__(self) -> int:
        return sum(len(t[1]) for t in self.tables)

    def lookup(self, addresses: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, member) for every indexed network containing the address at that position."""
        rows_out: list[np.ndarray] = [np.zeros(0, np.int64)]
        members_out: list[np.ndarray] = [np.zeros(0, np.int64)]
        positions = np.nonzero(valid)[0]
        if len(positions) == 0:
            return rows_out[0], members_out[0]
        addrs = addresses[positions].astype(np.uint64)
        for length, networks, offsets, members in self.tables:
            keys = addrs >> np.uint64(32 - length)
            slot = np.searchsorted(networks, keys)
            slot_c = np.minimum(slot, len(networks) - 1)
            hit = networks[slot_c] == keys
            if hit.any():
                rows, mem = _expand(positions[hit], slot_c[hit], offsets, members)
                rows_out.append(rows)
                members_out.append(mem)
        return np.concatenate(rows_out), np.concatenate(members_out)
