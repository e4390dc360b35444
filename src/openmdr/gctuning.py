"""Garbage-collector and allocator tuning for the hot paths of every stage (ingest batches, Sigma scans).

Parsing a batch allocates a few dictionaries and strings per event that all survive until
the batch is written.  With CPython's default collector thresholds that triggers full
collections again and again, each one walking every live event of the batch (measured:
the collector took about 40 % of the time of building the lake table for 40,000
events).  None of these objects form reference cycles, so :func:`relaxed_gc` raises
the young-generation threshold while batches are processed and restores it when the
last concurrent batch is done; collection still happens, just far less often.  The same
holds for a bulk Sigma scan (events, field dicts, alerts), which uses the same block.

Each batch also frees, all at once, the memory its events used, and the next batch asks
for as much again.  glibc's allocator by default gives freed memory at the top of the
heap (above 128 kB) back to the kernel and serves large blocks with fresh memory maps,
so every batch pays the kernel again for zeroed pages (measured: a fifth of an import's
CPU time); Arrow's bundled allocator does the same with its own pages.
:func:`tune_allocator` makes the process keep freed memory for reuse and lets Arrow
allocate from that same heap.
"""

from __future__ import annotations

import ctypes
import gc
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young-generation collections while a batch is processed.
BATCH_GC_THRESHOLD = 200_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def relaxed_gc(threshold: int = BATCH_GC_THRESHOLD) -> Iterator[None]:
    """Collect garbage less often inside the block (re-entrant and thread-safe)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(_saved[0], threshold), _saved[1], _saved[2])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block: for building large, acyclic, long-lived structures.

    Compiling a rule library or loading it from the compile cache creates some hundred
    thousand container objects that all stay alive; the collector, triggered again and
    again by those allocations, walked them all each time (measured: half of a cached
    load, a third of a cold compile).  Collection resumes when the block ends (unless it
    was already disabled when the block began).  The pause is process-wide: a compile in
    one thread (a library switch) also delays collection for the others, for its seconds;
    reference counting still frees everything that is not in a cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tune_gc_for_worker(gen0: int = 50_000) -> None:
    """Tune CPython's garbage collector for a long-lived correlation worker process.

    The correlator keeps a large, long-lived state and creates no reference cycles, so the
    default collector spends about half the CPU walking that state; freezing what exists at
    start-up and collecting the young generation less often halves the cost per alert.
    Call once in the worker's main, after start-up (never from library code).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, 50, 100)


#: Freed heap memory kept for reuse instead of being returned to the kernel.
RETAINED_HEAP_BYTES = 256 << 20
#: Blocks at least this large get their own ``mmap`` (glibc's own ceiling for its adaptive threshold).
MMAP_THRESHOLD_BYTES = 32 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_allocator_tuned = False


def tune_allocator(retain: int = RETAINED_HEAP_BYTES, mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Let glibc keep up to ``retain`` bytes of freed heap for reuse; True if the allocator was tuned.

    Arrow's default memory pool becomes the system allocator, so its batch buffers are
    served from the retained heap too.  A process-wide setting, so it is called once by
    process entry points (the CLI, the service, benchmarks), never from library code.
    Elsewhere than glibc it does nothing.
    The cost is a resident size that stays at its high-water mark, up to ``retain``
    above what is in use.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    _allocator_tuned = bool(mallopt(_M_TRIM_THRESHOLD, retain)) and bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold))
    if _allocator_tuned:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())  # Arrow's buffers reuse the same retained heap
    return _allocator_tuned
