"""addon/runtime/stream_relay.py: a streamed body relayed per read leaves the client with the same bytes, and the
flow's `response.stream` with the same calls, as mitmproxy's own path, for every way the upstream's bytes can be
cut into reads; and anything it does not cover takes mitmproxy's path.

mitmproxy's real HTTP layer is driven here event by event, as its connection handler drives it: hooks answered,
the upstream connection opened, SendData collected per connection.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import connection
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy import commands, context, events
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode, _http1
from mitmproxy.test import taddons

from addon.runtime import stream_relay

REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: upstream.test\r\nContent-Length: 2\r\n\r\n{}"
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
EVENTS = [b'data: {"n":%d,"model":"gemini-2.5-flash"}\n\n' % i for i in range(6)] + [b"data: [DONE]\n\n"]


def chunked(payloads: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"


class Exchange:
    """One client connection through mitmproxy's HttpLayer to one upstream, driven by hand."""

    def __init__(self, stream: Callable[[bytes], object] | bool, store_streamed_bodies: bool = False) -> None:
        with taddons.context(Proxyserver()) as tctx:  # the options mitmproxy's HTTP layer reads
            opts = tctx.options
        opts.store_streamed_bodies = store_streamed_bodies
        self.client = connection.Client(
            peername=("127.0.0.1", 50000),
            sockname=("127.0.0.1", 8000),
            timestamp_start=1,
            state=connection.ConnectionState.OPEN,
        )
        ctx = context.Context(self.client, opts)
        ctx.server = connection.Server(address=("upstream.test", 80))
        self.layer = HttpLayer(ctx, HTTPMode.transparent)
        self.stream = stream
        self.sent: dict[str, bytearray] = collections.defaultdict(bytearray)
        self.hooks: list[str] = []
        self.server: connection.Server | None = None
        self.held: commands.StartHook | None = None  # the responseheaders hook, while `hold` keeps it pending
        self.hold = False
        self.feed(events.Start())
        self.feed(events.DataReceived(self.client, REQUEST))

    def feed(self, event: events.Event) -> None:
        pending = collections.deque([event])
        while pending:
            for command in self.layer.handle_event(pending.popleft()):
                pending.extend(self.answer(command))

    def answer(self, command: commands.Command) -> Iterator[events.Event]:
        if isinstance(command, commands.StartHook):
            self.hooks.append(command.name)
            if command.name == "responseheaders":
                command.args()[0].response.stream = self.stream
                if self.hold:
                    self.held = command
                    return
            if command.blocking:
                yield events.HookCompleted(command)
        elif isinstance(command, commands.OpenConnection):
            self.server = command.connection
            self.server.state = connection.ConnectionState.OPEN
            self.server.timestamp_start = 1
            yield events.OpenConnectionCompleted(command, None)
        elif isinstance(command, commands.SendData):
            self.sent["client" if command.connection is self.client else "server"] += command.data
        elif isinstance(command, commands.CloseConnection | commands.Log | commands.RequestWakeup):
            pass
        else:
            raise AssertionError(f"unexpected command {command}")

    def upstream_sends(self, reads: list[bytes]) -> None:
        assert self.server is not None, "the request never asked for an upstream connection"
        for data in reads:
            self.feed(events.DataReceived(self.server, data))

    def release(self) -> None:
        """The held responseheaders hook completes (an addon's hook that took a while)."""
        assert self.held is not None
        command, self.held = self.held, None
        self.feed(events.HookCompleted(command))


