"""addon/formats/capped.py: a stream's stored copy is cut at its cap, says so, and never grows past it."""

from addon.formats.capped import CappedBuffer


def test_chunks_up_to_the_cap_are_kept_whole_and_the_rest_is_cut():
    kept = CappedBuffer(10)
    kept.add(b"12345")
    kept.add(b"6789")
    assert bytes(kept.data) == b"123456789" and not kept.truncated
    kept.add(b"abc")
    assert bytes(kept.data) == b"123456789a" and kept.truncated
    kept.add(b"more")
    assert bytes(kept.data) == b"123456789a" and kept.truncated


def test_a_cap_of_zero_keeps_nothing():
    kept = CappedBuffer(0)
    kept.add(b"x")
    assert kept.data == bytearray() and kept.truncated
