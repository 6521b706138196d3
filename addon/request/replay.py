"""Client replay of the proxy's flows: mitmweb's Replay, `r` in mitmproxy console, `mitmdump -C FILE`, llm.resend.

mitmproxy replays a flow by sending its stored request through every addon again. The stored request is the one
routing already rewrote (upstream path, upstream model, masked key, repairs applied), and routing would rewrite it
a second time. So, before routing, this addon turns a replayed flow back into the client's request: the one kept
beside it (client_request.py) when the flow's request is as the proxy sent it, else (edited in mitmweb or the
console, or recorded without its client request) the request as it is now, under the client's path and model name.
Routing then translates it exactly once, with the config and the key of now: a repair that already happened finds
nothing left to do (thought signatures already restored stay as they are). The flow's metadata starts afresh, with
`replay` = {"n": how many times, "t": when, "from": what was sent, "recorded_route": where the flow went before},
so the answer is renamed, repaired, logged, commented and marked as a live one's; the comment starts with
"replay N". Routing takes today's route; when it differs from the recorded one, `note_route` says so in the log and
in `replay["route"]`.

A replay never takes a key from the flow: when the config names none now (routing asks `missing_key`), the flow
gets an OpenAI-shaped error and nothing is sent.
"""

from __future__ import annotations

import logging
import time

import orjson
from mitmproxy import http

from ..config import keys
from ..formats import errors
from ..formats.exchange import KEY, Exchange
from . import client_request, hops

logger = logging.getLogger(__name__)

# What a replay keeps of the flow's old record; everything else is found out again.
KEPT = ("client_request", "session", "fallback_of", "attempt")


def routed_before(ex: Exchange | None) -> bool:
    """A flow the proxy routed (its request is the upstream's), as opposed to a client-format request."""
    return ex is not None and (ex.endpoint is not None or ex.passthrough)


def edited(flow: http.HTTPFlow) -> bool:
    """Whether the request was changed since mitmproxy's backup of the flow (taken before a user's edit, and by
    the replay itself): mitmweb's and the console's editors call Flow.backup() before they change anything."""
    before = (getattr(flow, "_backup", None) or {}).get("request")
    if not isinstance(before, dict):
        return False
    now = flow.request
    return (before.get("method"), before.get("path"), before.get("content")) != (
        now.data.method,
        now.data.path,
        now.raw_content,
    )


def rebuilt(flow: http.HTTPFlow, ex: Exchange) -> dict:
    """The flow's request as it is now, in the client's form: its path and the client's model name back."""
    stored = ex.client_request or {}
    if ex.passthrough:
        if not stored:
            raise ValueError("This flow was recorded without its client request, so its client path is unknown.")
        path = stored["path"]
    else:
        path = flow.request.path
        if not client_request.is_chat_path(path):
            path = str(ex.endpoint or "POST /v1/chat/completions").partition(" ")[2]
    form = {
        "method": flow.request.method,
        "path": path,
        # Without the proxy's own hop mark: the stored upstream request carries it, and routing would take the
        # replay for a request that went round.
        "headers": [
            [name, value] for name, value in flow.request.headers.items(multi=True) if name.lower() != hops.HEADER
        ],
    }
    if not ex.passthrough:
        body = flow.request.raw_content or b""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None  # routing will refuse it with its own words
        if isinstance(parsed, dict) and ex.fallback_of is None and parsed.get("model") == ex.upstream_model:
            parsed["model"] = ex.client_model
            body = orjson.dumps(parsed)
        form["body"] = body
    return form


def route_of(ex: Exchange | None) -> str | None:
    """Where an exchange was routed, in words: "gemini-2.5-flash @ host:port" (and the API when not OpenAI's)."""
    if ex is None or not ex.api_base:
        return None
    api = f" ({ex.api} API)" if ex.api != "openai" else ""
    return f"{ex.upstream_model or '?'} @ {keys.host_of(ex.api_base)}{api}"


def note_route(ex: Exchange) -> None:
    """Routing calls this once it chose a replay's route: say so when it is not the route the flow was recorded
    with (another config, another GEMINI_API_BASE, another machine)."""
    replay = ex.replay
    if not replay or not replay.get("recorded_route"):
        return
    today = route_of(ex)
    if today is not None and today != replay["recorded_route"]:
        replay["route"] = today
        logger.info(f"replay {replay.get('n')}: routed to {today} today; it was recorded to {replay['recorded_route']}")


def missing_key(flow: http.HTTPFlow, api_key: str | None) -> str | None:
    """Routing asks before sending a replay: the message to answer with when no key can be had now, else None."""
    ex = Exchange.find(flow)
    if api_key or ex is None or ex.replay is None:
        return None
    return (
        "This replay needs the upstream's key, and the current config names none (set GEMINI_API_KEY, or the "
        "provider's apiKey in opencode.json, and replay again). Nothing was sent: a flow holds the key masked only."
    )


class Replay:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or flow.is_replay != "request":
            return
        old = Exchange.find(flow)
        if old is not None and old.fallback_of is not None and old.endpoint is None:
            return  # a fallback attempt on its way (fallbacks.py), not a user's replay
        previous = old or Exchange()
        fresh = Exchange(**{name: getattr(previous, name) for name in KEPT})
        if previous.fallback_of is not None:
            fresh.client_model = previous.client_model
        n = int((previous.replay or {}).get("n", 0)) + 1
        fresh.replay = {"n": n, "t": round(time.time(), 3), "from": "client request"}
        if recorded_route := (previous.replay or {}).get("recorded_route") or route_of(old):
            fresh.replay["recorded_route"] = recorded_route
        flow.metadata[KEY] = fresh
        if routed_before(old):
            try:
                fresh.replay["from"] = self.to_client_form(flow, previous)
            except ValueError as e:
                fresh.error = f"Cannot replay: {e}"
                flow.response = errors.error_response(fresh.error, 400, "replay_impossible")
                return
        logger.info(f"replay {n} of {flow.request.method} {flow.request.path} (from the {fresh.replay['from']})")

    @staticmethod
    def to_client_form(flow: http.HTTPFlow, ex: Exchange) -> str:
        """Put the client's form of a routed flow's request back; what it came from."""
        changed = edited(flow)
        stored = client_request.whole(ex.client_request, flow.request.raw_content)
        if client_request.complete(stored) and not changed:
            assert stored is not None
            client_request.restore(flow.request, stored)
            return "client request"
        client_request.restore(flow.request, rebuilt(flow, ex))
        return "edited request" if changed else "upstream request"
