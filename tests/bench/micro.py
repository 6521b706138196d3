"""Micro-benchmarks of the hot paths, plain timeit: SSE decoding and rewriting, request parsing and rewriting.

Each benchmark imports the project's functions by name; one whose names are missing (the addon changed) is
reported as skipped with the reason, so the rest still run. Baselines (orjson alone) show the floor.

    .venv/bin/python -m tests.bench.micro [--quick | --smoke] [--json PATH]

Then each optimisation against the plain way, side by side (optimisations.py): with, without, their ratio and
what one operation saves.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from . import bodies, optimisations

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# A benchmark: name -> (what one operation is, setup returning the callable to time).
Setup = Callable[[], Callable[[], Any]]


def upstream_sse(chunks: int = 200, tool_calls: bool = False) -> list[bytes]:
    """Gemini-like streamed events, one per list item (as the fake upstream sends them)."""
    events = []
    for i in range(chunks):
        delta: dict = {"content": f"token {i} of the answer, with some text "}
        if tool_calls and i % 20 == 19:  # Gemini: no index, a new id on every fragment
            delta = {
                "tool_calls": [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"filePath": "/tmp/x.py"}'},
                    }
                ]
            }
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    return events + [b"data: [DONE]\n\n"]


def sse_decode() -> Callable[[], Any]:
    from addon.formats.sse import SSEDecoder

    stream = upstream_sse()

    def run() -> None:
        decoder = SSEDecoder()
        for piece in stream:
            decoder.decode(piece)
        decoder.flush()

    return run


def _rewriter(tool_calls: bool) -> Callable[[], Any]:
    from addon.response.stream_rewrite import StreamOptions, StreamRewriter

    stream = upstream_sse(tool_calls=tool_calls)
    options = StreamOptions(
        client_model="local-model", repair_tool_calls=True, pack_signatures=False, keep_bytes=1 << 20
    )

    def run() -> None:
        rewriter = StreamRewriter(options)
        for piece in stream:
            rewriter(piece)
        rewriter(b"")

    return run


def _request_rewrite(body: bytes, turns: list[bytes] | None = None) -> Callable[[], Any]:
    """Routing's work on a request; with `turns`, on each of a session's turns in order (routing keeps the
    split of the one before: formats/conversation.py)."""
    from addon.formats.conversation import Conversations
    from addon.gemini import request_fields, thought_signatures, tool_schema
    from addon.request.chat_request import encode_body, load_messages, parse_chat_request

    request_fields.repair_fields({}, "gemini-2.5-flash")  # litellm's tables load on first use
    conversations = Conversations() if turns else None
    sent = itertools.cycle(turns) if turns else None

    def run() -> bytes:  # what routing.Routing.chat does to a Gemini request
        chat = parse_chat_request(next(sent) if sent else body, 64 << 20, conversations)
        chat.body["model"] = "gemini-2.5-flash"
        request_fields.repair_fields(chat.body, "gemini-2.5-flash")
        tool_schema.clean_tools(chat.body)
        if thought_signatures.may_restore(chat.call_refs, "gemini-2.5-flash"):
            thought_signatures.restore_request(load_messages(chat).body, "gemini-2.5-flash")
        return encode_body(chat.body)

    return run


def _orjson_roundtrip(body: bytes) -> Callable[[], Any]:
    return lambda: orjson.dumps(orjson.loads(body))


def _copy_tools() -> Callable[[], Any]:
    tools = bodies.tools()
    return lambda: copy.deepcopy(tools)


def _telemetry_span() -> Callable[[], Any]:
    """One exchange's span on the event loop: the request hook (span started, traceparent set) and the end (its
    attributes, ended into the batching processor; the export itself is the processor thread's)."""
    from mitmproxy.test import tflow

    from addon.formats.exchange import Exchange
    from addon.inspection import otel_export
    from addon.inspection.telemetry import Telemetry

    class Discard:
        def export(self, spans: Any) -> Any:
            from opentelemetry.sdk.trace.export import SpanExportResult

            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    addon = Telemetry()
    addon.export = otel_export.Export("bench:8000", {}, exporter=Discard())
    flow = tflow.tflow(resp=True)
    flow.request.content = bodies.small(stream=False)
    response = flow.response
    ex = Exchange.of(flow)
    ex.client_model, ex.upstream_model, ex.key, ex.provider = "local-model", "gemini-2.5-flash", "k", "gemini"
    ex.answer = {"content": "ok", "finish_reason": "stop", "usage": {"prompt_tokens": 9, "completion_tokens": 1}}
    ex.session = {"id": "ses_1", "turn": 1}
    ex.client_request = {"method": "POST", "path": "/v1/chat/completions", "headers": [["content-type", "json"]] * 8}

    def one() -> None:
        flow.response = None
        addon.request(flow)
        flow.response = response
        opened = addon.open.pop(flow)
        addon.finish(flow, opened)

    return one


