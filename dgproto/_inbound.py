"""A dedicated parser for the server's WebSocket frames, once the handshake is done.

Inbound Results are the hot receive path, and wsproto's generic parser spends about 25
Python calls on every frame (buffer bookkeeping, named tuples, an incremental decoder).
A Deepgram server sends one whole, final, unmasked text frame per message, nearly
always in one read, so :meth:`InboundParser.feed` decodes that case straight from the
buffer with one ``bytes.decode``. Everything else (fragments, control frames, frames
split across reads, every protocol violation) takes a general path written to give
exactly wsproto 1.x's outcome: the same messages, the same close code and reason on an
error, detected at the same point of the stream (tests/test_inbound.py checks this by
differential fuzzing against wsproto's own parser).

Wiring (replacing wsproto's receive path after ``AcceptConnection``)::

    for kind, value in parser.feed(data):
        TEXT -> value is the message's ``str``;   BINARY -> its ``bytes``
        PING -> payload ``bytes`` (answer with a pong); PONG -> payload ``bytes``
        CLOSE -> ``(code, reason)`` of the peer's close frame: answer it, stop reading
        ERROR -> ``(code, reason)``: the peer broke the protocol (or a message exceeded
                 ``max_message_size``: code 1009); send a close frame with that code

After CLOSE or ERROR the parser ignores further input, as wsproto does. Messages are
delivered whole, never in pieces. Memory is bounded by design: payload is consumed as it
arrives (at most one control frame or one frame header is held back between reads), a
message in progress is checked against ``max_message_size`` after every piece as the
connection did with wsproto, and empty pieces (an empty-continuation-frame flood) are
not stored. Such a flood is cut short as the connection did with wsproto: a message
of more than ``FRAGMENT_ALLOWANCE`` frames plus one per payload byte ends with 1009
(``_fragments``; counted per frame here, per wsproto event there, so it is the one rule
whose trigger point may differ from the wsproto-based connection's).
Bytes that arrived together with the ``101`` response must be fed first: stop iterating
``ws.events()`` at ``AcceptConnection`` and take them with :func:`take_after_handshake`.
wsproto keeps the sending side (close frames, pongs, text): its state stays ``OPEN``
until we send a close, so answer the peer's CLOSE with ``ws.send(CloseConnection(...))``.
"""

from __future__ import annotations

from codecs import getincrementaldecoder
from typing import Any, NoReturn

from wsproto import WSConnection

from ._fragments import FRAGMENT_ALLOWANCE, too_fragmented

__all__ = [
    "BINARY",
    "CLOSE",
    "ERROR",
    "PING",
    "PONG",
    "TEXT",
    "InboundEvent",
    "InboundParser",
    "take_after_handshake",
]

#: Event kinds (the data ones equal their WebSocket opcodes).
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA
ERROR = -1

InboundEvent = tuple[int, Any]

_CONTINUATION = 0x0
_OPCODE_NAMES = {0x0: "CONTINUATION", 0x1: "TEXT", 0x2: "BINARY"}
_VALID_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))
#: Close codes with a name in RFC 6455 or wsproto's table; other codes below 3000 are
#: reserved, and the three local-only ones must never arrive in a close frame.
_KNOWN_CLOSE_CODES = frozenset((*range(1000, 1004), *range(1005, 1014), 1015))
_LOCAL_ONLY_CLOSE_CODES = frozenset((1005, 1006, 1015))
_UTF8 = getincrementaldecoder("utf-8")


def take_after_handshake(ws: WSConnection) -> bytes:
    """Remove and return the bytes wsproto holds, unparsed, past the ``101`` response.

    Call it as soon as ``ws.events()`` has yielded ``AcceptConnection``, before iterating
    further (wsproto parses frames lazily, in ``events()``). It reads wsproto 1.x's frame
    buffer, an internal: tests/test_inbound.py pins it.
    """
    assert ws.connection is not None, "the handshake is not complete"
    buffer = ws.connection._proto._frame_decoder.buffer
    data = bytes(buffer.buffer[buffer.bytes_used :])
    buffer.buffer = bytearray()
    buffer.bytes_used = 0
    return data


