"""MemoryGuard: a collection after enough body bytes, and not before; the start-up heap really frozen; the freed
memory really handed back to the system (glibc's malloc_trim), seen in the process's resident size."""

import ctypes
import gc
import os
import platform
import weakref
from collections.abc import Iterator

import pytest
from mitmproxy.test import taddons, tflow

from addon.formats import litellm_bridge
from addon.runtime import memory

GLIBC = platform.libc_ver()[0] == "glibc"
PAGE = os.sysconf("SC_PAGE_SIZE")


def flow_with_bodies(size: int):
    flow = tflow.tflow(resp=True)
    flow.request.content = b"x" * size
    flow.response.content = b"y" * size
    return flow


class Cycle:
    """Garbage only the cyclic collector can free (as mitmproxy's finished layers are)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def no_automatic_gc() -> Iterator[list[int]]:
    """Python's own collections off, so every collection seen is the guard's; yields the full collections seen."""
    full: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    was_enabled = gc.isenabled()
    gc.disable()
    gc.callbacks.append(seen)
    try:
        yield full
    finally:
        gc.callbacks.remove(seen)
        if was_enabled:
            gc.enable()


@pytest.fixture
def guard() -> Iterator[memory.MemoryGuard]:
    addon = memory.MemoryGuard()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_collect_every_mb=1)
        yield addon


def garbage_cycle() -> weakref.ref:
    return weakref.ref(Cycle())


def test_collects_once_enough_bytes_passed(guard, no_automatic_gc):
    garbage = garbage_cycle()
    guard.response(flow_with_bodies(200_000))  # 400 kB
    guard.error(flow_with_bodies(200_000))  # 800 kB
    assert no_automatic_gc == [] and garbage() is not None  # not yet
    guard.response(flow_with_bodies(200_000))  # 1.2 MB: collect, and start counting again
    assert len(no_automatic_gc) == 1 and garbage() is None
    assert guard.bytes_since_collect == 0


def test_zero_leaves_collection_to_python(no_automatic_gc):
    guard = memory.MemoryGuard()
    garbage = garbage_cycle()
    with taddons.context(guard) as tctx:
        tctx.configure(guard, translate_collect_every_mb=0)
        for _ in range(20):
            guard.response(flow_with_bodies(1_000_000))
    assert no_automatic_gc == [] and garbage() is not None


def test_running_freezes_the_start_up_heap():
    gc.unfreeze()
    alive_at_start = Cycle()  # a start-up object (litellm's tables, say)
    try:
        memory.MemoryGuard().running()
        assert gc.get_freeze_count() > 0
        assert not any(o is alive_at_start for o in gc.get_objects())  # the collector no longer walks it
        # Frozen means never collected: even once it is garbage, a full collection leaves it alone.
        frozen = weakref.ref(alive_at_start)
        del alive_at_start
        gc.collect()
        assert frozen() is not None
    finally:
        gc.unfreeze()
    gc.collect()
    assert frozen() is None


def test_running_freezes_the_start_up_heap_and_litellm_once_its_import_lands():
    """litellm is imported in a thread that may finish after `running`: its heap is frozen all the same, so a
    collection never walks it. (Frozen objects are the ones gc.get_objects no longer lists.)"""

    class StartUpObject:
        pass

    early = StartUpObject()
    try:
        guard = memory.MemoryGuard()
        guard.running()
        module = litellm_bridge.warm().result(timeout=120)
        assert guard.litellm_frozen.wait(10)
        assert not any(o is early for o in gc.get_objects())
        assert not any(o is module.model_cost for o in gc.get_objects())
        assert gc.get_freeze_count() > 100_000  # litellm alone is several hundred thousand objects
    finally:
        gc.unfreeze()


# malloc_trim, seen in the resident size: blocks from glibc's heap (below its mmap threshold), touched so they are
# resident, freed behind a block that stays, so free() cannot give them back by shrinking the heap's top.
BLOCK, BLOCKS = 4096, 10_000  # 40 MB
LIBC = ctypes.CDLL(None)
LIBC.malloc.restype, LIBC.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
LIBC.free.restype, LIBC.free.argtypes = None, [ctypes.c_void_p]


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class HeapBlocks:
    """BLOCKS heap blocks, resident, that go back to malloc's free lists (not to the system) when freed."""

    def __init__(self) -> None:
        self.blocks = [LIBC.malloc(BLOCK) for _ in range(BLOCKS)]
        for block in self.blocks:
            ctypes.memset(block, 1, BLOCK)
        self.pin = LIBC.malloc(BLOCK)  # above them: the heap's top cannot shrink past it

    def free(self) -> None:
        for block in self.blocks:
            LIBC.free(block)
        self.blocks = []

    def __del__(self) -> None:
        self.free()
        LIBC.free(self.pin)


class BodyHolder:
    """A finished flow's bodies in a reference cycle: freed only when the cyclic collector runs. The pin block
    stays with the test, so only trimming can give the freed blocks back."""

    def __init__(self, blocks: list[int]) -> None:
        self.blocks = blocks
        self.me = self

    def __del__(self) -> None:
        for block in self.blocks:
            LIBC.free(block)
        self.blocks.clear()


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trim_heap_gives_freed_heap_pages_back_to_the_system():
    heap = HeapBlocks()
    heap.free()
    before = resident()
    assert memory.trim_heap() is True
    assert before - resident() > BLOCK * BLOCKS // 2, "malloc_trim returned nothing"
    del heap


def test_trim_heap_says_whether_it_could_trim():
    assert (memory.trim_heap() is True) is GLIBC


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_the_memory_a_collection_frees_is_trimmed_after_it(guard, no_automatic_gc):
    """Trim after collect: what the collection frees goes back to the system at once (trimming first would not)."""
    heap = HeapBlocks()
    holder = weakref.ref(BodyHolder(heap.blocks))
    guard.response(flow_with_bodies(300_000))  # 600 kB: no collection yet
    start = resident()
    guard.response(flow_with_bodies(300_000))  # 1.2 MB: collect, then trim
    assert holder() is None
    assert start - resident() > BLOCK * BLOCKS // 2, "the freed bodies stayed in the process"
    del heap
