"""The CLI's hand-written WAV header reader: every refusal names what is wrong."""

from __future__ import annotations

import io
import math
import struct

import pytest

from dgproto.transports.cli.sources import sniff_container
from dgproto.transports.cli.wav import WavError, read_header

from .test_cli import any_wav


def _chunks(*chunks: tuple[bytes, bytes]) -> io.BytesIO:
    body = b"WAVE" + b"".join(kind + struct.pack("<I", len(data)) + data for kind, data in chunks)
    return io.BytesIO(b"RIFF" + struct.pack("<I", len(body)) + body)


DATA = (b"data", b"\x00\x00")
FMT16 = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (io.BytesIO(b"RIFF\x00\x00\x00\x00AVI "), "no RIFF/WAVE header"),
        (_chunks((b"fmt ", FMT16)), "no data chunk"),
        (_chunks((b"LIST", b"ab")), "no fmt chunk"),
        (_chunks((b"data", b"\x00\x00"), (b"fmt ", FMT16)), "data chunk comes before the fmt"),
        (_chunks((b"fmt ", FMT16[:12])), "fmt chunk is too short"),
        (_chunks((b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16))), "EXTENSIBLE"),
        (
            _chunks((b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 4, 16)), DATA),
            "inconsistent",
        ),
        (
            _chunks((b"fmt ", struct.pack("<HHIIHH", 3, 1, 8000, 16000, 2, 16)), DATA),
            "16-bit float",
        ),
        (io.BytesIO(any_wav(1, 16, b"")[:40]), "cut short"),
    ],
)
def test_refusals(file: io.BytesIO, message: str) -> None:
    with pytest.raises(WavError, match=message):
        read_header(file)


def test_odd_chunks_are_skipped_with_their_pad_byte() -> None:
    layout = read_header(_chunks((b"junk", b"abc\x00"), (b"fmt ", FMT16), (b"data", b"\x01\x02")))
    assert (layout.encoding, layout.sample_rate, layout.data_size) == ("linear16", 8000, 2)


def test_float_conversion_clamps_and_survives_nan() -> None:
    data = struct.pack("<5f", 0.5, 2.0, -math.inf, math.nan, -1.0)
    layout = read_header(io.BytesIO(any_wav(3, 32, data)))
    assert layout.convert is not None
    assert struct.unpack("<5h", layout.convert(data)) == (16384, 32767, -32767, 0, -32767)


def test_sniff_container_needs_a_magic_number() -> None:
    assert sniff_container(b"") is None
    assert sniff_container(b"\xff") is None
    assert sniff_container(b"RIFF....WAVE") is None
