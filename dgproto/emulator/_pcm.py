"""Raw PCM conversions for the emulator: bytes on the wire <-> int16 samples.

Deepgram's raw encodings (``linear16``, ``linear32``, ``mulaw``, ``alaw``) arrive as
headerless little-endian bytes, interleaved when there are several channels, and split
into WebSocket frames wherever the client liked, even mid-sample. The emulator decodes
them in real time for many streams in pure Python, so every conversion here runs at C
speed: ``array.frombytes``/``tobytes`` for linear PCM (the wire is little-endian),
``bytes.translate`` tables for G.711 decoding, one 64 KiB lookup table per G.711 encoder
(built on first use) and extended slicing for (de)interleaving. No per-sample Python loop
runs outside table construction.

All samples are signed 16-bit (``array('h')``): ``linear32`` keeps its top 16 bits, which is
all a tone decoder or an energy meter needs.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import chain

__all__ = [
    "ENCODINGS",
    "SAMPLE_WIDTH",
    "PcmDecoder",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "check_encoding",
    "decode",
    "encode",
    "interleave",
    "linear16_to_samples",
    "linear32_to_samples",
    "mulaw_decode",
    "mulaw_encode",
    "resample",
    "samples_to_linear16",
    "samples_to_linear32",
]

#: Bytes per sample of every raw encoding this module converts.
SAMPLE_WIDTH: dict[str, int] = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
#: The raw encodings this module converts, in a stable order for error messages.
ENCODINGS: tuple[str, ...] = tuple(SAMPLE_WIDTH)


def check_encoding(encoding: str) -> None:
    """``ValueError`` naming the allowed values unless ``encoding`` is one of ``ENCODINGS``."""
    if encoding not in SAMPLE_WIDTH:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")


# --- G.711 reference algorithms (ITU-T G.711 as in Sun's public-domain g711.c). They run
# once per code or per 14/13-bit magnitude to build the tables below, never per sample.

_MULAW_BIAS = 0x84
_MULAW_CLIP = 8159  # in 14-bit units
_MULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: Sequence[int]) -> int:
    for seg, end in enumerate(ends):
        if value <= end:
            return seg
    return len(ends)


def _mulaw_code(value14: int) -> int:
    """µ-law code of a 14-bit two's complement sample (a 16-bit sample shifted right by 2)."""
    mask = 0xFF
    if value14 < 0:
        value14 = -value14
        mask = 0x7F
    value14 = min(value14, _MULAW_CLIP) + (_MULAW_BIAS >> 2)
    seg = _segment(value14, _MULAW_SEG_END)
    if seg >= len(_MULAW_SEG_END):  # only the clipped maximum lands past the last segment
        return 0x7F ^ mask
    return ((seg << 4) | ((value14 >> (seg + 1)) & 0xF)) ^ mask


def _mulaw_linear(code: int) -> int:
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + _MULAW_BIAS) << ((code & 0x70) >> 4)
    return _MULAW_BIAS - t if code & 0x80 else t - _MULAW_BIAS


def _alaw_code(value13: int) -> int:
    """A-law code of a 13-bit two's complement sample (a 16-bit sample shifted right by 3)."""
    mask = 0xD5
    if value13 < 0:
        mask = 0x55
        value13 = -value13 - 1
    seg = _segment(value13, _ALAW_SEG_END)  # never 8: |value13| <= 0xFFF
    shift = 1 if seg < 2 else seg
    return ((seg << 4) | ((value13 >> shift) & 0xF)) ^ mask


def _alaw_linear(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108) << max(seg - 1, 0)
    return t if code & 0x80 else -t


def _encode_table(code_of: dict[int, int], shift: int) -> bytes:
    """A 65536-entry table: unsigned 16-bit pattern -> code, from a (16-shift)-bit table."""
    width = 16 - shift
    short = bytes(code_of[v - (1 << width) if v >> (width - 1) else v] for v in range(1 << width))
    return bytes(chain.from_iterable(zip(*([short] * (1 << shift)), strict=True)))


