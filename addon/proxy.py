"""Entry script: `mitmdump -s addon/proxy.py` (mitm_run.sh does this). Loads the translation proxy's addons."""

import sys
from pathlib import Path

# mitmproxy loads this file as a script; the addon package lives beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mitmproxy import contentviews  # noqa: E402

from addon.inspection import chatview  # noqa: E402
from addon.inspection.report import Report  # noqa: E402
from addon.request.routing import Routing  # noqa: E402
from addon.response.fallbacks import Fallbacks  # noqa: E402
from addon.response.responses import Responses  # noqa: E402
from addon.response.upstream_timeouts import UpstreamTimeouts  # noqa: E402
from addon.runtime import error_pages, hook_dispatch  # noqa: E402
from addon.runtime.hook_dispatch import HandlerCache  # noqa: E402
from addon.runtime.log_broadcast import LegacyLogBroadcast  # noqa: E402
from addon.runtime.memory import MemoryGuard  # noqa: E402
from addon.runtime.retention import FlowRetention  # noqa: E402
from addon.runtime.shutdown import GracefulShutdown  # noqa: E402

error_pages.install()
hook_dispatch.install()
contentviews.add(chatview.ChatView)
contentviews.add(chatview.LLMUpstreamRawView)

# GracefulShutdown first: while stopping, its 503 answers a request before routing sends it anywhere.
addons = [
    GracefulShutdown(),
    Routing(),
    UpstreamTimeouts(),
    Fallbacks(),
    Responses(),
    Report(),
    FlowRetention(),
    LegacyLogBroadcast(),
    HandlerCache(),
    MemoryGuard(),
]  # last: its start-up freeze comes after the other addons' start-up (litellm's import freezes when it lands)
