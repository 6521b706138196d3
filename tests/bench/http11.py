"""The client side of HTTP/1.1 the load client needs: request bytes in, one parsed response out.

`Response.feed(data, now_ns)` takes bytes as they arrive (any split) and says when the response is complete.
Bodies may be Content-Length, chunked or close-delimited. For a streaming answer (`sse=True`) the body is cut
into SSE events as they complete and each event is kept with the wall clock of the read that completed it.
"""

from __future__ import annotations


def request(
    method: str, host: str, port: int, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, sse: bool = False) -> None:
        self.sse = sse
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()  # the whole body (not kept for SSE)
        self.events: list[tuple[int, bytes]] = []  # (receive time ns, event) for SSE
        self.done = False
        self._buf = bytearray()
        self._head = True
        self._remaining = -1  # bytes left of a Content-Length body or of the current chunk
        self._chunked = False
        self._until_close = False
        self._sse_buf = bytearray()

    def feed(self, data: bytes, now: int) -> bool:
        """Take received bytes; True once the response is complete. Extra bytes are an error (no pipelining)."""
        self._buf += data
        if self._head and not self._parse_head():
            return False
        if self._chunked:
            self._parse_chunks(now)
        elif self._until_close:
            self._body(bytes(self._buf), now)
            self._buf.clear()
        else:
            take = bytes(self._buf[: self._remaining])
            del self._buf[: self._remaining]
            self._remaining -= len(take)
            self._body(take, now)
            self.done = self._remaining == 0
        return self.done

    def feed_eof(self, now: int) -> bool:
        """The connection closed: complete for a close-delimited body, else the response is cut short."""
        if self._until_close and not self._head:
            self._body(b"", now, final=True)
            self.done = True
        return self.done

    def _parse_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        self.status = int(lines[0].split(" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._head = False
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in self.headers:
            self._remaining = int(self.headers["content-length"])
        elif self.status in (204, 304) or self.status < 200:
            self._remaining = 0
        else:
            self._until_close = True
        return True

    def _parse_chunks(self, now: int) -> None:
        while not self.done:
            if self._remaining > 0:
                take = bytes(self._buf[: self._remaining])
                del self._buf[: len(take)]
                self._remaining -= len(take)
                self._body(take, now)
                if self._remaining > 0:
                    return
                self._remaining = -2  # the CRLF after the chunk data
            if self._remaining == -2:
                if len(self._buf) < 2:
                    return
                del self._buf[:2]
                self._remaining = -1
            eol = self._buf.find(b"\r\n")
            if eol < 0:
                return
            size = int(bytes(self._buf[:eol]).split(b";")[0], 16)
            if size == 0:
                trailer_end = self._buf.find(b"\r\n", eol + 2)
                if trailer_end != eol + 2 and self._buf.find(b"\r\n\r\n", eol) < 0:
                    return
                self._body(b"", now, final=True)
                self.done = True
                return
            del self._buf[: eol + 2]
            self._remaining = size

    def _body(self, data: bytes, now: int, final: bool = False) -> None:
        if not self.sse:
            self.body += data
            return
        self._sse_buf += data
        if b"\r" in data:
            self._sse_buf[:] = self._sse_buf.replace(b"\r\n", b"\n")
        while True:
            end = self._sse_buf.find(b"\n\n")
            if end < 0:
                break
            self.events.append((now, bytes(self._sse_buf[:end])))
            del self._sse_buf[: end + 2]
        if final and self._sse_buf.strip():
            self.events.append((now, bytes(self._sse_buf)))
            self._sse_buf.clear()