def _decode_tables(linear_of: Sequence[int]) -> tuple[bytes, bytes]:
    """``bytes.translate`` tables giving the low and the high byte of each code's sample."""
    packed = struct.pack("<256h", *linear_of)
    return packed[0::2], packed[1::2]


@cache
def _mulaw_encode_table() -> bytes:  # built on first use: ~20 ms, not at import
    return _encode_table({v: _mulaw_code(v) for v in range(-8192, 8192)}, 2)


@cache
def _alaw_encode_table() -> bytes:
    return _encode_table({v: _alaw_code(v) for v in range(-4096, 4096)}, 3)


_BIG_ENDIAN_HOST = sys.byteorder == "big"

_MULAW_LO, _MULAW_HI = _decode_tables([_mulaw_linear(c) for c in range(256)])
_ALAW_LO, _ALAW_HI = _decode_tables([_alaw_linear(c) for c in range(256)])


def _as_int16(samples: Iterable[int]) -> array[int]:
    return (
        samples if isinstance(samples, array) and samples.typecode == "h" else array("h", samples)
    )


def _g711_encode(samples: Iterable[int], table: bytes) -> bytes:
    unsigned = array("H")
    unsigned.frombytes(_as_int16(samples).tobytes())  # same host order on both sides
    return bytes(map(table.__getitem__, unsigned))


def _g711_decode(data: bytes, lo: bytes, hi: bytes) -> array[int]:
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(lo)
    out[1::2] = data.translate(hi)
    return linear16_to_samples(bytes(out))


def mulaw_encode(samples: Iterable[int]) -> bytes:
    """ITU-T G.711 µ-law: one byte per int16 sample."""
    return _g711_encode(samples, _mulaw_encode_table())


def mulaw_decode(data: bytes) -> array[int]:
    """ITU-T G.711 µ-law bytes to int16 samples."""
    return _g711_decode(data, _MULAW_LO, _MULAW_HI)


def alaw_encode(samples: Iterable[int]) -> bytes:
    """ITU-T G.711 A-law: one byte per int16 sample."""
    return _g711_encode(samples, _alaw_encode_table())


def alaw_decode(data: bytes) -> array[int]:
    """ITU-T G.711 A-law bytes to int16 samples."""
    return _g711_decode(data, _ALAW_LO, _ALAW_HI)


def _whole(data: bytes, width: int, encoding: str) -> None:
    if len(data) % width:
        raise ValueError(
            f"data: {encoding} needs a multiple of {width} bytes, got {len(data)}; "
            "PcmDecoder carries partial samples across chunks"
        )


def linear16_to_samples(data: bytes) -> array[int]:
    """Little-endian signed 16-bit bytes to samples. The length must be even."""
    _whole(data, 2, "linear16")
    samples = array("h")
    samples.frombytes(data)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - the wire is little-endian; CI hosts are too
        samples.byteswap()
    return samples