class _Stop(Exception):
    """The stream ended (ERROR or CLOSE emitted): stop parsing this feed."""


class InboundParser:
    """Turns the bytes a server sends after the handshake into whole messages and controls.

    ``max_message_size`` (``None``: no limit) bounds a message's size in characters
    (text) or bytes (binary), counted piece by piece as wsproto delivered them.
    """

    __slots__ = (
        "_decoder",
        "_done",
        "_fin",
        "_first",
        "_frames",
        "_held",
        "_max",
        "_message",
        "_parts",
        "_payload_bytes",
        "_remaining",
        "_size",
    )

    def __init__(self, max_message_size: int | None = None) -> None:
        self._max = max_message_size
        #: bytes held back between feeds: part of a frame header or of a control frame
        self._held = b""
        self._done = False
        # the data frame whose payload is being read (_remaining > 0 or _first)
        self._remaining = 0
        self._fin = False
        #: the opcode of the frame whose first payload piece is still to come, else None
        self._first: int | None = None
        # the message in progress: its opcode (0 = none), decoder, pieces and size
        self._message = 0
        self._decoder: Any = None
        self._parts: list[Any] = []
        self._size = 0
        # frames and their announced payload bytes in the message in progress
        self._frames = 0
        self._payload_bytes = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[InboundEvent]:
        """Parse ``data`` (the next bytes from the socket); return the events it completes."""
        out: list[InboundEvent] = []
        if self._done:
            return out
        if type(data) is not bytes:
            data = bytes(data)
        if self._held:
            data = self._held + data
            self._held = b""
        n = len(data)
        pos = 0
        try:
            if self._first is not None or self._remaining:
                pos = self._payload(data, 0, out)
            while n - pos >= 2:
                b0 = data[pos]
                if (b0 == 0x81 or b0 == 0x82) and not self._message:
                    # The common case: a whole final text/binary frame, no fragments.
                    length = data[pos + 1]
                    start = pos + 2
                    if length > 125:
                        if length != 126 or n - pos < 4:
                            pos = self._frame(data, pos, out)
                            continue
                        length = data[pos + 2] << 8 | data[pos + 3]
                        start = pos + 4
                    end = start + length
                    if end > n or (length < 126 and start != pos + 2):
                        pos = self._frame(data, pos, out)
                        continue
                    message: str | bytes
                    if b0 == 0x81:
                        try:
                            message = data[start:end].decode()
                        except UnicodeDecodeError as exc:
                            self._fail(str(exc), out, code=1007)
                    else:
                        message = data[start:end]
                    if self._max is not None and len(message) > self._max:
                        self._too_big(len(message), out)
                    out.append((b0 & 0x0F, message))
                    pos = end
                else:
                    pos = self._frame(data, pos, out)
        except _Stop:
            return out
        if pos < n:
            self._held = data[pos:]
        return out

    # ------------------------------------------------------------------ general path

    def _frame(self, data: bytes, pos: int, out: list[InboundEvent]) -> int:
        """Parse the frame at ``pos``: return where parsing continues.

        Returns ``len(data)`` with ``data[pos:]`` held back when the header (or a control
        frame) is incomplete. The checks run in wsproto's order, so the first violation
        reported is the one wsproto reports.
        """
        n = len(data)
        b0 = data[pos]
        b1 = data[pos + 1]
        opcode = b0 & 0x0F
        if opcode not in _VALID_OPCODES:
            self._fail(f"Invalid opcode {opcode:#x}", out)
        fin = bool(b0 & 0x80)
        control = bool(opcode & 0x08)
        if control and not fin:
            self._fail("Invalid attempt to fragment control frame", out)
        length = b1 & 0x7F
        start = pos + 2
        if control and length > 125:
            self._fail("Control frame with payload len > 125", out)
        if length > 125:  # a 2-byte (126) or 8-byte (127) extended length follows
            size, floor, used = (
                (2, 125, "2 bytes when 1") if length == 126 else (8, 0xFFFF, "8 bytes when 2")
            )
            start = pos + 2 + size
            if start > n:
                return self._hold(data, pos)
            length = int.from_bytes(data[pos + 2 : start], "big")
            if length <= floor:
                self._fail(f"Payload length used {used} would have sufficed", out)
            if length >> 63:
                self._fail("8-byte payload length with non-zero MSB", out)
        if b0 & 0x70:
            self._fail("Reserved bit set unexpectedly", out)
        if b1 & 0x80:
            self._fail("client received unexpected masked frame", out)
        if control:
            end = start + length
            if end > n:
                return self._hold(data, pos)
            self._control(opcode, data[start:end], out)
            return end
        self._first = opcode
        self._fin = fin
        self._remaining = length
        self._frames += 1
        self._payload_bytes += length
        if too_fragmented(self._frames, self._payload_bytes):
            self._fail(
                f"message split into {self._frames} frames, more than "
                f"{FRAGMENT_ALLOWANCE} plus one per payload byte",
                out,
                code=1009,
            )
        return self._payload(data, start, out)

    def _hold(self, data: bytes, pos: int) -> int:
        self._held = data[pos:]
        return len(data)

    def _payload(self, data: bytes, pos: int, out: list[InboundEvent]) -> int:
        """Take what is there of the current data frame's payload (wsproto's piecing)."""
        take = min(self._remaining, len(data) - pos)
        if not take and self._remaining:
            return pos
        end = pos + take
        piece: Any = data[pos:end]
        self._remaining -= take
        opcode = self._first
        if opcode is not None:
            self._first = None
            if not self._message:
                if opcode == _CONTINUATION:
                    self._fail("unexpected CONTINUATION", out)
                self._message = opcode
            elif opcode != _CONTINUATION:
                name = _OPCODE_NAMES[opcode]
                self._fail(f"expected CONTINUATION, got <Opcode.{name}: {opcode}>", out)
            if opcode == TEXT:
                self._decoder = _UTF8()
        finished = self._fin and not self._remaining
        if self._decoder is not None:
            try:
                piece = self._decoder.decode(piece, finished)
            except UnicodeDecodeError as exc:
                self._fail(str(exc), out, code=1007)
        if piece:
            self._size += len(piece)
            if self._max is not None and self._size > self._max:
                self._too_big(self._size, out)
            self._parts.append(piece)
        if finished:
            kind = self._message
            parts = self._parts
            if kind == TEXT:
                message: Any = parts[0] if len(parts) == 1 else "".join(parts)
            else:
                message = parts[0] if len(parts) == 1 else b"".join(parts)
            out.append((kind, message))
            self._message = 0
            self._decoder = None
            self._parts = []
            self._size = self._frames = self._payload_bytes = 0
        return end

    def _control(self, opcode: int, payload: bytes, out: list[InboundEvent]) -> None:
        if opcode != CLOSE:
            out.append((opcode, payload))
            return
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            self._fail("CLOSE with 1 byte payload", out)
        else:
            code = payload[0] << 8 | payload[1]
            if code < 1000 or code > 4999:
                self._fail("CLOSE with invalid code", out)
            if code in _LOCAL_ONLY_CLOSE_CODES:
                self._fail("remote CLOSE with local-only reason", out)
            if code < 3000 and code not in _KNOWN_CLOSE_CODES:
                self._fail("CLOSE with unknown reserved code", out)
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError as exc:
                self._fail(f"Error decoding CLOSE reason: {exc}", out, code=1007)
        out.append((CLOSE, (code, reason)))
        self._stop()

    def _too_big(self, size: int, out: list[InboundEvent]) -> NoReturn:
        self._fail(
            f"message of at least {size} characters exceeds max_message_size={self._max}",
            out,
            code=1009,
        )

    def _fail(self, reason: str, out: list[InboundEvent], *, code: int = 1002) -> NoReturn:
        out.append((ERROR, (code, reason)))
        self._stop()

    def _stop(self) -> NoReturn:
        self._done = True
        self._held = b""
        self._parts = []
        raise _Stop
