"""Compressed request bodies: every coding mitmproxy decodes, broken data, bombs, unknown codings."""

import gzip
import os
import tracemalloc
import zlib

import brotli
import pytest
from backports import zstd
from mitmproxy.net import encoding

from addon.request.body_encoding import decode_body, parse_content_encoding
from addon.request.chat_request import ClientError

BODY = b'{"model": "local-model", "messages": [{"role": "user", "content": "' + b"hello " * 2000 + b'"}]}'
CODINGS = ("gzip", "deflate", "br", "zstd")
LIMIT = 1 << 20


def compress(data: bytes, name: str) -> bytes:
    return encoding.encode(data, name)  # mitmproxy's own encoders: what it would accept, we accept


def bomb(name: str, size: int = 128 << 20) -> bytes:
    """`size` zero bytes compressed at the highest level, made a MiB at a time (never all in memory)."""
    compressor = {
        "gzip": lambda: zlib.compressobj(9, wbits=31),
        "deflate": lambda: zlib.compressobj(9),
        "br": lambda: brotli.Compressor(quality=4),
        "zstd": lambda: zstd.ZstdCompressor(level=3),
    }[name]()
    feed = compressor.process if name == "br" else compressor.compress
    zeros = bytes(1 << 20)
    parts = [feed(zeros) for _ in range(size >> 20)]
    return b"".join(parts) + (compressor.finish() if name == "br" else compressor.flush())


@pytest.mark.parametrize("name", CODINGS)
def test_each_coding_is_decoded(name):
    assert decode_body(compress(BODY, name), name, LIMIT) == BODY


@pytest.mark.parametrize("header", ["", "identity", "Identity", " identity "])
def test_no_coding_leaves_the_body_as_it_is(header):
    assert decode_body(BODY, header, LIMIT) == BODY


@pytest.mark.parametrize(
    "header, data",
    [
        ("GZIP", gzip.compress(BODY)),  # names are case-insensitive
        ("x-gzip", gzip.compress(BODY)),
        ("gzip", zlib.compress(BODY)),  # a zlib stream labelled gzip, as mitmproxy accepts
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, without the zlib wrapper
        ("gzip", gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])),  # two gzip members
        ("zstd", encoding.encode(BODY[:100], "zstd") + encoding.encode(BODY[100:], "zstd")),  # two frames
        ("gzip, br", compress(gzip.compress(BODY), "br")),  # applied in order, undone in reverse
    ],
)
def test_variants_clients_send(header, data):
    assert decode_body(data, header, LIMIT) == BODY


@pytest.mark.parametrize("name", CODINGS)
def test_truncated_data_is_a_400(name):
    data = compress(BODY, name)
    with pytest.raises(ClientError) as caught:
        decode_body(data[: len(data) // 2], name, LIMIT)
    assert caught.value.status == 400 and caught.value.code == "invalid_content_encoding"
    assert name in str(caught.value)


@pytest.mark.parametrize("name", CODINGS)
def test_garbage_is_a_400(name):
    with pytest.raises(ClientError) as caught:
        decode_body(os.urandom(64) + b"not compressed at all", name, LIMIT)
    assert caught.value.status == 400 and caught.value.code == "invalid_content_encoding"


@pytest.mark.parametrize("name", CODINGS)
def test_a_body_just_at_the_limit_passes_and_one_byte_more_is_a_413(name):
    data = compress(BODY, name)
    assert decode_body(data, name, len(BODY)) == BODY
    with pytest.raises(ClientError) as caught:
        decode_body(data, name, len(BODY) - 1)
    assert caught.value.status == 413 and caught.value.code == "request_too_large"


@pytest.mark.parametrize("name", CODINGS)
def test_a_bomb_is_refused_without_inflating_it(name):
    data = bomb(name)  # 128 MiB of zeros in at most a few hundred kB
    assert len(data) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(ClientError) as caught:
            decode_body(data, name, LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413 and "1,048,576" in str(caught.value)
    # tracemalloc counts every thread's allocations (a test before may leave one running), so the bound is loose:
    # a quarter of what inflating the bomb would take, and still far above decoding in bounded pieces.
    assert peak < 32 * LIMIT, f"decoding the {name} bomb took {peak:,} bytes"


def test_a_compressed_body_over_the_limit_is_a_413_before_decoding():
    data = os.urandom(4096)  # does not compress
    with pytest.raises(ClientError) as caught:
        decode_body(gzip.compress(data), "gzip", 1024)
    assert caught.value.status == 413


@pytest.mark.parametrize("header", ["compress", "gzip, exi", "pack200-gzip", "rot13"])
def test_an_unknown_coding_is_a_415_naming_it(header):
    with pytest.raises(ClientError) as caught:
        decode_body(BODY, header, LIMIT)
    assert caught.value.status == 415 and caught.value.code == "unsupported_content_encoding"
    assert header.split(",")[-1].strip() in str(caught.value) and "gzip" in str(caught.value)


def test_parse_content_encoding_keeps_the_order_applied():
    assert parse_content_encoding("gzip, identity, BR") == ["gzip", "br"]
    assert parse_content_encoding("") == []
