"""``WireTap``: records a session from the raw bytes an adapter already moves.

An adapter hands it what ``data_to_send()`` returned (``sent``) and what it passed to
``receive_data()`` (``received``); the tap parses the HTTP upgrade and the WebSocket
frames of each direction itself, so recording needs no hook inside the core and works
the same for every adapter (and for any client, not only ``ListenConnection``). The audio
clock is computed from the request's own ``encoding``/``sample_rate``/``channels`` and
the binary payload bytes sent, so it equals the core's ``audio_seconds_sent``.

Lines go to ``write`` as they are made; the tap never raises on odd bytes (a recorder
must not break the session it records): what it cannot parse, it stops recording.

With ``sidecar=`` (a file name; format version 3), the client's audio frames and every
server read after the 101 go to the sidecar as blocks instead of lines: nothing is
unmasked, parsed or formatted. A frame ``sent`` sees alone becomes a block of one in
``audio_buffer``; ``sent_batch`` takes, in batches, the writes an adapter logged unparsed
(those that repeat the last audio frame's size and header) as one block whose frames are
kept as they are, not copied; a read is three appends (``hold_read``, or the owner's
``hold_reads``) and the held reads
become one block when anything else is recorded or the owner takes the parts
(``take_audio_parts``: the pieces of one gathering write). ``flush_audio`` is called past
``AUDIO_FLUSH`` bytes of single frames or ``READ_FLUSH`` bytes of held reads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter

from ._audio import bytes_per_second
from ._framing import apply_mask
from ._options import LiveOptions
from ._recording import (
    AUDIO_TAG,
    BLOCK,
    READS_TAG,
    SIDECAR_T,
    Direction,
    Kind,
    Recorder,
    _Frames,
)

__all__ = ["AUDIO_FLUSH", "READ_FLUSH", "Write", "WireTap"]

#: One client write as the adapter's trace logs it: ``(now, the bytes written)``.
Write = tuple[float, bytes]

#: ``audio_buffer`` bytes after which the tap calls ``flush_audio`` (and the batch a
#: recorder holds): 64 KiB, about 2 s of 16 kHz linear16. Pending audio is what a killed
#: process loses and what every recorded stream holds in memory; a larger batch saved no
#: CPU that could be measured (the writes' cost is per byte), see benchmarks/README.md.
AUDIO_FLUSH = 64 * 1024
#: Bytes of held server reads after which the tap calls ``flush_audio``.
READ_FLUSH = 64 * 1024
_pack_t = SIDECAR_T.pack
_pack_block = BLOCK.pack
_times = itemgetter(0)
_datas = itemgetter(1)


def _doubles(values: Iterable[float], count: int) -> bytes:
    """``count`` little-endian doubles (one ``struct.pack``: half an ``array``'s cost)."""
    return struct.pack(f"<{count}d", *values)


def _uint32s(values: Iterable[int], count: int) -> bytes:
    """``count`` little-endian uint32s."""
    return struct.pack(f"<{count}I", *values)


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """``(first line, headers)`` of an HTTP head (without its blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _nothing() -> None:
    """``flush_audio`` when the owner takes the audio only at the end."""


def _unmasked_frame(payload: bytes) -> bytes:
    """A whole binary frame carrying ``payload``, unmasked (for the sidecar)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x82, size))
    elif size < 1 << 16:
        head = b"\x82\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x82\x7f" + size.to_bytes(8, "big")
    return head + payload


