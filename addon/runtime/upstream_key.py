"""The upstream key on the wire only: every view of the flow (mitmweb, saved flows, the log) sees it masked.

mitmproxy has no hook between "the request hook is done" and "the request bytes are written", and mitmweb can
serialize a flow at any moment while the upstream is still thinking (its flow API, a view update). So the
Authorization header in the flow always holds the masked key, and the real one lives in a Headers subclass
that substitutes it only when the headers are turned into bytes for the upstream: mitmproxy's HTTP/1 client
writes `bytes(request.headers)`. The proxy's listener is plain HTTP, so mitmproxy speaks HTTP/1.1 upstream
(it offers no ALPN to the server for a client without TLS).
"""

from __future__ import annotations

from mitmproxy import http


class KeyedHeaders(http.Headers):
    """Headers whose Authorization value on the wire is the real key; everywhere else, the masked one."""

    wire_authorization: bytes | None = None
    wire_header: bytes = b"authorization"  # x-goog-api-key for Gemini's native API

    def __bytes__(self) -> bytes:
        if self.wire_authorization is None:
            return super().__bytes__()
        fields = tuple(
            (name, self.wire_authorization) if name.lower() == self.wire_header else (name, value)
            for name, value in self.fields
        )
        return bytes(http.Headers(fields))


def attach_key(
    request: http.Request, key: str, masked: str, header: str = "authorization", scheme: str = "Bearer "
) -> None:
    """Send `Bearer key` upstream while the flow shows `Bearer masked` (or `header: key`, scheme "")."""
    request.headers[header] = f"{scheme}{masked}"
    headers = KeyedHeaders(request.headers.fields)
    headers.wire_authorization = f"{scheme}{key}".encode()
    headers.wire_header = header.lower().encode()
    request.headers = headers


def detach_key(request: http.Request) -> None:
    """Forget the real key once the upstream has it (plain headers again, still masked)."""
    if isinstance(request.headers, KeyedHeaders):
        request.headers = http.Headers(request.headers.fields)