def benchmarks() -> dict[str, tuple[str, int, Setup]]:
    """name -> (unit, operations per call, setup)."""
    big = bodies.opencode_conversation(stream=True)
    small = bodies.small(stream=True)
    return {
        "sse decode (addon.formats.sse.SSEDecoder)": ("event", 201, sse_decode),
        "sse rewrite, text (addon.response.stream_rewrite.StreamRewriter)": ("event", 201, lambda: _rewriter(False)),
        "sse rewrite, tool calls (StreamRewriter)": ("event", 201, lambda: _rewriter(True)),
        "request rewrite, small (chat_request + repairs)": ("request", 1, lambda: _request_rewrite(small)),
        f"request rewrite, {len(big) >> 10} KB opencode conversation": ("request", 1, lambda: _request_rewrite(big)),
        f"request rewrite, {len(big) >> 10} KB conversation, follow-up turns": (
            "request",
            1,
            lambda: _request_rewrite(big, bodies.follow_up_turns()),
        ),
        f"baseline: orjson loads+dumps, {len(big) >> 10} KB": ("request", 1, lambda: _orjson_roundtrip(big)),
        "baseline: deepcopy of opencode's tool list": ("request", 1, _copy_tools),
        "telemetry: one exchange's span (addon.inspection.telemetry)": ("request", 1, _telemetry_span),
    }


def measure(setup: Setup, ops: int, repeat: int) -> dict[str, Any]:
    """Best time per operation over `repeat` rounds (each of autorange's size); repeat 0: one call, a smoke."""
    run = setup()
    timer = timeit.Timer(run)
    number = timer.autorange()[0] if repeat else 1
    repeat = repeat or 1
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    return {"us_per_op": best / ops * 1e6, "ops_per_s": ops / best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat instead of five")
    parser.add_argument("--smoke", action="store_true", help="call each benchmark once (a check that it runs)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name, (unit, ops, setup) in benchmarks().items():
        try:
            result = measure(setup, ops, 0 if args.smoke else 1 if args.quick else 5)
        except (ImportError, AttributeError, TypeError) as e:
            print(f"{name:60}  skipped: {type(e).__name__}: {e}")
            results[name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        results[name] = {"unit": unit, **result}
        print(f"{name:60} {result['us_per_op']:10.1f} us/{unit}  ({result['ops_per_s']:,.0f} {unit}s/s)")
    repeat = 0 if args.smoke else 1 if args.quick else 5
    print(f"\n{'optimisation (one operation)':46} {'with':>10} {'without':>10} {'ratio':>7} {'saves':>10}")
    for name, pair in optimisations.pairs().items():
        try:
            with_it, without = pair()
            fast, slow = (measure(lambda run=run: run, 1, repeat)["us_per_op"] for run in (with_it, without))
        except (ImportError, AttributeError, TypeError) as e:
            print(f"{name:46}  skipped: {type(e).__name__}: {e}")
            results[name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        results[name] = {"with_us": fast, "without_us": slow}
        print(f"{name:46} {fast:8.1f}us {slow:8.1f}us {slow / fast:6.1f}x {slow - fast:8.1f}us")
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
