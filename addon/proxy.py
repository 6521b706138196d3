"""Entry script: `mitmdump -s addon/proxy.py` (mitm_run.sh does this). Loads the translation proxy's addons."""

import sys
from pathlib import Path

# mitmproxy loads this file as a script; the addon package lives beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mitmproxy import contentviews  # noqa: E402

from addon.inspection import chatview, client_view, format_view, native_view  # noqa: E402
from addon.inspection.report import Report  # noqa: E402
from addon.inspection.sessions.addon import Sessions  # noqa: E402
from addon.inspection.sessions.page import SessionPage  # noqa: E402
from addon.inspection.telemetry import Telemetry  # noqa: E402
from addon.request.client_host import ClientHost  # noqa: E402
from addon.request.client_request import ClientRequest  # noqa: E402
from addon.request.cors import Cors  # noqa: E402
from addon.request.ingress import Ingress  # noqa: E402
from addon.request.recorded_address import RecordedAddress  # noqa: E402
from addon.request.replay import Replay  # noqa: E402
from addon.request.resend import Resend  # noqa: E402
from addon.request.routing import Routing  # noqa: E402
from addon.request.vertex_auth import VertexAuth  # noqa: E402
from addon.response.egress import Egress  # noqa: E402
from addon.response.fallbacks import Fallbacks  # noqa: E402
from addon.response.offline_replay import OfflineReplay  # noqa: E402
from addon.response.responses import Responses  # noqa: E402
from addon.response.upstream_timeouts import UpstreamTimeouts  # noqa: E402
from addon.runtime import addon_order  # noqa: E402
from addon.runtime.memory import MemoryGuard  # noqa: E402
from addon.runtime.patches import PATCHES, SPEED, MitmproxyPatches  # noqa: E402
from addon.runtime.reason_phrase import ReasonPhrase  # noqa: E402
from addon.runtime.request_timeout import RequestReadTimeout  # noqa: E402
from addon.runtime.retention import FlowRetention  # noqa: E402
from addon.runtime.shutdown import GracefulShutdown  # noqa: E402
from addon.runtime.startup_log import StartupLog  # noqa: E402
from addon.runtime.unclosed_sockets import UnclosedSockets  # noqa: E402
from addon.runtime.upstream_key import UpstreamHttp1  # noqa: E402

contentviews.add(chatview.ChatView)
contentviews.add(chatview.LLMUpstreamRawView)
contentviews.add(native_view.NativeRequestView)
contentviews.add(client_view.ClientRequestView)
contentviews.add(format_view.ClientFormatView)

sessions = Sessions()
routing = Routing()
# The addons pass what they know about an exchange through its record (formats/exchange.py), never by looking
# each other up; within one hook they run in this order, the order of the path a request takes.
# GracefulShutdown first: while stopping, its 503 answers a request before routing sends it anywhere. Replay turns a
# replayed flow back into its client request, ClientRequest keeps that request, then Routing translates it once.
addons = [
    StartupLog(),  # its `load` comes before any addon's `configure`: a fatal config error is followed by no 'listening'
    GracefulShutdown(),
    RequestReadTimeout(),
    Cors(),  # before routing: a preflight is answered before the proxy key is asked for
    SessionPage(sessions.index, routing.instance),  # before routing: /_proxy/sessions never goes upstream
    Replay(),
    ClientRequest(),
    ClientHost(),  # after ClientRequest kept the client's Host: the target's Host from here on
    Ingress(routing),  # after ClientRequest (it keeps the client's Responses/Messages body), before routing
    routing,
    VertexAuth(),  # after Routing: Vertex AI's token for the flows it sent there
    RecordedAddress(),  # after the request side: where each request went; a flow read from a file goes there again
    Resend(),
    OfflineReplay(),  # after routing (it matches translated requests), before mitmproxy's ServerPlayback
    UpstreamTimeouts(),
    Fallbacks(),
    Responses(),
    UpstreamHttp1(),  # HTTP/1.1 upstream, where the key goes on the wire only (runtime/upstream_key.py)
    sessions,  # before Report: the log and comment tell the flow's session turn
    Report(),
    Egress(),  # after Responses (wraps its stream rewriter), Sessions and Report (they read the chat answer)
    Telemetry(),  # after Sessions and Report: its span reads the session id and the tool-call findings
    ReasonPhrase(),  # after every addon that may change a status: its own reason phrase, never `502 OK`
    FlowRetention(),
    UnclosedSockets(),  # closes what a race in mitmproxy leaves open (runtime/unclosed_sockets.py)
    MitmproxyPatches(PATCHES, SPEED),  # after GracefulShutdown: its `done` ends flows through the patches
    MemoryGuard(),
]  # last: its start-up freeze comes after the other addons' start-up (litellm's import freezes when it lands)

# The addons that must keep this relative order, checked now: one missing or out of place stops the script (its
# ERROR at start-up ends mitmdump). Others may go anywhere in `addons`; add a new addon's class name here, at its
# place, only when it must run before or after one of these.
ORDER = (
    "StartupLog",  # its `load` before any addon's `configure`
    "GracefulShutdown",  # first: while stopping, its 503 answers before anything else runs
    "RequestReadTimeout",
    "Cors",  # before Routing: a preflight is answered before the proxy key is asked for
    "SessionPage",  # before Routing: /_proxy/sessions never goes upstream
    "Replay",  # a replayed flow back to its client request, before ClientRequest keeps it
    "ClientRequest",
    "Ingress",  # after ClientRequest (it keeps the client's own body), before Routing (it routes a chat request)
    "Routing",  # translates once, after Replay and ClientRequest
    "VertexAuth",  # after Routing: Vertex AI's token for the flows it sent there
    "OfflineReplay",  # after Routing: it matches translated requests
    "UpstreamTimeouts",
    "Fallbacks",  # before Responses: its answer to a failed flow is what Responses' error hook keeps
    "Responses",
    "Sessions",  # before Report: the log and comment tell the flow's session turn
    "Report",
    "Egress",  # after Responses, Sessions and Report: it wraps the rewriter and they read the chat answer
    "Telemetry",  # after Sessions and Report: its span reads the session id and the tool-call findings
    "ReasonPhrase",  # after every addon that may change a status (Egress included)
    "MitmproxyPatches",  # after GracefulShutdown: its `done` ends flows through the patches it removes
    "MemoryGuard",  # last: its start-up freeze comes after the other addons' start-up
)
addon_order.check(addons, ORDER)
