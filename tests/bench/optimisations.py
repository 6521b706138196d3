"""Each optimisation of the hot paths measured against the plain way, side by side in one process.

`.venv/bin/python -m tests.bench.micro` prints these after the micro-benchmarks: per pair the time of one
operation with the optimisation and without it, their ratio and what one operation saves. docs/benchmarks.md
("Optimisations and the targets they serve") names the target each one serves; the figures there come from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson

from . import bodies

Run = Callable[[], Any]
Pair = Callable[[], tuple[Run, Run]]  # (with the optimisation, without it)


def conversation_reuse() -> tuple[Run, Run]:
    """Routing's check of a 1.1 MB follow-up turn: kept splits (formats/conversation.py) against reading it all."""
    from addon.formats.conversation import Conversations
    from addon.request.chat_request import parse_chat_request

    turns = bodies.follow_up_turns()
    conversations, sent = Conversations(), itertools.cycle(turns)
    plain = itertools.cycle(turns)
    return (
        lambda: parse_chat_request(next(sent), 64 << 20, conversations),
        lambda: parse_chat_request(next(plain), 64 << 20, None),
    )


def kept_client_body() -> tuple[Run, Run]:
    """The client's 1.1 MB body kept as a patch: the fields beside its raw messages against both bodies whole."""
    from addon.formats import kept_body
    from addon.gemini import tool_schema
    from addon.request.chat_request import encode_body, parse_chat_request
    from addon.request.client_request import beside

    client = bodies.follow_up_turns(count=1)[0]
    chat = parse_chat_request(client, 64 << 20)
    around = beside(client, chat.body)
    assert around is not None
    chat.body["model"] = "gemini-2.5-flash"
    tool_schema.clean_tools(chat.body)
    forwarded = encode_body(chat.body)
    fields = {k: v for k, v in chat.body.items() if k != "messages"}
    return (
        lambda: kept_body.make_beside(around.fields, fields, forwarded, len(client)),
        lambda: kept_body.make(client, forwarded),
    )


def tool_list_cache() -> tuple[Run, Run]:
    """opencode's ten tools cleaned for Gemini: kept per tool list (gemini/tool_schema.py) against cleaned anew."""
    from addon.gemini import tool_schema

    encoded = orjson.dumps(bodies.tools())
    tool_schema.clean_tools({"tools": orjson.loads(encoded)})
    uncached = tool_schema._clean_encoded_tools.__wrapped__  # type: ignore[attr-defined]
    return (
        lambda: tool_schema.clean_tools({"tools": orjson.loads(encoded)}),
        lambda: orjson.loads(uncached(encoded)[0]),
    )


def upstream_url_cache() -> tuple[Run, Run]:
    """An upstream URL parsed once (request/upstream_request.py) against mitmproxy's parse per request."""
    from mitmproxy.net.http import url

    from addon.request import upstream_request

    address = "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
    return lambda: upstream_request.parsed_url(address), lambda: url.parse(address)


def litellm_lookups() -> tuple[Run, Run]:
    """A request's Gemini field repairs: litellm's tables cached per model (formats/litellm_bridge.py) or not."""
    from addon.formats import litellm_bridge
    from addon.gemini import request_fields

    body = {"model": "gemini-2.5-flash", "temperature": 0.2, "user": "u", "messages": []}
    request_fields.repair_fields(dict(body), "gemini-2.5-flash")
    cached = (litellm_bridge.gemini_supported_params, litellm_bridge.openai_chat_params)

    def uncached() -> None:
        for function in cached:
            function.cache_clear()
        request_fields.repair_fields(dict(body), "gemini-2.5-flash")

    return lambda: request_fields.repair_fields(dict(body), "gemini-2.5-flash"), uncached


def option_read() -> tuple[Run, Run]:
    """One option read: runtime/option_reads.py against mitmproxy's deep copy."""
    from mitmproxy import optmanager

    from addon.runtime import option_reads

    option = optmanager._Option("x", bool, False, "help", None)
    original = optmanager._Option.current
    return lambda: option_reads.current(option), lambda: original(option)


def placeholder_look() -> tuple[Run, Run]:
    """The look for opencode's attachment placeholders in a 1.1 MB body: first bytes, then compares, against
    Python's substring search (inspection/media_placeholders.py)."""
    from addon.inspection import media_placeholders

    body = bodies.follow_up_turns(count=1)[0]
    markers = media_placeholders.MARKERS
    return lambda: media_placeholders.may_have(body), lambda: any(marker in body for marker in markers)


def schema_validator_cache() -> tuple[Run, Run]:
    """A tool call's arguments checked against its schema: the compiled validator kept (inspection/toolcheck.py)
    or compiled per check."""
    from addon.inspection import toolcheck

    schema = bodies.tools()[1]["function"]["parameters"]
    text = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
    args = {"filePath": "/tmp/x.py", "offset": 0}
    uncached = toolcheck._validator.__wrapped__  # type: ignore[attr-defined]
    return (
        lambda: list(toolcheck._validator(text).iter_errors(args)),
        lambda: list(uncached(text).iter_errors(args)),
    )


def sse_fast_paths() -> tuple[Run, Run]:
    """A stream of 200 events read 4 at a time: the decoder's find of b"\\n\\n" and its one-line event
    (formats/sse.py) against its general path (the regex for any line endings, each event's fields split)."""
    from addon.formats.sse import SSEDecoder

    from .micro import upstream_sse

    events = upstream_sse()
    reads = [b"".join(events[i : i + 4]) for i in range(0, len(events), 4)]
    general = [read.replace(b"data: ", b"data:") for read in reads]  # the same events, past the one-line check

    def decode(pieces: list[bytes], cr: bool) -> None:
        decoder = SSEDecoder()
        decoder._cr = cr  # as if a "\r" had been seen: the regex finds the events' ends
        for piece in pieces:
            decoder.decode(piece)
        decoder.flush()

    return lambda: decode(reads, False), lambda: decode(general, True)


def pairs() -> dict[str, Pair]:
    return {
        "conversation reuse, 1.1 MB follow-up turn": conversation_reuse,
        "client body kept as a patch, 1.1 MB turn": kept_client_body,
        "tool list cleaned once per list (10 tools)": tool_list_cache,
        "upstream URL parsed once": upstream_url_cache,
        "litellm's tables cached per model": litellm_lookups,
        "option read without a copy": option_read,
        "SSE decoder fast paths, 200 events": sse_fast_paths,
        "placeholder look, 1.1 MB body": placeholder_look,
        "tool-call validator kept per schema": schema_validator_cache,
    }