def samples_to_linear16(samples: Iterable[int]) -> bytes:
    """Int16 samples to little-endian bytes (``OverflowError`` outside the int16 range)."""
    values = _as_int16(samples)
    if _BIG_ENDIAN_HOST:  # pragma: no cover - the wire is little-endian; CI hosts are too
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def linear32_to_samples(data: bytes) -> array[int]:
    """Little-endian signed 32-bit bytes to int16 samples (the top 16 bits of each)."""
    _whole(data, 4, "linear32")
    top = bytearray(len(data) // 2)
    top[0::2] = data[2::4]
    top[1::2] = data[3::4]
    return linear16_to_samples(bytes(top))


def samples_to_linear32(samples: Iterable[int]) -> bytes:
    """Int16 samples to little-endian signed 32-bit bytes (each sample times 65536)."""
    half = samples_to_linear16(samples)
    out = bytearray(2 * len(half))
    out[2::4] = half[0::2]
    out[3::4] = half[1::2]
    return bytes(out)


_DECODERS = {
    "linear16": linear16_to_samples,
    "linear32": linear32_to_samples,
    "mulaw": mulaw_decode,
    "alaw": alaw_decode,
}
_ENCODERS = {
    "linear16": samples_to_linear16,
    "linear32": samples_to_linear32,
    "mulaw": mulaw_encode,
    "alaw": alaw_encode,
}


def encode(samples: Iterable[int], encoding: str) -> bytes:
    """Int16 samples to bytes in ``encoding`` (one of ``ENCODINGS``)."""
    check_encoding(encoding)
    return _ENCODERS[encoding](samples)


def decode(data: bytes, encoding: str) -> array[int]:
    """Whole samples of ``encoding`` to int16 samples (``ValueError`` on a partial sample)."""
    check_encoding(encoding)
    return _DECODERS[encoding](data)


def interleave(channels: Sequence[Sequence[int]]) -> array[int]:
    """Int16 channels to one interleaved frame sequence; shorter channels are padded with 0."""
    if not channels:
        raise ValueError("channels: need at least one channel")
    count = len(channels)
    frames = max(len(c) for c in channels)
    out = array("h", bytes(2 * frames * count))
    for index, channel in enumerate(channels):
        out[index : len(channel) * count : count] = _as_int16(channel)
    return out


class Resampler:
    """Streaming linear-interpolation rate conversion of int16 samples, exact in count.

    Output sample ``n`` is the input at position ``n * rate_in / rate_out``, computed in
    integers so no drift builds up however the input is chunked. No anti-alias filter:
    meant for the tone codec, whose tones all lie far below either Nyquist frequency.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"rates must be positive, got {rate_in} -> {rate_out}")
        self._in = rate_in
        self._out = rate_out
        self._next = 0  # index of the next output sample
        self._base = 0  # absolute input index of self._tail[0]
        self._tail = array("h")

    def feed(self, samples: Sequence[int]) -> array[int]:
        data = self._tail + _as_int16(samples)
        out = array("h")
        rate_in, rate_out, base = self._in, self._out, self._base
        n = self._next
        last = base + len(data) - 1  # interpolation needs the sample after
        while True:
            index, rest = divmod(n * rate_in, rate_out)
            if index >= last:
                break
            a = data[index - base]
            out.append(a + round((data[index - base + 1] - a) * rest / rate_out))
            n += 1
        self._next = n
        keep = min((n * rate_in) // rate_out, base + len(data)) - base
        self._base = base + keep
        self._tail = data[keep:]
        return out


def resample(samples: Sequence[int], rate_in: int, rate_out: int) -> array[int]:
    """All of ``samples`` converted at once (see ``Resampler``)."""
    return Resampler(rate_in, rate_out).feed(samples)


class PcmDecoder:
    """Incremental decoder: arbitrary byte chunks in, one int16 array per channel out.

    WebSocket frames need not end on a sample, let alone a frame (one sample for every
    channel), so the bytes of a partial frame are kept for the next ``feed``. Decoding is
    therefore independent of how the stream was split.
    """

    def __init__(self, encoding: str, channels: int = 1) -> None:
        check_encoding(encoding)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer; got {channels!r}")
        self.encoding = encoding
        self.channels = channels
        self.frame_bytes = SAMPLE_WIDTH[encoding] * channels
        self.frames_decoded = 0
        self._pending = b""

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame waiting for the next chunk."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[array[int]]:
        """Decode every complete frame so far; returns ``channels`` arrays (maybe empty)."""
        buffer = self._pending + bytes(data)
        usable = len(buffer) - len(buffer) % self.frame_bytes
        self._pending = buffer[usable:]
        samples = _DECODERS[self.encoding](buffer[:usable])
        self.frames_decoded += usable // self.frame_bytes
        if self.channels == 1:
            return [samples]
        return [samples[c :: self.channels] for c in range(self.channels)]
