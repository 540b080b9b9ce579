"""The dedicated server-frame parser gives exactly wsproto's outcome, fed any way at all.

The oracle is wsproto's own client-side ``Connection`` past the handshake, with the
reassembly and ``max_message_size`` check that ``ListenConnection`` applied to its
events. Both are fed the same chunks; after every chunk both must have produced the same
events (whole messages, pings, pongs, the peer's close, or the protocol error with its
close code and reason).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import (
    AcceptConnection,
    Request,
)

from dgproto._fragments import FRAGMENT_ALLOWANCE
from dgproto._inbound import (
    BINARY,
    CLOSE,
    ERROR,
    PONG,
    TEXT,
    InboundParser,
    take_after_handshake,
)

from .inbound_diff import Outcome, run_both


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_form: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame; ``length_form`` 0 = minimal, 16 or 64 = that extended length field."""
    size = len(payload) if length is None else length
    head = bytes(((0x80 if fin else 0) | (rsv << 4) | opcode,))
    mask_bit = 0x80 if mask is not None else 0
    if length_form == 0 and size < 126:
        head += bytes((mask_bit | size,))
    elif length_form in (0, 16) and size < 65536:
        head += bytes((mask_bit | 126,)) + struct.pack("!H", size)
    else:
        head += bytes((mask_bit | 127,)) + struct.pack("!Q", size)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def assert_same(chunks: list[bytes], max_size: int | None = None) -> Outcome:
    theirs, ours = run_both(chunks, max_size)
    assert ours == theirs
    return ours


# ------------------------------------------------------------------ named cases

RESULTS = b'{"type":"Results","channel":{"alternatives":[{"transcript":"hi"}]}}'

