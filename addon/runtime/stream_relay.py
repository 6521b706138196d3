"""A streamed response's body goes from the upstream's HTTP/1 connection to the client's in one step per read.

A speed patch: installed only while the translate_speed_patches option is on (off by default; docs/internals.md).

mitmproxy hands every read of a streamed body through five layers: the upstream's HTTP/1 reader parses it (h11's
chunked reader, an event per chunk), the HTTP layer routes each chunk to its stream, the stream calls the flow's
`response.stream` callable, the HTTP layer routes what comes back to the client's HTTP/1 writer, which looks up
the response's Transfer-Encoding header again for every chunk before it frames it. For a stream of small SSE
events that walk is most of what mitmproxy spends per event: py-spy at 512 concurrent streams put it at a third of
the CPU of bare mitmdump, and at hundreds of streams the delay every chunk waits is that CPU, queued.

Once a stream is in mitmproxy's streaming state, the route never changes until the body ends, so it is found
once per stream and each read that holds only whole chunks is relayed straight along it: split into its chunks,
each given to `response.stream` (this proxy's stream rewriter) exactly as mitmproxy's stream would, framed for
the client as mitmproxy's HTTP/1 writer would (chunked or not, from the header read once per stream) and written
with one SendData for the read. Commands still leave through the layers above (the client's TLS layer encrypts
them, the connection handler writes them and applies backpressure), and the upstream's TLS layer has decrypted
the read before it gets here.

Everything else takes mitmproxy's own path, unchanged: a read that holds a part of a chunk, the last chunk or a
trailer, chunk extensions, a body that is not chunked, an HTTP/2 or HTTP/3 side, a stream that is not streaming
yet or is paused (a hook pending), a response with `store_streamed_bodies`, layers with `proxy_debug` on. What a
relayed read leaves behind is what mitmproxy's path would have left: the chunked reader at a chunk boundary, the
connection's buffer empty, the same bytes written to the client, the same calls of `response.stream`.

Reaches private parts of mitmproxy (its HTTP/1 layers, the HTTP layer's routing tables, a layer's pause state) and
of h11 (its chunked reader's position), checked at start-up (internals.py); without them mitmproxy's path stays.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Generator
from typing import Any

import h11._readers
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers import http as http_layers
from mitmproxy.proxy.layers.http import _http1

from . import internals

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def split_chunks(data: bytes) -> list[bytes] | None:
    """The payloads of `data` when it is one or more whole chunks of a chunked body, none of them the last (size 0)
    and none with extensions; else None (mitmproxy's own reader takes the read)."""
    payloads = []
    pos, end = 0, len(data)
    while pos < end:
        line_end = data.find(b"\r\n", pos, pos + 18)
        if line_end < 0 or not _CHUNK_SIZE.fullmatch(data, pos, line_end):
            return None
        size = int(data[pos:line_end], 16)
        start = line_end + 2
        stop = start + size
        if size == 0 or data[stop : stop + 2] != b"\r\n":
            return None
        payloads.append(data[start:stop])
        pos = stop + 2
    return payloads or None


class Route:
    """Where one upstream connection's current stream leads: its HttpStream and the client's Http1Server.

    The stream is held weakly: the Route stays on the upstream's Http1Client after the stream is done (until the
    connection closes or carries another stream), and a strong reference kept the finished flow alive (issue 25)."""

    __slots__ = ("stream_id", "stream", "client", "response", "chunked")

    def __init__(self, stream_id: int, stream: Any, client: Any) -> None:
        self.stream_id = stream_id
        self.stream = weakref.ref(stream)
        self.client = client
        self.response = client.response
        self.chunked = "chunked" in client.response.headers.get("transfer-encoding", "").lower()


_STREAMING = http_layers.HttpStream.state_stream_response_body
_READ_BODY = _http1.Http1Connection.read_body


def route(reader: Any) -> tuple[Route, Any] | None:
    """The route of this Http1Client's response body and its HttpStream when a read can be relayed along it now,
    else None."""
    found: Route | None = reader.__dict__.get("_relay_route")
    stream: Any = found.stream() if found is not None and found.stream_id == reader.stream_id else None
    if found is None or stream is None:
        http = next((layer for layer in reversed(reader.context.layers) if type(layer) is http_layers.HttpLayer), None)
        if http is None:
            return None
        stream = http.streams.get(reader.stream_id)
        client = http.connections.get(reader.context.client)
        if stream is None or type(client) is not _http1.Http1Server or client.response is None:
            return None
        found = Route(reader.stream_id, stream, client)
        reader._relay_route = found
    client = found.client
    if (
        getattr(stream.server_state, "__func__", None) is not _STREAMING
        or stream._paused is not None
        or stream._paused_event_queue
        or stream.debug is not None
        or client.stream_id != found.stream_id
        or client.response is not found.response
        or client._paused is not None
        or client.debug is not None
        or not stream.flow.response.stream
        or stream.context.options.store_streamed_bodies
    ):
        return None
    return found, stream


def relay(reader: Any, event: events.Event) -> list[commands.Command] | None:
    """The commands for one read of the upstream's streamed body, or None when mitmproxy's path must take it."""
    if (
        event.__class__ is not events.DataReceived
        or getattr(reader.state, "__func__", None) is not _READ_BODY
        or reader.buf
        or reader.debug is not None
    ):
        return None
    body = reader.body_reader
    if (
        body.__class__ is not h11._readers.ChunkedReader
        or body._bytes_in_chunk
        or body._bytes_to_discard
        or body._reading_trailer
    ):
        return None
    hit = route(reader)
    if hit is None:
        return None
    found, stream = hit
    payloads = split_chunks(event.data)
    if payloads is None:
        return None
    handler = stream.flow.response.stream
    out = []
    for payload in payloads:
        chunks = handler(payload) if callable(handler) else [payload]
        if isinstance(chunks, bytes):
            chunks = [chunks]
        for chunk in chunks:
            out.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if found.chunked else chunk)
    raw = b"".join(out)
    return [commands.SendData(found.client.conn, raw)] if raw else []


