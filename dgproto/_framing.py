"""A dedicated writer for the client's outgoing binary (audio) frames.

Audio is the hot outbound path: 50 frames a second per stream, hundreds of streams per
process. wsproto's generic client path copies each payload about six times and masks it
byte by byte in Python. This writer builds the same RFC 6455 frame with one XOR over
big integers and one join. Everything else (text frames, control frames, the handshake,
parsing) stays with wsproto.

RFC 6455 section 5.3 requires client masking keys to be unpredictable, so keys come from
the OS's strong random source, fetched in batches to amortise the system call.

Masking is an XOR with the 4-byte key repeated. Two pure-Python ways are fast, and each
wins at one end (measured, see benchmarks/): for small frames, one big-integer XOR where
the repeated key is ``key * repunit`` (a constant per size, cached); for large frames,
``bytes.translate`` over the four strided slices with a 256x256 XOR table (aiohttp's and
wsproto's method), built on first use. With the ``dgproto[speedups]`` extra, the C
``apply_mask`` that websockets ships (wheels for every platform) does the XOR instead:
the same bytes, at about a third of the cost for 640 B frames; the pure-Python methods
stay as the fallback.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from importlib import import_module

__all__ = ["BinaryFrameWriter", "apply_mask"]

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
#: FIN + binary opcode.
_FIN_BINARY = 0x82
_MASK_BIT = 0x80
#: Masking keys fetched per call to the random source (4 bytes each).
_KEYS_PER_BATCH = 1024
#: Frame headers cached per writer (sizes seen; a paced stream uses one or two).
_HEADERS_KEPT = 64
#: Frames below this size are masked with the big-integer method, the rest by translate.
_TRANSLATE_FROM = 1024

#: size -> (0x01000000 repeated for each 4-byte word, mask of the low ``size`` bytes).
_REPUNITS: dict[int, tuple[int, int]] = {}
#: ``_XOR_TABLES[k]`` maps each byte b to b ^ k; built on first use, then shared.
_XOR_TABLES: tuple[bytes, ...] = ()


ApplyMask = Callable[[bytes, bytes], bytes]


def _native_apply_mask() -> ApplyMask | None:
    """websockets' C masking function, if the extension is installed and built."""
    try:
        apply_mask: ApplyMask = import_module("websockets.speedups").apply_mask
    except ImportError:
        return None
    return apply_mask


#: ``None`` without the speedups (a pure-Python websockets, or none at all).
NATIVE_APPLY_MASK = _native_apply_mask()


def _repunit(size: int) -> tuple[int, int]:
    words = (size + 3) >> 2
    entry = (int.from_bytes(b"\x01\x00\x00\x00" * words, "little"), (1 << (8 * size)) - 1)
    _REPUNITS[size] = entry
    return entry


def _mask_small(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    repunit, low = _REPUNITS.get(size) or _repunit(size)
    stream = (int.from_bytes(key, "little") * repunit) & low
    return (int.from_bytes(payload, "little") ^ stream).to_bytes(size, "little")


def _mask_large(payload: bytes, key: bytes) -> bytearray:
    tables = _XOR_TABLES or _build_xor_tables()
    out = bytearray(len(payload))
    for i in range(4):
        out[i::4] = payload[i::4].translate(tables[key[i]])
    return out


def _build_xor_tables() -> tuple[bytes, ...]:
    """Build the tables, then publish them in one assignment.

    Connections in different threads share them, so a half-built table must never be
    visible (it once was: an IndexError under 100 sending threads). Two threads racing
    here both build complete tables; either result is correct.
    """
    global _XOR_TABLES
    tables = tuple(bytes(a ^ b for a in range(256)) for b in range(256))
    _XOR_TABLES = tables
    return tables


def apply_mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``key``: masks, and so also unmasks."""
    if len(payload) < _TRANSLATE_FROM:
        return _mask_small(payload, key)
    return bytes(_mask_large(payload, key))


class BinaryFrameWriter:
    """Builds masked, final, binary WebSocket frames from audio payloads."""

    __slots__ = ("_apply_mask", "_headers", "_pool", "_pos", "_random_bytes")

    def __init__(
        self, random_bytes: Callable[[int], bytes] = os.urandom, *, native: bool = True
    ) -> None:
        """``native=False`` forces the pure-Python masking (tests compare the two)."""
        self._random_bytes = random_bytes
        self._apply_mask = NATIVE_APPLY_MASK if native else None
        self._pool = b""
        self._pos = 0
        #: size -> frame header: a stream's frames are nearly all one size
        self._headers: dict[int, bytes] = {}

    def frame(self, payload: bytes) -> bytes:
        """Return the complete frame for ``payload`` (which must not be empty)."""
        # once per audio frame: the header cached, the key taken inline
        size = len(payload)
        header = self._headers.get(size) or self._header(size)
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = self._random_bytes(4 * _KEYS_PER_BATCH)
            pos = 0
        self._pos = pos + 4
        key = self._pool[pos : pos + 4]
        apply_mask = self._apply_mask
        if apply_mask is not None:
            return b"".join((header, key, apply_mask(payload, key)))
        if size < _TRANSLATE_FROM:
            return b"".join((header, key, _mask_small(payload, key)))
        return b"".join((header, key, _mask_large(payload, key)))

    def _header(self, size: int) -> bytes:
        if size < 126:
            header = bytes((_FIN_BINARY, _MASK_BIT | size))
        elif size < 65536:
            header = _PACK_16(_FIN_BINARY, _MASK_BIT | 126, size)
        else:
            header = _PACK_64(_FIN_BINARY, _MASK_BIT | 127, size)
        if len(self._headers) < _HEADERS_KEPT:
            self._headers[size] = header
        return header