class Recorder:
    """A `response.stream` callable like the proxy's rewriter: returns a list (empty at the end), renames."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def __call__(self, data: bytes) -> list[bytes]:
        self.calls.append(data)
        return [data.replace(b"gemini-2.5-flash", b"local-model")] if data else []


def run(reads: list[bytes], relay: bool, stream: Callable[[], object] = Recorder) -> tuple[Exchange, object]:
    handler = stream()
    if relay:
        stream_relay.install(None)
    try:
        exchange = Exchange(handler)  # type: ignore[arg-type]
        exchange.upstream_sends([HEAD, *reads])
    finally:
        stream_relay.uninstall()
    return exchange, handler


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def chunk_reads(payloads: list[bytes]) -> list[bytes]:
    """One read per chunk, the last chunk in a read of its own: what a streaming upstream usually looks like."""
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in payloads] + [b"0\r\n\r\n"]


def test_one_whole_chunk_per_read_is_relayed_with_what_mitmproxy_would_send():
    taken: list[bool] = []
    relay = stream_relay.relay

    def counting(reader, event):
        out = relay(reader, event)
        taken.append(out is not None)
        return out

    stream_relay.relay = counting
    try:
        relayed, relayed_stream = run(chunk_reads(EVENTS), relay=True)
    finally:
        stream_relay.relay = relay
    plain, plain_stream = run(chunk_reads(EVENTS), relay=False)
    assert relayed.sent["client"] == plain.sent["client"]
    assert relayed_stream.calls == plain_stream.calls == [*EVENTS, b""]
    assert b"local-model" in relayed.sent["client"] and b"gemini-2.5-flash" not in relayed.sent["client"]
    assert relayed.sent["client"].endswith(b"0\r\n\r\n")
    assert sum(taken) == len(EVENTS)  # every event's read relayed; the last chunk went mitmproxy's way
    assert relayed.hooks == plain.hooks and relayed.hooks[-1] == "response"  # the flow still ends as mitmproxy ends it


@settings(max_examples=150, deadline=None)
@given(points=st.lists(st.integers(min_value=1, max_value=len(chunked(EVENTS)) - 1), max_size=12))
def test_any_cut_of_the_body_gives_the_client_the_same_bytes_and_the_stream_the_same_calls(points):
    reads = cut(chunked(EVENTS), points)
    relayed, relayed_stream = run(reads, relay=True)
    plain, plain_stream = run(reads, relay=False)
    assert relayed.sent["client"] == plain.sent["client"]
    assert relayed_stream.calls == plain_stream.calls
    assert relayed.hooks == plain.hooks


@pytest.mark.parametrize(
    "stream",
    [
        lambda: True,  # mitmproxy's plain pass-through
        lambda: lambda data: data.upper(),  # a callable returning bytes, not a list
        lambda: lambda data: [data, data] if data else [],  # more than one piece per chunk
    ],
)
def test_every_kind_of_response_stream_is_framed_as_mitmproxy_frames_it(stream):
    relayed, _ = run(chunk_reads(EVENTS), relay=True, stream=stream)
    plain, _ = run(chunk_reads(EVENTS), relay=False, stream=stream)
    assert relayed.sent["client"] == plain.sent["client"] and len(plain.sent["client"]) > len(HEAD)


@pytest.mark.parametrize(
    ("data", "payloads"),
    [
        (b"5\r\nhello\r\n", [b"hello"]),
        (b"5\r\nhello\r\n3\r\nabc\r\n", [b"hello", b"abc"]),
        (b"A\r\n0123456789\r\n", [b"0123456789"]),
        (b"2\r\n\r\n\r\n", [b"\r\n"]),  # a payload that looks like framing
    ],
)
def test_whole_chunks_split_into_their_payloads(data, payloads):
    assert stream_relay.split_chunks(data) == payloads


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"5\r\nhel",  # part of a chunk
        b"5\r\nhello\r\n0\r\n\r\n",  # the last chunk: mitmproxy ends the message
        b"5;ext=1\r\nhello\r\n",  # a chunk extension
        b"5\r\nhelloXX",  # a broken chunk end
        b"x\r\nhello\r\n",  # not a size
        b"5\r\nhello\r\n3",  # a whole chunk, then part of the next size line
    ],
)
def test_anything_but_whole_chunks_is_left_to_mitmproxy(data):
    assert stream_relay.split_chunks(data) is None


def test_with_store_streamed_bodies_every_read_takes_mitmproxys_path():
    stream_relay.install(None)
    try:
        exchange = Exchange(Recorder(), store_streamed_bodies=True)
        exchange.upstream_sends([HEAD])
        reader = exchange.layer.connections[exchange.server].context.layers[-1]
        assert isinstance(reader, _http1.Http1Client)
        assert stream_relay.relay(reader, events.DataReceived(exchange.server, b"5\r\nhello\r\n")) is None
        exchange.upstream_sends(chunk_reads(EVENTS))
    finally:
        stream_relay.uninstall()
    assert exchange.sent["client"].endswith(b"0\r\n\r\n")


def test_a_read_before_the_stream_streams_takes_mitmproxys_path():
    """Body bytes in the same read as the headers, before the responseheaders hook answered: mitmproxy queues them."""
    first = HEAD + b"%x\r\n%s\r\n" % (len(EVENTS[0]), EVENTS[0])
    stream_relay.install(None)
    try:
        exchange = Exchange(Recorder())
        exchange.upstream_sends([first, *chunk_reads(EVENTS[1:])])
    finally:
        stream_relay.uninstall()
    plain = Exchange(Recorder())
    plain.upstream_sends([first, *chunk_reads(EVENTS[1:])])
    assert exchange.sent["client"] == plain.sent["client"]


def test_reads_while_the_responseheaders_hook_is_pending_wait_for_it_as_in_mitmproxy():
    """The reader is at a chunk boundary, but the stream is paused on its hook: mitmproxy queues the chunks and
    sends them after the headers; a relay now would send them first."""
    sent = {}
    for relay in (True, False):
        if relay:
            stream_relay.install(None)
        try:
            exchange = Exchange(Recorder())
            exchange.hold = True
            exchange.upstream_sends([HEAD, *chunk_reads(EVENTS[:3])[:-1]])
            assert exchange.held is not None and not exchange.sent["client"]
            exchange.release()
            exchange.upstream_sends(chunk_reads(EVENTS[3:]))
        finally:
            stream_relay.uninstall()
        sent[relay] = bytes(exchange.sent["client"])
    assert sent[True] == sent[False] and sent[True].startswith(b"HTTP/1.1 200 OK")


def test_a_second_request_on_the_same_connections_is_relayed_along_its_own_route():
    sent, calls = {}, {}
    for relay in (True, False):
        if relay:
            stream_relay.install(None)
        try:
            recorder = Recorder()
            exchange = Exchange(recorder)
            exchange.upstream_sends([HEAD, *chunk_reads(EVENTS[:3])])
            exchange.feed(events.DataReceived(exchange.client, REQUEST))  # keep-alive: the next request
            exchange.upstream_sends([HEAD, *chunk_reads(EVENTS[3:])])
        finally:
            stream_relay.uninstall()
        sent[relay], calls[relay] = bytes(exchange.sent["client"]), recorder.calls
        assert exchange.hooks.count("response") == 2
    assert sent[True] == sent[False] and sent[True].count(b"HTTP/1.1 200 OK") == 2
    assert calls[True] == calls[False] == [*EVENTS[:3], b"", *EVENTS[3:], b""]


def test_install_and_uninstall_leave_mitmproxys_class_as_it_was():
    before = _http1.Http1Client.__dict__.get("_handle_event")
    stream_relay.install(None)
    stream_relay.install(None)  # twice: still one layer of patching
    assert _http1.Http1Client._handle_event is stream_relay._handle_event
    stream_relay.uninstall()
    assert _http1.Http1Client.__dict__.get("_handle_event") is before
    assert _http1.Http1Client._handle_event is _http1.Http1Connection._handle_event


def test_the_internals_it_reaches_are_as_it_was_written_for():
    assert stream_relay.PATCH.problems(None) == []
