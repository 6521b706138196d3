"""Large bodies are given back to the system soon after their flow ends, not at Python's next full collection.

mitmproxy's per-request objects sit in reference cycles (a layer and its context point at each other), so a
finished flow — with its 1 MB opencode conversation — is freed only by the cyclic garbage collector, whose full
runs come rarely: resident memory saw-tooths by hundreds of MB under long conversations. This addon collects
once enough body bytes have passed. It freezes everything alive at start-up first, and again when litellm's
import (a background thread, formats.litellm_bridge) lands: litellm alone is ~400,000 objects that a collection
would take 0.2 s to walk. So a collection only walks what came after and takes a few milliseconds. After each
collection it asks glibc to hand the freed heap pages back to the system (malloc_trim), so the freed bodies do
not stay in a fragmented heap.

An earlier version pinned glibc's mmap threshold at 128 KB instead, so every large block had its own mapping
that free() returns at once. That made every socket read cost three system calls and fresh page faults
(asyncio reads into a new 256 KB buffer each time): about 15 µs per streamed chunk and 5% of plain requests/s
(`./mitm_run.sh bench`). Trimming after a collection keeps the memory down without that.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from collections.abc import Callable

from mitmproxy import ctx, http

from ..formats import litellm_bridge
from .option_help import one_paragraph

logger = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


MALLOC_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """glibc: return the heap's free pages to the system (all of them, not only at the top). False elsewhere."""
    if MALLOC_TRIM is None:
        return False
    MALLOC_TRIM(0)
    return True


class MemoryGuard:
    def __init__(self) -> None:
        self.bytes_since_collect = 0
        self.litellm_frozen = threading.Event()

    def load(self, loader) -> None:
        loader.add_option(
            "translate_collect_every_mb",
            int,
            16,
            one_paragraph("""
            Run Python's garbage collector after this many MB of request and response bodies have passed, so the
            memory of finished flows is returned promptly; 0 leaves it to Python's own schedule.
            """),
        )

    def running(self) -> None:
        gc.collect()
        gc.freeze()
        trim_heap()
        # Only a freeze (constant time), no collection: the import leaves no cyclic garbage to find.
        litellm_bridge.warm().add_done_callback(self.freeze_litellm)

    def freeze_litellm(self, _: object) -> None:
        gc.freeze()
        self.litellm_frozen.set()

    def response(self, flow: http.HTTPFlow) -> None:
        self.count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.count(flow)

    def count(self, flow: http.HTTPFlow) -> None:
        limit = ctx.options.translate_collect_every_mb * 1024 * 1024
        if not limit:
            return
        self.bytes_since_collect += len(flow.request.raw_content or b"")
        if flow.response:
            self.bytes_since_collect += len(flow.response.raw_content or b"")
        if self.bytes_since_collect >= limit:
            self.bytes_since_collect = 0
            gc.collect()
            trim_heap()
