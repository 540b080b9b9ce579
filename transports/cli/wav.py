"""WAV headers read by hand: every WAV that people have, on every Python.

The standard ``wave`` module refuses μ-law, A-law and float WAV, and before 3.12 also
``WAVE_FORMAT_EXTENSIBLE`` (sox's 24-bit output). This reads the RIFF chunks itself,
from any object with ``read(n)`` (stdin cannot seek), and says what to send:

- PCM 16/32-bit as ``linear16``/``linear32``; 8-bit (unsigned) widened to ``linear16``;
  24-bit widened to ``linear32``;
- μ-law and A-law as ``mulaw``/``alaw``, as they are (Deepgram takes both);
- 32/64-bit float converted to ``linear16`` (Deepgram has no float encoding).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

import attrs

__all__ = ["WavError", "WavLayout", "read_header"]

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_NAMES = {_PCM: "PCM", _FLOAT: "float", _ALAW: "A-law", _MULAW: "mu-law"}
#: A data chunk size that means "until the end" (a WAV written to a pipe).
_STREAMING_SIZES = (0, 0xFFFFFFFF)
SUPPORTED = "PCM (8/16/24/32-bit), float (32/64-bit), mu-law and A-law WAV"


class WavError(Exception):
    """The file is not a WAV dgproto can send; the message says why."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _u8_to_linear16(data: bytes) -> bytes:
    """8-bit WAV is unsigned: flip the sign bit and make it the high byte of an int16."""
    out = bytearray(2 * len(data))
    out[1::2] = data.translate(_FLIP_SIGN)
    return bytes(out)


def _s24_to_linear32(data: bytes) -> bytes:
    """24-bit little-endian samples become the top three bytes of 32-bit ones."""
    out = bytearray(4 * (len(data) // 3))
    for offset in range(3):
        out[offset + 1 :: 4] = data[offset::3]
    return bytes(out)


def _float_to_linear16(code: str) -> Callable[[bytes], bytes]:
    size = struct.calcsize(code)

    def convert(data: bytes) -> bytes:
        count = len(data) // size
        values = struct.unpack(f"<{count}{code}", data[: count * size])
        return struct.pack(f"<{count}h", *(_int16(value) for value in values))

    return convert


def _int16(value: float) -> int:
    if value != value:  # NaN
        return 0
    return round(max(-1.0, min(1.0, value)) * 32767)


_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))
#: (format tag, bits per sample) -> (the encoding sent, a converter to it or None).
_ENCODINGS: dict[tuple[int, int], tuple[str, Callable[[bytes], bytes] | None]] = {
    (_PCM, 8): ("linear16", _u8_to_linear16),
    (_PCM, 16): ("linear16", None),
    (_PCM, 24): ("linear32", _s24_to_linear32),
    (_PCM, 32): ("linear32", None),
    (_FLOAT, 32): ("linear16", _float_to_linear16("f")),
    (_FLOAT, 64): ("linear16", _float_to_linear16("d")),
    (_ALAW, 8): ("alaw", None),
    (_MULAW, 8): ("mulaw", None),
}


@attrs.frozen(kw_only=True)
class WavLayout:
    """What a WAV header says, and how its samples go on the wire."""

    encoding: str
    convert: Callable[[bytes], bytes] | None
    sample_rate: int
    channels: int
    block_align: int
    #: Bytes of audio, or ``None`` when the header says "until the end" (a pipe).
    data_size: int | None


def _read_exact(file: _Readable, size: int) -> bytes:
    data = file.read(size)
    if len(data) < size:
        raise WavError("the header is cut short")
    return data


def _skip(file: _Readable, size: int) -> None:
    while size > 0:
        step = min(size, 65536)
        _read_exact(file, step)
        size -= step


def _layout(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise WavError("its fmt chunk is too short")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 26:
            raise WavError("its WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID's first field
    return tag, channels, rate, align, bits


def read_header(file: _Readable) -> WavLayout:
    """Read up to the start of the samples; raise ``WavError`` for anything unsendable."""
    riff = file.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise WavError("it has no RIFF/WAVE header")
    fmt: tuple[int, int, int, int, int] | None = None
    while True:
        head = file.read(8)
        if len(head) < 8:
            raise WavError("it has no data chunk" if fmt else "it has no fmt chunk")
        kind, size = head[:4], int.from_bytes(head[4:], "little")
        if kind == b"data":
            break
        padded = size + (size & 1)  # chunks are word-aligned
        if kind == b"fmt ":
            fmt = _layout(_read_exact(file, padded)[:size])
        else:
            _skip(file, padded)
    if fmt is None:
        raise WavError("its data chunk comes before the fmt chunk")
    tag, channels, rate, align, bits = fmt
    if (tag, bits) not in _ENCODINGS:
        name = _NAMES.get(tag, f"format {tag}")
        raise WavError(f"{bits}-bit {name} WAV is not supported; dgproto reads {SUPPORTED}")
    if channels < 1 or rate < 1 or align != channels * bits // 8:
        raise WavError("its fmt chunk is inconsistent")
    encoding, convert = _ENCODINGS[tag, bits]
    return WavLayout(
        encoding=encoding,
        convert=convert,
        sample_rate=rate,
        channels=channels,
        block_align=align,
        data_size=None if size in _STREAMING_SIZES else size,
    )