class WireTap:
    """Feed it both directions of one client session; it ``write``s recording lines."""

    def __init__(
        self,
        write: Callable[[str], object],
        *,
        secrets: Sequence[str] = (),
        sidecar: str | None = None,
        sidecar_offset: int = 0,
        flush_audio: Callable[[], object] | None = None,
    ) -> None:
        self._write = write
        self._recorder = Recorder(secrets=secrets)
        #: single-frame blocks not yet taken (``take_audio``); ``None``: everything inline
        self.audio_buffer: bytearray | None = None if sidecar is None else bytearray()
        self._sidecar = sidecar
        self._sidecar_base = sidecar_offset
        #: sidecar bytes taken so far, counted from the sidecar file's start
        self._sidecar_taken = sidecar_offset
        #: sidecar pieces not yet taken (after ``audio_buffer``'s, before held reads)
        self._parts: list[bytes] = []
        self._parts_size = 0
        #: the first 4 bytes and the size of the last single audio frame ``sent`` saw
        #: (a 126 B to 64 KiB payload): writes just like it may go to ``sent_batch``
        self.fast_head: bytes | None = None
        self.fast_size = 0
        self._fast_payload = 0
        #: audio frames recorded so far (what a held read's position counts)
        self.audio_frames = 0
        #: True once the server's reads go to the sidecar raw (``hold_read``)
        self.raw_reads = False
        #: held server reads: their clocks, positions (audio frames before) and bytes
        self.read_times: list[float] = []
        self.read_positions: list[int] = []
        self.read_data: list[bytes] = []
        #: bytes ``received`` held since the last ``take_audio_parts``
        self._read_bytes = 0
        self._flush_audio: Callable[[], object] = flush_audio or _nothing
        self._t0 = 0.0
        self._out_head = bytearray()
        self._in_head = bytearray()
        self._out_frames: _Frames | None = None
        self._in_frames: _Frames | None = None
        self._rejection: tuple[int, list[tuple[str, str]], int | None] | None = None
        self._body = bytearray()
        self._bps: int | None = None
        self._audio_bytes = 0
        self._done = False

    @property
    def _sidecar_pos(self) -> int | None:
        """The sidecar's size once everything taken is written (``None``: no sidecar);
        call ``_seal_reads`` first."""
        buffer = self.audio_buffer
        if buffer is None:
            return None
        return self._sidecar_taken + self._parts_size + len(buffer)

    def _move_buffer(self) -> None:
        """``audio_buffer``'s bytes to the end of the parts (keeps the sidecar's order)."""
        buffer = self.audio_buffer
        if buffer:
            self._parts.append(bytes(buffer))
            self._parts_size += len(buffer)
            buffer.clear()

    def hold_read(self, now: float, position: int, data: bytes) -> None:
        """Keep a server read for the sidecar: ``position`` audio frames came before it
        (``audio_frames`` plus any the owner holds unrecorded), ``data`` is not copied."""
        self.read_times.append(now)
        self.read_positions.append(position)
        self.read_data.append(data)

    def hold_reads(
        self, times: Iterable[float], positions: Iterable[int], data: Iterable[bytes]
    ) -> None:
        """``hold_read`` for many reads at once (three iterables of the same length)."""
        self.read_times.extend(times)
        self.read_positions.extend(positions)
        self.read_data.extend(data)

    def _seal_reads(self) -> None:
        """The held reads to the parts as one reads block."""
        data = self.read_data
        if not data:
            return
        self._move_buffer()
        lengths = list(map(len, data))
        size = sum(lengths)
        count = len(data)
        self._parts += (
            _pack_block(READS_TAG, count, size, self._t0),
            _doubles(self.read_times, count),
            _uint32s(self.read_positions, count),
            _uint32s(lengths, count),
        )
        self._parts += data
        self._parts_size += BLOCK.size + 16 * count + size
        self.read_times, self.read_positions, self.read_data = [], [], []

    def take_audio_parts(self) -> list[bytes]:
        """The sidecar's blocks so far, in order, as pieces to write out with one
        gathering write (``os.writev``): the frames and reads are kept as they came
        rather than copied."""
        self._seal_reads()
        self._move_buffer()
        self._read_bytes = 0
        parts = self._parts
        self._parts = []
        self._sidecar_taken += self._parts_size
        self._parts_size = 0
        return parts

    def take_audio(self) -> bytes:
        """The sidecar's blocks so far, for the owner to append to the file."""
        return b"".join(self.take_audio_parts())

    @property
    def batching(self) -> bool:
        """Whether ``sent_batch`` may take the client's writes from now on: the request
        is recorded, audio goes to a sidecar and no partial frame is pending."""
        frames = self._out_frames
        return (
            frames is not None
            and not frames.buffer
            and self.audio_buffer is not None
            and not self._done
        )

    def sent_batch(self, writes: Sequence[Write]) -> None:
        """What ``sent`` does for each of ``writes``, in order, at a fraction of the cost.

        Every write must be exactly ``fast_size`` bytes starting with ``fast_head``: one
        whole audio frame of the size the tap last saw (the adapter's trace checks this
        on its hot path and logs only those writes here, unparsed). They become one
        audio block: the stamps packed at once, then the frames as they are.
        """
        head = self.fast_head
        if not writes or self._done or self.audio_buffer is None or head is None:
            return
        self._move_buffer()
        count = len(writes)
        self._parts += (
            _pack_block(AUDIO_TAG, count, self.fast_size, self._t0),
            _doubles(map(_times, writes), count),
        )
        self._parts += map(_datas, writes)
        self._parts_size += BLOCK.size + (8 + self.fast_size) * count
        self._audio_bytes += self._fast_payload * count
        self.audio_frames += count
        if self._parts_size > AUDIO_FLUSH:  # batches cut short by other writes add up
            self._flush_audio()

    @property
    def audio_seconds(self) -> float | None:
        """The client's audio clock as the tap counts it (``None``: no fixed byte rate)."""
        return None if self._bps is None else self._audio_bytes / self._bps

    def _audio_block(self, buffer: bytearray, frame: bytes | bytearray, now: float) -> None:
        """One frame the client sent, as a block of one."""
        buffer += _pack_block(AUDIO_TAG, 1, len(frame), self._t0)
        buffer += _pack_t(now)
        buffer += frame
        self.audio_frames += 1
        if len(buffer) > AUDIO_FLUSH:
            self._flush_audio()

    def sent(self, data: bytes | bytearray, now: float) -> None:
        """Bytes the client wrote (``data_to_send()``), in order."""
        frames = self._out_frames
        if frames is not None and data[:1] == b"\x82" and not frames.buffer and not self._done:
            # The hot path: exactly one whole audio frame, as send_audio() makes it.
            second = data[1] if len(data) > 1 else 0
            length, head = second & 0x7F, 6
            if length == 126:
                length, head = int.from_bytes(data[2:4], "big"), 8
            if second & 0x80 and second != 0xFF and head + length == len(data) and length:
                self._audio_bytes += length
                buffer = self.audio_buffer
                if buffer is None:
                    payload = apply_mask(bytes(data[head:]), bytes(data[head - 4 : head]))
                    self._write(self._recorder.audio(payload, now, self.audio_seconds))
                    return
                if head == 8:
                    self.fast_head, self.fast_size = bytes(data[:4]), len(data)
                    self._fast_payload = length
                self._audio_block(buffer, data, now)
                return
        if self._done or not data:
            return
        if frames is None:
            self._out_head += data
            end = self._out_head.find(b"\r\n\r\n")
            if end < 0:
                return
            rest = bytes(self._out_head[end + 4 :])
            self._on_request(bytes(self._out_head[:end]), now)
            self._out_frames = frames = _Frames()
            data = rest
        self._frames("send", frames.feed(data), now)

    def received(self, data: bytes | bytearray, now: float) -> None:
        """Bytes the client read (what it passed to ``receive_data()``), in order."""
        if self.raw_reads:
            self.hold_read(now, self.audio_frames, bytes(data))
            self._read_bytes += len(data)
            if self._read_bytes >= READ_FLUSH:
                self._flush_audio()
            return
        frames = self._in_frames
        if frames is not None and not frames.buffer and data[:1] == b"\x81":
            # The hot path without a sidecar: one whole, unfragmented text message.
            second = data[1] if len(data) > 1 else 127
            length, head = second, 2
            if second == 126:
                length, head = int.from_bytes(data[2:4], "big"), 4
            if second < 127 and head + length == len(data):
                self._write(self._recorder.text("recv", data[head:], now, self.audio_seconds))
                return
        if self._done or not data or self._out_frames is None:
            return
        if self._rejection is not None:
            self._body += data
            self._maybe_rejection_done(now)
            return
        if self._in_frames is None:
            self._in_head += data
            end = self._in_head.find(b"\r\n\r\n")
            if end < 0:
                return
            rest = bytes(self._in_head[end + 4 :])
            if not self._on_response(bytes(self._in_head[:end]), rest, now):
                return
            if self.audio_buffer is not None:  # from now on, the reads go to the sidecar
                self.raw_reads = True
                if rest:
                    self.hold_read(now, self.audio_frames, rest)
                return
            self._in_frames = _Frames()
            data = rest
        self._frames("recv", self._in_frames.feed(data), now)

    def eof(self, now: float) -> None:
        """The connection ended: a rejection body without a length is complete now."""
        if self._rejection is not None:
            self._finish_rejection(now)

    # ------------------------------------------------------------------ internals

    def _on_request(self, head: bytes, now: float) -> None:
        first, headers = _parse_head(head)
        method, _, rest = first.partition(" ")
        target = rest.rpartition(" ")[0] or rest
        query = target.partition("?")[2]
        try:
            options = LiveOptions.from_query(query)
        except ValueError:
            options = LiveOptions()
        self._bps = bytes_per_second(options.encoding, options.sample_rate, options.channels or 1)
        self._t0 = now
        self._write(self._recorder.header(self._sidecar, self._sidecar_base))
        self._write(self._recorder.request(method=method, target=target, headers=headers, now=now))

    def _on_response(self, head: bytes, rest: bytes, now: float) -> bool:
        """Record a 101 now (True: frames follow); hold a rejection until its body ends."""
        first, headers = _parse_head(head)
        fields = first.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status == 101:
            self._write(self._recorder.response(status=101, headers=headers, body=b"", now=now))
            return True
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        expected = int(length) if length is not None and length.isdigit() else None
        self._rejection = (status, headers, expected)
        self._body += rest
        self._maybe_rejection_done(now)
        return False

    def _maybe_rejection_done(self, now: float) -> None:
        assert self._rejection is not None
        expected = self._rejection[2]
        if expected is not None and len(self._body) >= expected:
            self._finish_rejection(now)

    def _finish_rejection(self, now: float) -> None:
        assert self._rejection is not None
        status, headers, expected = self._rejection
        body = bytes(self._body if expected is None else self._body[:expected])
        self._write(self._recorder.response(status=status, headers=headers, body=body, now=now))
        self._rejection = None
        self._done = True

    def _frames(
        self, direction: Direction, frames: list[tuple[Kind, bytes, int]], now: float
    ) -> None:
        frame = self._recorder.frame
        for kind, payload, audio in frames:
            if direction == "send" and audio:
                self._audio_bytes += audio
            if kind == "binary" and not payload and audio:
                continue  # a fragment of a longer message: recorded when it completes
            buffer = self.audio_buffer
            if direction == "send" and kind == "binary" and buffer is not None:
                self._audio_block(buffer, _unmasked_frame(payload), now)
                continue
            self._seal_reads()  # the reads before this line go before its sidecar place
            self._write(
                frame(
                    direction,
                    kind,
                    payload,
                    now=now,
                    audio_seconds=self.audio_seconds,
                    sidecar=self._sidecar_pos,
                )
            )