def _handle_event(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    """Http1Client._handle_event: a relayable read relayed, anything else as mitmproxy handles it."""
    relayed = relay(self, event)
    if relayed is None:
        yield from SWAP.original(self, event)
    else:
        yield from relayed


# mitmproxy's Http1Client._handle_event is inherited from Http1Connection: removing the patch inherits it again.
SWAP = internals.Swap(_http1.Http1Client, "_handle_event", _handle_event)


install = SWAP.install
uninstall = SWAP.uninstall


HTTP = "mitmproxy.proxy.layers.http"
PATCH = internals.Patch(
    name="stream relay",
    written_for="12.3.1",
    internals=(
        internals.at(f"{HTTP}._http1.Http1Client._handle_event", internals.signature("self", "event")),
        internals.at(
            f"{HTTP}._http1.Http1Connection",
            internals.annotated("stream_id", "response", "state", "body_reader", "buf", "conn"),
        ),
        # The reader's body state, and the client's framing of a streamed chunk (one format, the header it reads).
        internals.at(f"{HTTP}._http1.Http1Connection.read_body", internals.signature("self", "event")),
        internals.at(
            f"{HTTP}._http1.Http1Server.send", internals.uses(b"%x\r\n%s\r\n", "transfer-encoding", "chunked")
        ),
        # The stream hands each chunk to response.stream, and stores it only with store_streamed_bodies.
        internals.at(
            f"{HTTP}.HttpStream.state_stream_response_body",
            internals.signature("self", "event"),
            internals.looks_up("stream", "store_streamed_bodies", "SendHttp"),
        ),
        internals.at(f"{HTTP}.HttpStream", internals.annotated("flow", "stream_id")),
        internals.at(f"{HTTP}.HttpStream.__init__", internals.looks_up("server_state")),
        internals.at(f"{HTTP}.HttpLayer", internals.annotated("streams", "connections")),
        internals.at(
            "mitmproxy.proxy.layer.Layer", internals.annotated("context", "_paused", "_paused_event_queue", "debug")
        ),
        internals.at("mitmproxy.proxy.context.Context", internals.annotated("client", "options", "layers")),
        internals.at(
            "h11._readers.ChunkedReader.__call__",
            internals.looks_up("_bytes_in_chunk", "_bytes_to_discard", "_reading_trailer"),
        ),
    ),
    install=install,
    uninstall=uninstall,
    without="each chunk of a streamed response takes mitmproxy's full path through its HTTP layers (slower)",
)
