"""Large bodies are given back to the system soon after their flow ends, not at Python's next full collection.

mitmproxy's per-request objects sit in reference cycles (a layer and its context point at each other), so a
finished flow — with its 1 MB opencode conversation — is freed only by the cyclic garbage collector, whose full
runs come rarely: resident memory saw-tooths by hundreds of MB under long conversations. This addon collects
once enough body bytes have passed. It freezes everything alive at start-up first (litellm alone is a large
heap), so a collection only walks what came after and takes a few milliseconds.
"""

from __future__ import annotations

import gc
import logging

from mitmproxy import ctx, http
from .option_help import one_paragraph

logger = logging.getLogger(__name__)


class MemoryGuard:
    def __init__(self) -> None:
        self.bytes_since_collect = 0

    def load(self, loader) -> None:
        loader.add_option("translate_collect_every_mb", int, 16, one_paragraph("""
            Run Python's garbage collector after this many MB of request and response bodies have passed, so the
            memory of finished flows is returned promptly; 0 leaves it to Python's own schedule.
            """))

    def running(self) -> None:
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
