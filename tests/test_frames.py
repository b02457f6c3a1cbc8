"""The sans-I/O frame reader (confd_ha._frames.FrameReader), without any socket."""

from __future__ import annotations

import tracemalloc

import pytest

from confd_ha import _frames, _protocol, error
from confd_ha._frames import FrameReader, TooLong


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def drain(reader: FrameReader) -> list:
    out = []
    while True:
        got = reader.pop()
        if got is None:
            return out
        out.append(got)


def test_fed_byte_by_byte():
    payloads = [b"first frame", b"", b"\x83d\x00\x02ok"]
    stream = b"".join(framed(p) for p in payloads)
    reader = FrameReader()
    got = []
    for i in range(len(stream)):
        assert reader.needed >= 1  # a blocking reader may ask for exactly this much
        reader.feed(stream[i:i + 1])
        got += drain(reader)
    assert got == payloads
    assert not reader.mid_frame
    assert reader.needed == 4


def test_needed_is_exactly_what_the_frame_lacks():
    reader = FrameReader()
    assert reader.pop() is None and reader.needed == 4 and reader.announced is None
    reader.feed(b"\x00\x00")
    assert reader.pop() is None and reader.needed == 2
    reader.feed(b"\x00\x05ab")
    assert reader.pop() is None
    assert reader.announced == 5 and reader.needed == 3
    reader.feed(b"cde")
    assert reader.pop() == b"abcde"
    assert reader.announced is None and reader.needed == 4


def test_several_frames_in_one_chunk():
    payloads = [b"a" * n for n in (0, 1, 7, 300, 65536)]
    reader = FrameReader()
    reader.feed(b"".join(framed(p) for p in payloads) + b"\x00\x00")
    assert drain(reader) == payloads
    assert reader.mid_frame and reader.needed == 2


def test_initial_data_is_the_start_of_the_stream():
    reader = FrameReader(data=b"\x00\x00\x00\x03ab")
    assert reader.pop() is None and reader.needed == 1
    reader.feed(b"c")
    assert reader.pop() == b"abc"


@pytest.mark.parametrize("announced", [0xFFFFFFFF, 0x80000000, _protocol.MAX_FRAME + 1])
def test_oversized_header_refused_before_allocation(announced):
    reader = FrameReader(_protocol.MAX_FRAME)
    tracemalloc.start()
    try:
        reader.feed(announced.to_bytes(4, "big") + b"x" * 10)
        with pytest.raises(error.Error) as info:
            reader.pop()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert "frame of %d bytes announced" % announced in info.value.confd_lasterr
    assert peak < 64 * 1024
    with pytest.raises(error.Error):  # it stays refused: the stream cannot be resynchronised
        reader.pop()


def test_limit_is_inclusive():
    reader = FrameReader(limit=3)
    reader.feed(framed(b"abc"))
    assert reader.pop() == b"abc"
    reader.feed(framed(b"abcd"))
    with pytest.raises(error.Error):
        reader.pop()


def test_frames_above_drop_above_are_dropped_without_being_kept():
    size = 64 * 1024 * 1024
    reader = FrameReader(limit=0x7FFFFFFB, drop_above=1024)
    chunk = b"z" * (1 << 20)
    tracemalloc.start()
    try:
        reader.feed(size.to_bytes(4, "big") + chunk[:100])
        assert reader.pop() is None
        assert reader.announced == size and reader.mid_frame
        left = size - 100
        assert reader.needed == left
        while left:
            piece = chunk[:min(left, len(chunk))]
            reader.feed(piece)
            left -= len(piece)
            assert reader.needed == left
            assert reader.pop() == (TooLong(size) if not left else None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(chunk)


def test_dropped_frame_then_the_next_one_in_the_same_chunk():
    reader = FrameReader(limit=1 << 20, drop_above=4)
    reader.feed(framed(b"too long") + framed(b"ok") + framed(b"12345") + framed(b""))
    assert drain(reader) == [TooLong(8), b"ok", TooLong(5), b""]
    assert not reader.mid_frame


def test_torn_stream_detection():
    reader = FrameReader()
    assert not reader.mid_frame
    reader.feed(b"\x00")
    assert reader.mid_frame          # inside a header
    reader.feed(b"\x00\x00\x02")
    assert reader.pop() is None
    assert reader.mid_frame          # header read, payload missing
    reader.feed(b"hi")
    assert reader.pop() == b"hi"
    assert not reader.mid_frame      # on a frame boundary: a close now is a clean EOF
    reader.feed(framed(b""))
    assert reader.pop() == b""
    assert not reader.mid_frame


def test_limit_can_change_between_frames():
    reader = FrameReader(limit=2)
    reader.feed(framed(b"abc"))
    reader.limit = 3
    assert reader.pop() == b"abc"
    assert _frames.HEADER_LEN == 4
