"""Compressed request bodies (Content-Encoding: gzip, deflate, br, zstd) undone before the body is validated.

Clients and gateways may compress what they send. Every coding mitmproxy itself decodes is accepted; the body is
inflated step by step with a cap, so a small "zip bomb" stops at the size limit instead of filling memory: each
decompressor is asked for at most the bytes still allowed plus one, and one byte more than the limit is a 413.
Several codings ("gzip, br") were applied in the order listed and are undone in reverse.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
from backports import zstd  # what mitmproxy 12 decodes zstd with on Python 3.12

from .chat_request import ClientError

IDENTITY = frozenset(("", "identity", "none"))


class TooLarge(Exception):
    """The decoded body would exceed the limit."""


def _zlib_member(data: bytes, room: int, wbits: int) -> tuple[bytes, bytes]:
    """One gzip member or zlib stream: (its output, the bytes after it)."""
    decompressor = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while not decompressor.eof:
        piece = decompressor.decompress(pending, room + 1 - len(out))
        out += piece
        if len(out) > room:
            raise TooLarge
        pending = decompressor.unconsumed_tail
        if not pending and not piece:
            raise ValueError("the compressed data ends early (truncated)")
    return bytes(out), decompressor.unused_data


def _gzip(data: bytes, room: int) -> tuple[bytes, bytes]:
    return _zlib_member(data, room, 32 + zlib.MAX_WBITS)  # gzip or zlib header, as mitmproxy accepts


def _deflate(data: bytes, room: int) -> tuple[bytes, bytes]:
    try:
        return _zlib_member(data, room, zlib.MAX_WBITS)
    except zlib.error:
        return _zlib_member(data, room, -zlib.MAX_WBITS)  # raw deflate, which some servers send (as mitmproxy)


def _brotli(data: bytes, room: int) -> tuple[bytes, bytes]:
    decompressor = brotli.Decompressor()
    out = bytearray(decompressor.process(data, output_buffer_limit=room + 1))
    while len(out) <= room and not decompressor.is_finished() and not decompressor.can_accept_more_data():
        out += decompressor.process(b"", output_buffer_limit=room + 1 - len(out))
    if len(out) > room:
        raise TooLarge
    if not decompressor.is_finished():
        raise ValueError("the compressed data ends early (truncated)")
    return bytes(out), b""


def _zstd(data: bytes, room: int) -> tuple[bytes, bytes]:
    decompressor = zstd.ZstdDecompressor()
    out = bytearray(decompressor.decompress(data, room + 1))
    while len(out) <= room and not decompressor.eof and not decompressor.needs_input:
        out += decompressor.decompress(b"", room + 1 - len(out))
    if len(out) > room:
        raise TooLarge
    if not decompressor.eof:
        raise ValueError("the compressed data ends early (truncated)")
    return bytes(out), decompressor.unused_data


# Each takes (data, room) and returns one member's output and the data after it; gzip and zstd allow several.
DECODERS: dict[str, Callable[[bytes, int], tuple[bytes, bytes]]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "deflateraw": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def parse_content_encoding(header: str) -> list[str]:
    """The codings in a Content-Encoding header, in the order they were applied; ClientError 415 for unknown ones."""
    codings = [name.strip().lower() for name in header.split(",")]
    codings = [name for name in codings if name not in IDENTITY]
    for name in codings:
        if name not in DECODERS:
            raise ClientError(
                f"The request body's Content-Encoding {name!r} is not one the proxy decodes; send it uncompressed "
                f"or as {', '.join(sorted(set(DECODERS) - {'x-gzip', 'deflateraw'}))}.",
                status=415,
                code="unsupported_content_encoding",
            )
    return codings


def decode_body(content: bytes, header: str, max_bytes: int) -> bytes:
    """The body with its Content-Encoding undone, at most max_bytes long.

    Raises ClientError: 415 for a coding the proxy does not know, 400 for data that is not valid in its coding,
    413 as soon as the decoded body would pass max_bytes (nothing beyond max_bytes + 1 is ever inflated).
    """
    codings = parse_content_encoding(header)
    if codings and len(content) > max_bytes:
        raise ClientError(
            f"The request body is {len(content):,} bytes; the proxy accepts at most {max_bytes:,}.",
            status=413,
            code="request_too_large",
        )
    for name in reversed(codings):
        content = _decode_one(name, content, max_bytes)
    return content


def _decode_one(name: str, content: bytes, max_bytes: int) -> bytes:
    out = bytearray()
    rest = content
    try:
        while rest:
            piece, rest = DECODERS[name](rest, max_bytes - len(out))
            out += piece
    except TooLarge:
        raise ClientError(
            f"The request body decodes ({name}) to more than {max_bytes:,} bytes; the proxy accepts at most "
            f"{max_bytes:,} (translate_max_body).",
            status=413,
            code="request_too_large",
        ) from None
    except (ValueError, zlib.error, brotli.error, zstd.ZstdError, EOFError) as e:
        raise ClientError(
            f"The request body is not valid {name} data (Content-Encoding: {name}): {e}.",
            code="invalid_content_encoding",
        ) from None
    return bytes(out)
