"""The exchange record: everything the proxy's addons know about one LLM exchange, in one typed object.

Each flow the proxy handles carries one `Exchange` under `flow.metadata["llm"]`. Addons find each other's results
here (routing's target, responses' answer, fallbacks' attempts, the session turn), never by looking another addon
up by name or by counting on the order of hooks. Every field has one owner, named per group below; the others only
read it. The exceptions say so: `error` is written by whichever stage ended the exchange, `repairs` is appended to
on the way out and on the way back, and `key` is replaced by Vertex AI's masked token (vertex_auth).

    ex = Exchange.of(flow)     # the flow's record, created when missing (writers)
    ex = Exchange.find(flow)   # the flow's record, or None (readers and guards)

Saved flows (`-w` files, `flow.copy()`, mitmweb's duplicate and revert) hold plain data: mitmproxy deep-copies
`flow.metadata` for a flow's state, and a deep copy of an Exchange is an Exchange (equal to it, sharing nothing)
that is also a dict holding `to_state()`: the fields that differ from their default, under the same key names
the earlier dict used. mitmproxy's file writer (tnetstring) writes that dict; `of` and `find` turn a dict read
back into an Exchange (`from_state`), so files written by older versions read back too. A key this version does
not know, or a value of an unexpected type, is kept in `extra` and written out again, never lost. Only copies
fill the dict: the live record's own mapping stays empty, and addons read and write its fields.

Fields, by owner (the names are also the keys in saved flows):

client_request.py (before routing):
  client_request    the client's request as it came, plain data: method, path, headers (no credentials), body
                    (chat requests, cut at translate_keep_client_request; `truncated`: the length it had).
                    Files from the first native-path version hold the body alone (bytes): kept in `extra`, read by
                    inspection/client_body.py
replay.py and resend.py:
  replay            a replayed flow: {n, t, from}; resend_of: the flow id llm.resend / llm.client.copy started from
routing.py (request side; a passthrough request sets only `passthrough` and `key`):
  endpoint          "POST /v1/chat/completions" as the client sent it
  client_model      the name the client asked for (a fallback attempt's is the client's, set by fallbacks.py)
  upstream_model, litellm_model, provider, api_base, is_gemini   where the request went (resolution.Target)
  key               the upstream key, masked ("AIza…1234", or "no key for host"); never the key itself
  key_source, key_hint   where the key came from, and the sentence added to a 401/403
  stream            the client asked for a stream
  t_request         when routing sent it (time.time())
  fallbacks         the names to try when the upstream fails (opencode.json's options.proxy.fallbacks)
  context_window, price_in, price_out   litellm's facts for the model (None when unknown)
  repairs           what was repaired on the way, in words (responses.py appends the answer's repairs)
  passthrough       a non-chat path sent on to the default upstream
  price_cached      the price of a cached prompt token
native_chat.py (the native Gemini path; the client's OpenAI body is in `client_request`):
  api               "openai" (default), "gemini" or "vertex"
  vertex_auth       vertex_auth.py attaches Vertex AI's token
responses.py and native_responses.py (response side):
  answer            the assembled answer, formats.answer.Answer.to_dict(): content, reasoning, tool_calls
                    [{id, name, arguments}], finish_reason, usage (prompt_tokens, completion_tokens, ...)
  t_first_chunk, t_end   when the first byte and the end came
  chunk_times       per SSE event of the stream, seconds since t_request
  upstream_raw      the upstream's body before it was rewritten (bytes, cut at translate_keep_stream_bytes)
  body_truncated, stream_done, error_event_sent   the stored body was cut; [DONE] came; an SSE error event went out
offline_replay.py: recorded (the answer came from a --server-replay file: {key, flow})
upstream_timeouts.py: timed_out (the upstream took too long)
shutdown.py: shutdown (the proxy stopped while the answer was in flight)
error (several writers): why the exchange failed, in words: routing, cors and request_timeout when the proxy
  refused the request, upstream_timeouts, shutdown, responses (the upstream's error), fallbacks (the answering
  attempt's)
fallbacks.py:
  fallback_of, attempt   on an attempt's own flow: the client's flow id, and the attempt's number (1, 2, ...)
  attempts          on the client's flow: [{model, upstream_model, api_base, t, status | error}] per try
  answered_by       the fallback name whose answer the client got
  hold_empty        a stream's events are held while its answer is empty (translate_retry_empty_answer)
  original          (not saved) the client's request as it came, kept by routing for fallbacks.py
  conversation      (not saved) the client's messages split (formats/conversation.py) and the body routing sent
                    on, for the session digests
report.py and toolcheck.py:
  tool_checks       what the tool-call check found wrong in the answer's calls (None: not checked)
  heading_logged    how many repairs the request's log block showed (verbosity full or chunks)
  empty_answer      the answer had no text and no tool calls (report.py)
  media_placeholders   attachments opencode sent as text, as found in the client's request (report.py)
capture/recorder.py (capture mode, `./mitm_run.sh capture`, where the reverse proxy's addons are not loaded:
  it writes the fields routing and responses write above, as far as a watched exchange has them):
  capture           the format recognised ("openai_chat", "anthropic", ...; capture/readers/recognise.py)
  host, path_model  the host as the client named it; the model named in the path (Gemini's), if any
ingress.py (request side) and egress.py (response side), for clients that speak another format:
  client_format     "openai_responses" or "anthropic" (formats/client_formats.py); None for chat clients
  client_params     what the answer's translation needs: Responses fields to echo and custom tool names, or
                    Anthropic's shortened tool names; `stream`
  client_notes      what the translation mapped or dropped, in words
  chat_response     the chat answer the client's was translated from (egress.py; cut like stream bodies); the
                    flow's response is what the client received
inspection/sessions/addon.py:
  session           the session turn, a dict documented in inspection/sessions/addon.py (id, parent_id, source,
                    tag, turn, diff)
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

KEY = "llm"  # the flow.metadata key (the name earlier versions used: their files read back)


@dataclass(slots=True, eq=True)
class Exchange(dict):  # the dict is the saved form, filled in copies only (see the module docstring)
    # client_request.py, replay.py, resend.py
    client_request: dict[str, Any] | None = None
    replay: dict[str, Any] | None = None
    resend_of: str | None = None
    # routing.py
    endpoint: str | None = None
    client_model: str | None = None
    upstream_model: str | None = None
    litellm_model: str | None = None
    provider: str | None = None
    api_base: str | None = None
    is_gemini: bool = False
    key: str | None = None
    key_source: str | None = None
    key_hint: str | None = None
    stream: bool = False
    t_request: float | None = None
    fallbacks: list[str] = field(default_factory=list)
    context_window: int | None = None
    price_in: float | None = None
    price_out: float | None = None
    price_cached: float | None = None
    repairs: list[str] = field(default_factory=list)
    passthrough: bool = False
    # native_chat.py
    api: str = "openai"
    vertex_auth: bool = False
    # responses.py, native_responses.py
    answer: dict[str, Any] | None = None
    t_first_chunk: float | None = None
    t_end: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    upstream_raw: bytes | None = None
    body_truncated: bool = False
    stream_done: bool = False
    error_event_sent: bool = False
    # offline_replay.py
    recorded: dict[str, Any] | None = None
    # upstream_timeouts.py, shutdown.py
    timed_out: bool = False
    shutdown: bool = False
    # several writers (see the module docstring)
    error: str | None = None
    # fallbacks.py
    fallback_of: str | None = None
    attempt: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    answered_by: str | None = None
    hold_empty: bool = False
    # report.py, toolcheck.py
    tool_checks: list[str] | None = None
    heading_logged: int | None = None
    empty_answer: bool = False
    media_placeholders: list[str] = field(default_factory=list)
    # capture/recorder.py
    capture: str | None = None
    host: str | None = None
    path_model: str | None = None
    # inspection/sessions/addon.py
    session: dict[str, Any] | None = None
    # request/ingress.py and response/egress.py (a client that speaks Responses or Anthropic Messages)
    client_format: str | None = None
    client_params: dict[str, Any] | None = None
    client_notes: list[str] = field(default_factory=list)
    chat_response: bytes | None = None
    # what a saved flow held that this version does not know (or not in this type): written back as it came
    extra: dict[str, Any] = field(default_factory=dict)
    # not saved: live objects for this process only
    original: Any = field(default=None, repr=False, compare=False)  # mitmproxy.http.Request (fallbacks.py)
    # (formats/conversation.Split | None, the body dict routing sent on) (sessions/addon.py)
    conversation: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, flow: Any) -> Exchange:
        """The flow's record; created when the flow has none, read from the plain data a saved or copied flow
        holds."""
        found = flow.metadata.get(KEY)
        if isinstance(found, Exchange):
            return found
        record = cls.from_state(found) if isinstance(found, dict) else cls()
        if found is not None and not isinstance(found, dict):
            record.extra["value"] = found
        flow.metadata[KEY] = record
        return record

    @classmethod
    def find(cls, flow: Any) -> Exchange | None:
        """The flow's record, or None when no addon has written one (nothing is created)."""
        found = flow.metadata.get(KEY)
        if isinstance(found, Exchange) or found is None:
            return found
        return cls.of(flow) if isinstance(found, dict) else None

    def to_state(self) -> dict[str, Any]:
        """Plain data for a saved flow: the fields that differ from their default, and `extra`, deep-copied."""
        state = {}
        for name in _SAVED:
            value = getattr(self, name)
            if value != _DEFAULTS[name]:
                state[name] = value
        for name, value in self.extra.items():
            state.setdefault(name, value)
        return copy.deepcopy(state)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Exchange:
        """The record a saved flow's dict describes (any version's: unknown keys and odd values go to `extra`)."""
        record = cls()
        for name, value in copy.deepcopy(state).items():
            if name in _SAVED and _fits(value, _TYPES[name]):
                setattr(record, name, value)
            else:
                record.extra[str(name)] = value
        return record

    def __deepcopy__(self, memo: dict) -> Exchange:
        # mitmproxy's Flow.get_state deep-copies flow.metadata for -w files, flow.copy() and mitmweb's revert: the
        # copy is a record of its own, and as a dict it is the plain data tnetstring writes (it writes no objects).
        state = self.to_state()
        copied = Exchange.from_state(state)
        dict.update(copied, state)
        memo[id(self)] = copied
        return copied

    def __copy__(self) -> Exchange:
        return self.__deepcopy__({})

    __hash__ = None  # mutable, like the dict it is

    def __bool__(self) -> bool:  # a record is there even while its dict (the saved form) is empty
        return True


_FIELDS = [f for f in dataclasses.fields(Exchange) if f.name not in ("extra", "original", "conversation")]
_SAVED = tuple(f.name for f in _FIELDS)
_DEFAULTS = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default for f in _FIELDS
}
_TYPES = {name: hint for name, hint in typing.get_type_hints(Exchange).items() if name in _SAVED}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a value read back from a file has the field's type (the outer type only)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)
