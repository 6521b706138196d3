"""Record once, play back offline: `./mitm_run.sh --server-replay session.mitm` answers from a -w recording.

mitmproxy's own ServerPlayback serves the recorded answers; it runs after this script's addons, so it sees each
request already translated by routing, as the recording holds them. Its matching (method, path and the raw body)
would miss a request that differs only in what changes between runs of the same task, so this addon, when
`server_replay` is set, gives every request a key of what matters (replay_match.request_key) in the
`x-llm-replay-key` header, gives the recorded requests theirs once they are loaded, and sets:

    server_replay_use_headers=[x-llm-replay-key]   match on that key ...
    server_replay_ignore_content=true               ... not on the raw body (ids, signatures, dates)
    server_replay_ignore_host/port=true             the upstream's address may change (a local fake, a mirror)
    server_replay_reuse=true                        the same request always gets the same answer
    server_replay_extra=forward                     (unmatched requests never get that far: see below)

A request with no recorded match is answered here, before ServerPlayback, with an OpenAI-shaped 404 that says how it
differs from the closest recorded request: no hang, and nothing goes to the network. A matched flow is annotated
from the recording (its answer, for the log and the comment, which starts with "recorded answer").
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http

from ..formats import errors
from ..formats.exchange import Exchange
from ..runtime import upstream_key
from . import replay_match

logger = logging.getLogger(__name__)

HEADER = "x-llm-replay-key"
SERVER_REPLAY_OPTIONS = {
    "server_replay_use_headers": [HEADER],
    "server_replay_ignore_content": True,
    "server_replay_ignore_host": True,
    "server_replay_ignore_port": True,
    "server_replay_reuse": True,
    "server_replay_extra": "forward",
}


def flow_key(flow: http.HTTPFlow) -> tuple[str, object, str]:
    """(upstream path, normalized body, key) of a routed request."""
    request = flow.request
    form = replay_match.normalized(request.get_content(strict=False) or b"")
    return request.path, form, replay_match.request_key(request.method, request.scheme, request.path, form)


class OfflineReplay:
    def __init__(self) -> None:
        self.recorded: dict[str, http.HTTPFlow] = {}  # key -> the first recorded flow with an answer
        self.forms: list[tuple[str, object]] = []  # (path, normalized body) of each, to say why nothing matched
        self.source = ""

    def configure(self, updated: set[str]) -> None:
        if "server_replay" in updated and ctx.options.server_replay:
            self.source = ", ".join(ctx.options.server_replay)
            ctx.options.update(**SERVER_REPLAY_OPTIONS)

    def running(self) -> None:
        playback = ctx.master.addons.get("serverplayback")
        if not self.source or playback is None:
            return
        answers = []
        for flow in [f for flows in playback.flowmap.values() for f in flows]:
            ex = Exchange.find(flow)
            if ex is None or ex.key is None or flow.response is None:
                continue  # answered by the proxy itself, or no answer recorded
            path, form, key = flow_key(flow)
            flow.request.headers[HEADER] = key
            self.recorded.setdefault(key, flow)
            self.forms.append((path, form))
            answers.append(flow)
        # Only upstream answers are played back: what the proxy answers itself (/health, /v1/models, the session
        # page) it answers now, and a recorded /health ("litellm": "loading") would otherwise match every new one.
        playback.load_flows(answers)  # ServerPlayback hashes them again, with their keys
        logger.info(f"server replay: {len(self.recorded)} recorded LLM answers from {self.source}")

    def request(self, flow: http.HTTPFlow) -> None:
        if not self.source or flow.response or flow.error or not flow.live:
            return
        ex = Exchange.find(flow)
        if ex is None or ex.key is None:
            return  # answered by the proxy itself
        path, form, key = flow_key(flow)
        upstream_key.detach_key(flow.request)  # nothing goes upstream while playing back
        if key in self.recorded:
            flow.request.headers[HEADER] = key
            ex.recorded = {"key": key, "flow": self.recorded[key].id}
            return
        why = replay_match.difference(form, path, self.forms)
        message = f"No recorded answer in {self.source} matches this request: {why}."
        ex.error = message
        flow.response = errors.error_response(message, 404, "no_recorded_answer")
        flow.is_replay = "response"  # as ServerPlayback marks its own answers to unmatched requests
        logger.warning(f"server replay: {message}")

    def response(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if flow.is_replay != "response" or ex is None or ex.recorded is None:
            return
        source = self.recorded.get(ex.recorded["key"])
        recorded = Exchange.find(source) if source is not None else None
        if recorded is not None:
            ex.answer, ex.stream_done = recorded.answer, recorded.stream_done
