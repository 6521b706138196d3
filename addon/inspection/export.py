"""`./mitm_run.sh export FLOWS.mitm [--session ID] [--format jsonl|openai]`: chat exchanges as JSON lines on stdout.

jsonl (default): one line per chat exchange, usable as a test fixture: the client request as sent, the upstream
request as sent (its key masked, as every flow holds it), the status, the assembled answer, usage, timings, repairs
and tool-call findings, and the session when the flow has one. openai: the client requests as OpenAI batch lines
({"custom_id", "method", "url", "body"}). Fallback attempts are part of their client's exchange (its `attempts`),
not lines of their own. `--session ID` keeps the exchanges whose session (the exchange record's, formats/exchange.py) has that id or tag.
Progress goes to stderr; a file that is not a mitmproxy flow file gets a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson
from mitmproxy import exceptions, http, io

from ..config.resolution import mask_key
from ..formats import kept_body
from ..formats.exchange import Exchange

SECRET_HEADERS = frozenset(("authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"))
PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr


def _json_or_text(body: bytes | str | None) -> Any:
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def _masked(headers: list[tuple[str, str]]) -> list[list[str]]:
    """Header pairs with any credential masked, whatever the flow holds."""
    out = []
    for name, value in headers:
        if name.lower() in SECRET_HEADERS and not any(mark in value for mark in ("...", "…")):  # not masked yet
            scheme, _, secret = value.rpartition(" ")
            value = f"{scheme} {mask_key(secret)}".strip()
        out.append([name, value])
    return out


def in_session(ex: Exchange, wanted: str | None) -> bool:
    if wanted is None:
        return True
    session = ex.session or {}
    return wanted in (session.get("id"), session.get("tag"))


def exchange(flow: http.HTTPFlow, ex: Exchange) -> dict[str, Any]:
    """One chat exchange as plain JSON data."""
    client = kept_body.whole(ex.client_request, flow.request.raw_content) or ex.client_request or {}
    answer = ex.answer
    start, first, end = ex.t_request, ex.t_first_chunk, ex.t_end
    return {
        "id": flow.id,
        "session": ex.session,
        "client_model": ex.client_model,
        "upstream_model": ex.upstream_model,
        "client_format": ex.client_format or "openai_chat",  # Responses and Messages clients (request/ingress.py)
        "client_notes": ex.client_notes,
        "client_request": {
            "method": client.get("method"),
            "path": client.get("path"),
            "headers": _masked([tuple(pair) for pair in client.get("headers") or ()]),
            "body": _json_or_text(client.get("body")),
            **({"truncated": client["truncated"]} if "truncated" in client else {}),
        }
        if client
        else None,
        "upstream_request": {
            "method": flow.request.method,
            "url": flow.request.pretty_url,
            "headers": _masked(list(flow.request.headers.items(multi=True))),
            "body": _json_or_text(flow.request.get_content(strict=False)),
        },
        "status": flow.response.status_code if flow.response else None,
        "error": ex.error or (flow.error.msg if flow.error else None),
        "answer": answer,
        "usage": (answer or {}).get("usage"),
        "timings": {
            "request": start,
            "first_chunk": first,
            "end": end,
            "first_chunk_ms": round((first - start) * 1000, 1) if start and first else None,
            "total_ms": round((end - start) * 1000, 1) if start and end else None,
        },
        "repairs": ex.repairs,
        "findings": ex.tool_checks or [],
        "attempts": ex.attempts,
        "replay": ex.replay,
        "comment": flow.comment,
    }


def batch_line(flow: http.HTTPFlow, ex: Exchange) -> dict[str, Any] | None:
    """The client request as an OpenAI batch line; None when the flow keeps no whole client request."""
    client = kept_body.whole(ex.client_request, flow.request.raw_content)
    if client is None or "body" not in client or "truncated" in client:
        return None
    path = str(client.get("path") or "/v1/chat/completions").split("?", 1)[0]
    url = path if path.startswith("/v1/") else "/v1" + path
    return {
        "custom_id": flow.id,
        "method": client.get("method", "POST"),
        "url": url,
        "body": _json_or_text(client["body"]),
    }


def chat_flows(path: str, session: str | None, progress) -> Iterator[tuple[http.HTTPFlow, Exchange]]:
    with open(path, "rb") as f:
        for n, flow in enumerate(io.FlowReader(f).stream(), 1):
            progress(n)
            if not isinstance(flow, http.HTTPFlow):
                continue
            ex = Exchange.find(flow)
            if ex is not None and ex.client_model is not None and ex.fallback_of is None:
                if in_session(ex, session):
                    yield flow, ex


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mitm_run.sh export", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a flow file written with -w")
    parser.add_argument("--session", help="only the exchanges of this session (its id or tag)")
    parser.add_argument("--format", choices=("jsonl", "openai"), default="jsonl")
    args = parser.parse_args(argv)
    written, last = 0, time.monotonic()

    def progress(read: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            print(f"export: {read:,} flows read, {written:,} exchanges written", file=sys.stderr)

    out = sys.stdout.buffer
    try:
        for flow, ex in chat_flows(args.file, args.session, progress):
            line = exchange(flow, ex) if args.format == "jsonl" else batch_line(flow, ex)
            if line is not None:
                out.write(orjson.dumps(line, default=_default) + b"\n")
                written += 1
    except BrokenPipeError:  # `| head`: the reader has all it wants
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python's documented way to leave quietly
        return 0
    except (OSError, exceptions.FlowReadException) as e:
        print(f"export: cannot read {args.file} as a mitmproxy flow file (-w): {e}", file=sys.stderr)
        return 2
    out.flush()
    print(f"export: {written:,} exchanges from {args.file}", file=sys.stderr)
    return 0


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


if __name__ == "__main__":
    sys.exit(main())
