"""A fast fake OpenAI-compatible upstream: raw asyncio HTTP/1.1, keep-alive, one process.

POST .../chat/completions answers at once. A non-streaming answer is a small chat.completion; a streaming one
sends `chunks` chat.completion.chunk events `interval_ms` apart (from the request's last user message,
`bench chunks=N interval_ms=X`), each carrying the wall clock of its own send and its sequence number as content
`t=<time.time_ns()> n=<0..N-1>` (the client checks every chunk arrived, once, in order, in an event of its own),
then a finish chunk with usage and `data: [DONE]`. Answers name the model the request named, so a proxy's
rewriting back to the client's name is visible. GET /__stats returns how many chat requests each model name
reached the upstream with; any other GET answers 200 (health checks through a bare reverse proxy).

It also speaks Gemini's native API, for the benchmark's native row: POST .../models/<model>:generateContent
answers a small GenerateContentResponse, and ...:streamGenerateContent?alt=sse streams the same timed chunks as
native events (`data: {"candidates": [...]}` and CRLF CRLF, as Google sends them), the last with finishReason and
usageMetadata.

    python -m tests.bench.upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter

import orjson

_INSTRUCTION = re.compile(r"bench chunks=(\d+) interval_ms=([\d.]+)")
STATS: Counter[str] = Counter()


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _completion(model: str, prompt_tokens: int) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
    }
    return _response("200 OK", orjson.dumps(body))


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _frame(event: bytes) -> bytes:
    """One SSE event as one HTTP chunk."""
    return b"%x\r\n%b\r\n" % (len(event), event)


def _chunk_event(model: bytes, seq: int) -> bytes:
    role = b'"role":"assistant",' if seq == 0 else b""
    return (
        b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":"%b",'
        b'"choices":[{"index":0,"delta":{%b"content":"t=%d n=%d "},"finish_reason":null}]}\n\n'
        % (int(time.time()), model, role, time.time_ns(), seq)
    )


def _finish_events(model: bytes, chunks: int) -> bytes:
    finish = (
        b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":"%b",'
        b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":%d}}\n\n'
        % (int(time.time()), model, chunks, chunks + 10)
    )
    return _frame(finish) + _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"


_NATIVE = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)")


def _native_completion(model: str, prompt_tokens: int) -> bytes:
    body = {
        "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": 1,
            "totalTokenCount": prompt_tokens + 1,
        },
        "modelVersion": model,
        "responseId": "bench",
    }
    return _response("200 OK", orjson.dumps(body))


def _native_chunk_event(model: bytes, seq: int) -> bytes:
    return (
        b'data: {"candidates":[{"content":{"parts":[{"text":"t=%d n=%d "}],"role":"model"},"index":0}],'
        b'"modelVersion":"%b","responseId":"bench"}\r\n\r\n' % (time.time_ns(), seq, model)
    )


def _native_finish_events(model: bytes, chunks: int) -> bytes:
    finish = (
        b'data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],'
        b'"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":%d,"totalTokenCount":%d},'
        b'"modelVersion":"%b","responseId":"bench"}\r\n\r\n' % (chunks, chunks + 10, model)
    )
    return _frame(finish) + b"0\r\n\r\n"


class _Request:
    """A request head, parsed once, while its body arrives."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.length = int(headers.get("content-length", "0") or 0)
        self.close = headers.get("connection", "").lower() == "close"


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """A complete chunked body starting at `start`: (body, end offset), or None while incomplete."""
    parts, pos = [], start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(bytes(buf[eol + 2 : eol + 2 + size]))
        pos = eol + 2 + size + 2


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.request: _Request | None = None
        self.busy = False  # a stream is being sent; pipelined requests wait for it
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._process()

    def _process(self) -> None:
        while not self.busy and self.transport and not self.transport.is_closing():
            if self.request is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.request = _Request(bytes(self.buf[:end]))
                del self.buf[: end + 4]
            if self.request.chunked:
                found = _dechunk(self.buf, 0)
                if found is None:
                    return
                body, used = found
            else:
                if len(self.buf) < self.request.length:
                    return
                body, used = bytes(self.buf[: self.request.length]), self.request.length
            del self.buf[:used]
            request, self.request = self.request, None
            self._handle(request, body)

    def _handle(self, request: _Request, body: bytes) -> None:
        assert self.transport is not None
        if request.method == "GET":
            payload = orjson.dumps(dict(STATS)) if request.path.startswith("/__stats") else b'{"status":"ok"}'
            self.transport.write(_response("200 OK", payload))
        elif request.path.rstrip("/").endswith("/chat/completions"):
            self._chat(body)
        elif native := _NATIVE.search(request.path):
            self._native(native[1], native[2] == "streamGenerateContent", body)
        else:
            self.transport.write(_response("404 Not Found", b'{"error":{"message":"not found"}}'))
        if request.close:
            self.transport.close()

    def _chat(self, body: bytes) -> None:
        assert self.transport is not None
        try:
            parsed = orjson.loads(body)
            model = str(parsed["model"])
            last = parsed["messages"][-1].get("content")
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError):
            self.transport.write(_response("400 Bad Request", b'{"error":{"message":"bad request"}}'))
            return
        STATS[model] += 1
        if not parsed.get("stream"):
            self.transport.write(_completion(model, len(body) // 4))
            return
        found = _INSTRUCTION.search(last if isinstance(last, str) else str(last))
        chunks, interval = (int(found[1]), float(found[2]) / 1000) if found else (20, 0.01)
        self.busy = True
        asyncio.ensure_future(self._stream(model.encode(), chunks, interval))

    def _native(self, model: str, stream: bool, body: bytes) -> None:
        """Gemini's generateContent / streamGenerateContent: the model is in the path, the text in contents."""
        assert self.transport is not None
        try:
            parts = orjson.loads(body)["contents"][-1]["parts"]
            last = " ".join(str(p.get("text", "")) for p in parts)
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError, AttributeError):
            self.transport.write(_response("400 Bad Request", b'{"error":{"message":"bad request"}}'))
            return
        STATS[model] += 1
        if not stream:
            self.transport.write(_native_completion(model, len(body) // 4))
            return
        found = _INSTRUCTION.search(last)
        chunks, interval = (int(found[1]), float(found[2]) / 1000) if found else (20, 0.01)
        self.busy = True
        asyncio.ensure_future(self._stream(model.encode(), chunks, interval, native=True))

    async def _stream(self, model: bytes, chunks: int, interval: float, native: bool = False) -> None:
        transport = self.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        transport.write(_STREAM_HEAD)
        start = loop.time()
        for i in range(chunks):
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if transport.is_closing():
                return
            transport.write(_frame((_native_chunk_event if native else _chunk_event)(model, i)))
        transport.write((_native_finish_events if native else _finish_events)(model, chunks))
        self.busy = False
        self._process()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, host, port, backlog=1024, reuse_address=True)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
