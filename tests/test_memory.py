"""MemoryGuard collects after enough body bytes, and not before."""

import gc

from mitmproxy.test import taddons, tflow

from addon.formats import litellm_bridge
from addon.runtime import memory


def flow_with_bodies(size: int):
    flow = tflow.tflow(resp=True)
    flow.request.content = b"x" * size
    flow.response.content = b"y" * size
    return flow


def test_collects_once_enough_bytes_passed(monkeypatch):
    calls = []
    monkeypatch.setattr(memory.gc, "collect", lambda *a: calls.append(a))
    guard = memory.MemoryGuard()
    with taddons.context(guard) as tctx:
        tctx.configure(guard, translate_collect_every_mb=1)
        guard.response(flow_with_bodies(200_000))  # 400 kB
        guard.error(flow_with_bodies(200_000))  # 800 kB
        assert calls == []
        guard.response(flow_with_bodies(200_000))  # 1.2 MB: collect, and start counting again
        assert len(calls) == 1 and guard.bytes_since_collect == 0


def test_zero_leaves_collection_to_python(monkeypatch):
    calls = []
    monkeypatch.setattr(memory.gc, "collect", lambda *a: calls.append(a))
    guard = memory.MemoryGuard()
    with taddons.context(guard) as tctx:
        tctx.configure(guard, translate_collect_every_mb=0)
        for _ in range(20):
            guard.response(flow_with_bodies(1_000_000))
    assert calls == []


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


def test_heap_is_trimmed_on_glibc():
    import platform

    assert memory.trim_heap() is (platform.libc_ver()[0] == "glibc")


def test_a_collection_is_followed_by_a_trim(monkeypatch):
    events = []
    monkeypatch.setattr(memory.gc, "collect", lambda *a: events.append("collect"))
    monkeypatch.setattr(memory, "trim_heap", lambda: events.append("trim"))
    guard = memory.MemoryGuard()
    with taddons.context(guard) as tctx:
        tctx.configure(guard, translate_collect_every_mb=1)
        guard.response(flow_with_bodies(600_000))
    assert events == ["collect", "trim"]
