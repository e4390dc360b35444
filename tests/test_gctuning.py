"""Process tuning of the collector and the allocator (openmdr.gctuning)."""

from __future__ import annotations

import gc
import platform

import pyarrow as pa
import pytest

from openmdr.gctuning import paused_gc, relaxed_gc, tune_allocator


def test_relaxed_gc_raises_the_threshold_and_restores_it_when_the_last_block_ends() -> None:
    before = gc.get_threshold()
    with relaxed_gc(threshold=before[0] + 12_345):
        with relaxed_gc(threshold=1):
            assert gc.get_threshold()[0] == before[0] + 12_345
        assert gc.get_threshold()[0] == before[0] + 12_345
    assert gc.get_threshold() == before


def test_paused_gc_stops_automatic_collection_and_keeps_an_outer_pause() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found collection paused and leaves it paused
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # a caller's own pause survives the block
    finally:
        gc.enable()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator setting exists only in glibc")
def test_tune_allocator_takes_effect_on_glibc_and_is_idempotent() -> None:
    assert tune_allocator() is True
    assert pa.default_memory_pool().backend_name == "system"  # Arrow allocates from the same retained heap
    assert tune_allocator() is True  # a second call changes nothing and still reports the tuned state