CASES: dict[str, list[bytes]] = {
    "whole text": [frame(1, RESULTS)],
    "whole binary": [frame(2, b"\x00\x01")],
    "16-bit length text": [frame(1, b"x" * 300)],
    "64-bit length binary": [frame(2, b"y" * 70000)],
    "two in one read": [frame(1, b"a") + frame(1, "é".encode())],
    "one byte at a time": [bytes([b]) for b in frame(1, b"z" * 130) + frame(9, b"p")],
    "header split": [frame(1, b"q" * 200)[:3], frame(1, b"q" * 200)[3:]],
    "64-bit header split": [frame(2, b"r" * 70000)[:6], frame(2, b"r" * 70000)[6:]],
    "payload split": [frame(1, b"s" * 50)[:10], frame(1, b"s" * 50)[10:]],
    "empty text": [frame(1)],
    "fragments": [frame(1, b"ab", fin=False) + frame(9, b"!") + frame(0, b"cd")],
    "binary fragments": [frame(2, b"ab", fin=False) + frame(0, b"", fin=False) + frame(0, b"c")],
    "fragment split mid-character": [frame(1, b"\xc3", fin=False) + frame(0, b"\xa9")],
    "ping pong": [frame(9, b"hello") + frame(10, b"")],
    "control split": [frame(9, b"ping")[:3], frame(9, b"ping")[3:]],
    "close 1000": [frame(8, close_payload(1000, b"bye")) + frame(1, b"ignored")],
    "close without code": [frame(8)],
    "close 3000": [frame(8, close_payload(3000))],
    "after close": [frame(8, close_payload(1000)), frame(1, b"ignored")],
    "after error": [frame(3), frame(1, b"ignored")],
    "invalid opcode": [frame(3, b"x")],
    "fragmented control": [frame(9, b"x", fin=False)],
    "long control": [frame(9, b"x" * 126)],
    "non-minimal 16": [frame(1, b"x" * 5, length_form=16)],
    "non-minimal 16, first byte only": [frame(1, b"x" * 5, length_form=16)[:3]],
    "non-minimal 64": [frame(1, b"x" * 5, length_form=64)],
    "64-bit MSB": [frame(2, length=1 << 63)],
    "reserved bit": [frame(1, b"x", rsv=4)],
    "masked": [frame(1, b"x", mask=b"abcd")],
    "unexpected continuation": [frame(0, b"x")],
    "expected continuation": [frame(1, b"a", fin=False) + frame(2, b"b")],
    "expected continuation, text": [frame(2, b"a", fin=False) + frame(1, b"b")],
    "new message, no payload yet": [frame(1, b"a", fin=False) + frame(1, length=3)],
    "bad utf-8 whole": [frame(1, b"ok\xff")],
    "bad utf-8 partial": [frame(1, b"ok\xff" + b"x" * 10)[:6]],
    "truncated utf-8 at the end": [frame(1, b"\xe2\x82")],
    "close 1 byte": [frame(8, b"\x03")],
    "close code 999": [frame(8, close_payload(999))],
    "close code 5000": [frame(8, close_payload(5000))],
    "close local-only 1006": [frame(8, close_payload(1006))],
    "close reserved 1004": [frame(8, close_payload(1004))],
    "close reserved 2999": [frame(8, close_payload(2999))],
    "close bad reason": [frame(8, close_payload(1000, b"\xff"))],
    "bytearray input": [frame(1, b"abc")],
    "16-bit header, 3 bytes": [frame(1, b"x" * 200)[:3]],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_matches_wsproto(name: str) -> None:
    assert_same(CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_case_matches_wsproto_with_a_size_limit(name: str) -> None:
    assert_same(CASES[name], max_size=4)


def test_the_common_case_is_one_whole_message() -> None:
    parser = InboundParser(1 << 20)
    assert parser.feed(frame(1, RESULTS)) == [(TEXT, RESULTS.decode())]
    assert parser.feed(bytearray(frame(2, b"\x01"))) == [(BINARY, b"\x01")]
    assert parser.feed(memoryview(frame(10, b"p"))) == [(PONG, b"p")]


def test_errors_carry_wsproto_close_codes() -> None:
    assert InboundParser().feed(frame(1, b"\xff")) == [
        (ERROR, (1007, "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"))
    ]
    assert InboundParser(3).feed(frame(1, b"abcd")) == [
        (ERROR, (1009, "message of at least 4 characters exceeds max_message_size=3"))
    ]
    assert InboundParser().feed(frame(8, close_payload(4000, b"why"))) == [(CLOSE, (4000, "why"))]


def test_an_empty_continuation_flood_stores_nothing_and_is_cut_short() -> None:
    """Each empty frame costs a few operations and no memory; past the allowance, 1009."""
    parser = InboundParser(1 << 20)
    assert parser.feed(frame(1, b"start", fin=False)) == []
    assert parser.feed(frame(0, fin=False) * (FRAGMENT_ALLOWANCE + 4)) == []
    assert parser._parts == [b"start"] or parser._parts == ["start"]
    assert parser._held == b""
    events = parser.feed(frame(0, fin=False) * 2)
    frames = FRAGMENT_ALLOWANCE + 6
    reason = (
        f"message split into {frames} frames, more than {FRAGMENT_ALLOWANCE} plus one per "
        "payload byte"
    )
    assert events == [(ERROR, (1009, reason))]
    assert parser.feed(frame(0, b"!")) == []


def test_the_fragment_allowance_is_per_message() -> None:
    parser = InboundParser(1 << 20)
    flood = frame(1, b"a", fin=False) + frame(0, fin=False) * (FRAGMENT_ALLOWANCE - 1) + frame(0)
    assert parser.feed(flood * 3) == [(TEXT, "a")] * 3


def test_a_message_over_the_limit_fails_as_its_pieces_arrive() -> None:
    """A huge announced frame is not buffered: the limit trips when the bytes exceed it."""
    parser = InboundParser(100)
    head = frame(2, length=10_000_000)[:10]
    assert parser.feed(head + b"x" * 60) == []
    events = parser.feed(b"x" * 60)
    assert events == [
        (ERROR, (1009, "message of at least 120 characters exceeds max_message_size=100"))
    ]
    assert parser.feed(b"x" * 60) == []


# ------------------------------------------------------------------ differential fuzzing

_CLOSE_CODES = [1000, 1001, 1004, 1005, 1006, 1011, 1014, 1015, 999, 2999, 3000, 4999, 5000]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at each of ``cuts`` (empty pieces included: a read may return b"")."""
    bounds = sorted(cuts)
    return [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True)]


@st.composite
def payloads(draw: st.DrawFn, opcode: int) -> bytes:
    if opcode == 8 and draw(st.booleans()):
        code = draw(st.sampled_from(_CLOSE_CODES) | st.integers(0, 0xFFFF))
        reason = draw(st.text(max_size=20).map(str.encode) | st.binary(max_size=10))
        return close_payload(code, reason)[: draw(st.integers(0, 125))]
    text = draw(st.text(max_size=40)).encode()
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=20))
    if text and draw(st.integers(0, 5)) == 0:  # cut a character in half
        return text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([1, 1, 1, 2, 0, 0, 8, 9, 10]) | st.integers(0, 15))
    payload = draw(payloads(opcode))
    if draw(st.integers(0, 20)) == 0:
        payload = payload * 9  # past 125 bytes: the 16-bit length field
    hostile = draw(st.integers(0, 9)) == 0
    return frame(
        opcode,
        payload,
        fin=draw(st.booleans()) if hostile or opcode == 0 else True,
        rsv=draw(st.integers(0, 7)) if hostile and draw(st.booleans()) else 0,
        mask=b"\x01\x02\x03\x04" if hostile and draw(st.integers(0, 3)) == 0 else None,
        length_form=draw(st.sampled_from([0, 16, 64])) if hostile else 0,
    )


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A valid message, often in fragments split anywhere (mid-character included)."""
    opcode = draw(st.sampled_from([1, 2]))
    data = draw(st.text(max_size=60)).encode()
    pieces = split(data, draw(st.lists(st.integers(0, len(data)), max_size=4)))
    out = b""
    for i, piece in enumerate(pieces):
        out += frame(opcode if i == 0 else 0, piece, fin=i == len(pieces) - 1)
        if draw(st.integers(0, 4)) == 0:
            out += frame(9, b"mid")
    return out


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    data = b"".join(draw(st.lists(messages() | frames(), max_size=8)))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # the peer stops mid-frame
    return split(data, draw(st.lists(st.integers(0, len(data)), max_size=6)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=streams(), max_size=st.none() | st.integers(1, 80))
def test_any_stream_split_anywhere_matches_wsproto(
    chunks: list[bytes], max_size: int | None
) -> None:
    assert_same(chunks, max_size)


@pytest.mark.parametrize("extra", [b"", frame(1, RESULTS), frame(1, RESULTS) + frame(9, b"p")[:2]])
def test_frames_that_came_with_the_101_are_handed_over(extra: bytes) -> None:
    """wsproto parses the handshake; what followed the 101 goes to the parser, untouched."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="example.com", target="/v1/listen")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()) + extra)
    events = client.events()
    assert isinstance(next(events), AcceptConnection)
    assert take_after_handshake(client) == extra
    assert list(events) == []  # wsproto parses nothing more: the bytes are gone
    parser = InboundParser()
    assert parser.feed(extra) == ([(TEXT, RESULTS.decode())] if extra else [])
