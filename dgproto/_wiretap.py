"""``WireTap``: records a session from the raw bytes an adapter already moves.

An adapter hands it what ``data_to_send()`` returned (``sent``) and what it passed to
``receive_data()`` (``received``); the tap parses the HTTP upgrade and the WebSocket
frames of each direction itself, so recording needs no hook inside the core and works
the same for every adapter (and for any client, not only ``ListenConnection``). The audio
clock is computed from the request's own ``encoding``/``sample_rate``/``channels`` and
the binary payload bytes sent, so it equals the core's ``audio_seconds_sent``.

Lines go to ``write`` as they are made; the tap never raises on odd bytes (a recorder
must not break the session it records): what it cannot parse, it stops recording.

With ``sidecar=`` (a file name), each whole audio frame the client sends is appended to
``audio_buffer`` untouched (its ``t`` as a double, then the masked frame, the format's
sidecar record) instead of being unmasked and base64-encoded into a line: per frame that
is two ``bytearray`` appends. The owner empties the buffer into the sidecar file
(``flush_audio`` is called past ``AUDIO_FLUSH`` bytes). Cheaper still, ``sent_batch``:
an adapter that logs its writes unparsed hands over, in batches, those that repeat the
last audio frame's size and header; they are kept as they are, not copied
(``take_audio_parts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import itemgetter, sub

from ._audio import bytes_per_second
from ._framing import apply_mask
from ._options import LiveOptions
from ._recording import SIDECAR_T, Direction, Kind, Recorder

__all__ = ["AUDIO_FLUSH", "Write", "WireTap"]

#: One client write as the adapter's trace logs it: ``(now, the bytes written)``.
Write = tuple[float, bytes]

#: ``audio_buffer`` bytes after which the tap calls ``flush_audio``.
AUDIO_FLUSH = 256 * 1024
_pack_t = SIDECAR_T.pack
_times = itemgetter(0)
_datas = itemgetter(1)

_KIND_OF_OPCODE: dict[int, Kind] = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


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


class _Frames:
    """Incremental WebSocket frame parser for one direction (messages reassembled)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._opcode = 0
        self._parts: list[bytes] = []

    def feed(self, data: bytes | bytearray) -> list[tuple[Kind, bytes, int]]:
        """Complete messages/control frames as ``(kind, payload, fragment bytes)``.

        The third item counts a binary message's payload bytes that arrived in this call,
        fragments included, so the audio clock moves with each fragment."""
        buf: bytes | bytearray
        if self.buffer:
            self.buffer += data
            buf = self.buffer
        else:
            buf = data  # the usual case, whole frames per write: no copy into a buffer
        out: list[tuple[Kind, bytes, int]] = []
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                head, length = 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
            elif length == 127:
                head, length = 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
            masked = second & 0x80
            start = pos + head + (4 if masked else 0)
            end = start + length
            if end > size:
                break
            payload = bytes(buf[start:end])
            if masked and length:
                payload = apply_mask(payload, bytes(buf[start - 4 : start]))
            pos = end
            opcode = first & 0x0F
            fin = first & 0x80
            if opcode >= 8:
                out.append((_KIND_OF_OPCODE.get(opcode, "binary"), payload, 0))
                continue
            if opcode:
                self._opcode = opcode
            audio = length if self._opcode == 2 else 0
            if fin and not self._parts:
                out.append((_KIND_OF_OPCODE.get(self._opcode, "binary"), payload, audio))
                continue
            self._parts.append(payload)
            if fin:
                whole = b"".join(self._parts)
                self._parts.clear()
                out.append((_KIND_OF_OPCODE.get(self._opcode, "binary"), whole, audio))
            elif audio:
                out.append(("binary", b"", audio))  # a fragment: only the clock moves
        self.buffer = bytearray(buf[pos:]) if pos < size else bytearray()
        return out


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
        #: sidecar records not yet taken (``take_audio``); ``None``: audio goes inline
        self.audio_buffer: bytearray | None = None if sidecar is None else bytearray()
        self._sidecar = sidecar
        self._sidecar_base = sidecar_offset
        #: sidecar bytes taken so far, counted from the sidecar file's start
        self._sidecar_taken = sidecar_offset
        #: sidecar records from ``sent_batch`` not yet taken (after ``audio_buffer``'s)
        self._parts: list[bytes] = []
        self._parts_size = 0
        #: the first 4 bytes and the size of the last single audio frame ``sent`` saw
        #: (a 126 B to 64 KiB payload): writes just like it may go to ``sent_batch``
        self.fast_head: bytes | None = None
        self.fast_size = 0
        self._fast_payload = 0
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
        """The sidecar's size once everything buffered is written (``None``: no sidecar)."""
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

    def take_audio_parts(self) -> list[bytes]:
        """The sidecar records buffered so far, in order, as pieces to write out with one
        gathering write (``os.writev``): ``sent_batch`` keeps the frames it was given
        rather than copy them."""
        self._move_buffer()
        parts = self._parts
        self._parts = []
        self._sidecar_taken += self._parts_size
        self._parts_size = 0
        return parts

    def take_audio(self) -> bytes:
        """The sidecar records buffered so far, for the owner to append to the file."""
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
        on its hot path and logs only those writes here, unparsed). The frames are kept
        as they are (``take_audio_parts``), behind their ``t``.
        """
        buffer, head = self.audio_buffer, self.fast_head
        if not writes or self._done or buffer is None or head is None:
            return
        self._move_buffer()
        count = len(writes)
        stamps = map(_pack_t, map(sub, map(_times, writes), repeat(self._t0)))
        self._parts += chain.from_iterable(zip(stamps, map(_datas, writes), strict=True))
        self._parts_size += (SIDECAR_T.size + self.fast_size) * count
        self._audio_bytes += self._fast_payload * count

    @property
    def audio_seconds(self) -> float | None:
        """The client's audio clock as the tap counts it (``None``: no fixed byte rate)."""
        return None if self._bps is None else self._audio_bytes / self._bps

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
                buffer += _pack_t(now - self._t0)
                buffer += data
                if head == 8:
                    self.fast_head, self.fast_size = bytes(data[:4]), len(data)
                    self._fast_payload = length
                if len(buffer) > AUDIO_FLUSH:
                    self._flush_audio()
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
        frames = self._in_frames
        if frames is not None and not frames.buffer and data[:1] == b"\x81":
            # The hot path: one whole, unfragmented text message in this read.
            second = data[1] if len(data) > 1 else 127
            length, head = second, 2
            if second == 126:
                length, head = int.from_bytes(data[2:4], "big"), 4
            if second < 127 and head + length == len(data):
                self._write(
                    self._recorder.text(
                        "recv", data[head:], now, self.audio_seconds, self._sidecar_pos
                    )
                )
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
            self._in_frames = _Frames()
            data = rest
        self._frames("recv", self._in_frames.feed(data), now)

    def received_parts(self, reads: Sequence[Write], out: list[bytes]) -> None:
        """``received`` for each of ``reads`` ``(now, bytes)``, in order, with nothing
        sent between them, its lines appended to ``out`` as UTF-8 pieces instead of
        written (for one gathering write). The audio clock and the sidecar place are the
        same for all, so a whole ASCII JSON message (the usual read) costs one ``%`` and
        is not copied: its line is the stamp, the frame's payload as it is, ``}``."""
        write = self._write
        self._write = lambda line: out.append(line.encode("utf-8"))
        try:
            fmt: bytes | None = None
            start = 0.0
            for now, data in reads:
                frames = self._in_frames
                if frames is not None and not frames.buffer and data[:1] == b"\x81":
                    second = data[1] if len(data) > 1 else 127
                    length, head = second, 2
                    if second == 126 and len(data) > 3:
                        length, head = (data[2] << 8) | data[3], 4
                    if second < 127 and head + length == len(data):
                        payload = data[head:]
                        if (
                            payload[-1:] == b"}"
                            and payload[:1] == b"{"
                            and payload.isascii()
                            and 10 not in payload  # "\n" (an int: a memchr, 8x faster)
                            and 13 not in payload  # "\r"
                        ):  # what Recorder.text splices, bytes for bytes
                            if fmt is None:
                                text, start = self._recorder.spliced_head(
                                    "recv", self.audio_seconds, self._sidecar_pos
                                )
                                fmt = text.encode("ascii")  # bytes %: half of str % + encode
                            out.append(fmt % (now - start))
                            out.append(payload)
                            out.append(b"}\n")
                            continue
                self.received(data, now)
        finally:
            self._write = write

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
                buffer += _pack_t(now - self._t0)
                buffer += _unmasked_frame(payload)
                continue
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
