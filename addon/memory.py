"""Large bodies are given back to the system soon after their flow ends, not at Python's next full collection.

mitmproxy's per-request objects sit in reference cycles (a layer and its context point at each other), so a
finished flow — with its 1 MB opencode conversation — is freed only by the cyclic garbage collector, whose full
runs come rarely: resident memory saw-tooths by hundreds of MB under long conversations. This addon collects
once enough body bytes have passed. It freezes everything alive at start-up first (litellm alone is a large
heap), so a collection only walks what came after and takes a few milliseconds. And it pins glibc's mmap
threshold, so the freed bodies go back to the system rather than staying in a fragmented heap.
"""

from __future__ import annotations

import ctypes
import gc
import logging

from mitmproxy import ctx, http

from .option_help import one_paragraph

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def pin_mmap_threshold(size: int = 128 * 1024) -> bool:
    """glibc: serve every allocation above `size` bytes with its own mmap, which free() hands back to the system.

    glibc starts with this threshold but raises it (up to 32 MB) each time a large block is freed; from then on
    large bodies come from the heap, whose freed holes the process keeps. Setting it once turns that off. False
    where there is no glibc mallopt (macOS, musl answers 0).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, size) == 1


class MemoryGuard:
    def __init__(self) -> None:
        self.bytes_since_collect = 0

    def load(self, loader) -> None:
        loader.add_option("translate_collect_every_mb", int, 16, one_paragraph("""
            Run Python's garbage collector after this many MB of request and response bodies have passed, so the
            memory of finished flows is returned promptly; 0 leaves it to Python's own schedule.
            """))

    def running(self) -> None:
        # With the soak's mix (tests/soak.py, 6,000 requests) the pinned threshold keeps mitmweb at 465 MB
        # instead of 554 MB, and mitmdump at 242 MB instead of 256 MB.
        pin_mmap_threshold()
        gc.collect()
        gc.freeze()

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
