"""The audio frame writer produces exactly what RFC 6455 (and wsproto's parser) expects."""

from __future__ import annotations

import os
import sys
import threading
import types
from itertools import cycle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode

from dgproto import _framing
from dgproto._framing import _KEYS_PER_BATCH, NATIVE_APPLY_MASK, BinaryFrameWriter

NATIVE = NATIVE_APPLY_MASK


def _parse_as_server(data: bytes) -> list[tuple[Opcode, bytes, bool]]:
    """Parse frames with wsproto's server-side decoder (it unmasks and checks the mask bit)."""
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(data)
    frames: list[tuple[Opcode, bytes, bool]] = []
    for frame in server.received_frames():
        frames.append((frame.opcode, bytes(frame.payload), frame.message_finished))
    return frames


def _reference_frame(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 section 5.2, written out plainly."""
    size = len(payload)
    if size < 126:
        header = bytes((0x82, 0x80 | size))
    elif size < 65536:
        header = bytes((0x82, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x82, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + key + bytes(b ^ k for b, k in zip(payload, cycle(key)))


# one size in each length class and around each boundary (7-bit, 16-bit, 64-bit lengths)
SIZES = [1, 2, 3, 4, 5, 125, 126, 127, 640, 1023, 1024, 1025, 3200, 65535, 65536, 70001]


#: both masking paths: websockets' C apply_mask (when installed) and the pure fallback
PATHS = [
    pytest.param(True, id="native", marks=pytest.mark.skipif(NATIVE is None, reason="no C mask")),
    pytest.param(False, id="pure"),
]


@pytest.mark.parametrize("native", PATHS)
@pytest.mark.parametrize("size", SIZES)
def test_frames_match_the_rfc_and_wsproto_parses_them(size: int, native: bool) -> None:
    payload = os.urandom(size)
    keys = iter([b"\x01\x02\x03\x04" * _KEYS_PER_BATCH])
    writer = BinaryFrameWriter(random_bytes=lambda n: next(keys), native=native)
    frame = writer.frame(payload)
    assert frame == _reference_frame(payload, b"\x01\x02\x03\x04")
    assert _parse_as_server(frame) == [(Opcode.BINARY, payload, True)]


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=2000), key=st.binary(min_size=4, max_size=4))
def test_any_payload_and_key_round_trip(payload: bytes, key: bytes) -> None:
    writer = BinaryFrameWriter(random_bytes=lambda n: key * (n // 4), native=False)
    frame = writer.frame(payload)
    assert frame == _reference_frame(payload, key)
    if NATIVE is not None:  # the C mask gives the very same bytes
        native = BinaryFrameWriter(random_bytes=lambda n: key * (n // 4), native=True)
        assert native.frame(payload) == frame
    assert _parse_as_server(frame) == [(Opcode.BINARY, payload, True)]


def test_one_writer_frames_many_sizes_with_a_bounded_header_cache() -> None:
    # one writer, every size twice: cached headers must be the right ones, and a stream
    # of ever-new sizes must not grow the cache past _HEADERS_KEPT
    key = b"\x05\x06\x07\x08"
    writer = BinaryFrameWriter(random_bytes=lambda n: key * (n // 4), native=False)
    sizes = [*range(1, 200), 65535, 65536, 70000]
    for size in sizes + sizes:
        payload = os.urandom(size)
        assert writer.frame(payload) == _reference_frame(payload, key)
    assert len(writer._headers) == _framing._HEADERS_KEPT


def test_keys_come_from_the_strong_source_in_batches() -> None:
    calls: list[int] = []

    def source(n: int) -> bytes:
        calls.append(n)
        return os.urandom(n)

    writer = BinaryFrameWriter(random_bytes=source)
    frames = [writer.frame(b"abcd") for _ in range(_KEYS_PER_BATCH + 1)]
    assert calls == [4 * _KEYS_PER_BATCH, 4 * _KEYS_PER_BATCH]
    keys = {f[2:6] for f in frames}
    assert len(keys) > _KEYS_PER_BATCH // 2  # fresh keys, not one reused key


def test_default_source_is_os_urandom() -> None:
    writer = BinaryFrameWriter()
    first, second = writer.frame(b"x" * 10), writer.frame(b"x" * 10)
    assert first[:2] == second[:2] == b"\x82\x8a"
    assert first[2:6] != second[2:6]  # a fresh key per frame (equal with p = 2**-32)


def test_shared_tables_are_never_seen_half_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers in many threads (the sync adapter) race to build the shared XOR tables."""
    monkeypatch.setattr(_framing, "_XOR_TABLES", ())
    payload = os.urandom(3200)  # large enough for the table method
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        writer = BinaryFrameWriter(native=False)
        start.wait()
        try:
            for _ in range(50):
                frame = writer.frame(payload)
                assert _parse_as_server(frame) == [(Opcode.BINARY, payload, True)]
        except BaseException as exc:  # collected for the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: expose any race
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(_framing._XOR_TABLES) == 256


def test_the_c_mask_is_websockets_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speedups extra is optional: without websockets' extension, the pure path."""
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        apply_mask = None
    assert _framing._native_apply_mask() is apply_mask is NATIVE
    monkeypatch.setitem(sys.modules, "websockets.speedups", None)  # import now fails
    assert _framing._native_apply_mask() is None


def test_the_native_hook_is_used_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever ``apply_mask`` is found is what frames get (a Python stand-in here, so this
    runs with and without the speedups installed)."""
    fake = types.ModuleType("websockets.speedups")

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        return bytes(b ^ k for b, k in zip(data, cycle(mask)))

    fake.apply_mask = apply_mask  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "websockets.speedups", fake)
    assert _framing._native_apply_mask() is apply_mask
    monkeypatch.setattr(_framing, "NATIVE_APPLY_MASK", apply_mask)
    key = b"\x05\x06\x07\x08"
    writer = BinaryFrameWriter(random_bytes=lambda n: key * (n // 4))
    assert writer.frame(b"hello") == _reference_frame(b"hello", key)
