"""Session recordings: a versioned JSON Lines format, its encoder and its reader.

A recording lets a session that misbehaved against the real Deepgram be replayed by the
emulator as a test, so it holds exactly what crossed the wire, minus every credential.
One JSON object per line (UTF-8):

1. ``{"format": "dgproto-recording", "version": 3, "sidecar": NAME | null}``: refuse what
   you cannot read. ``sidecar`` names the binary file next to this one (below); a
   later socket's header also has ``"offset"``, where its blocks start in the sidecar.
2. ``{"type": "request", "t", "method", "path", "query": [[k, v], ...], "headers":
   [[name, value], ...]}``: credentials replaced by ``<redacted>`` (see ``redact_*``).
3. ``{"type": "response", "t", "status", "headers", "body"}``: ``body`` is the base64
   rejection body (``""`` for a 101).
4. ``{"type": "frame", "t", "audio", "dir", "kind", ...}``, one per WebSocket message or
   control frame, in wire order. ``dir`` is ``"send"`` (client to server) or ``"recv"``;
   ``kind`` is ``text`` (with ``"text"``), ``binary``, ``ping`` or ``pong`` (with base64
   ``"data"``) or ``close`` (with ``"code"``, ``"reason"``). With a sidecar, every frame
   line also has ``"sidecar": N``, the sidecar bytes written before it (below). A text
   message that looks like one line of JSON (``{...}``, no CR/LF) is spliced in raw as the
   *last* field, ``"json": {...}``, instead of an escaped ``"text"`` string (escaping
   cost more than everything else the recorder does per message): the reader takes
   everything after ``,"kind":"text","json":`` up to the closing brace as the text,
   so a server message that was not valid JSON still loads (that line is then not
   valid JSON itself).

``t`` is seconds since the request was written; ``audio`` is the client's audio clock
(``audio_seconds_sent``, after a sent frame's own audio) or ``null`` when the encoding has
no fixed byte rate.

**The sidecar** (version 3): what is bulky or frequent goes to a binary file next to the
lines, as blocks written as they are held in memory, so recording a frame costs an append
and a batch one gathering write, no per-frame formatting. Each block starts with a
20-byte head ``BLOCK`` (little-endian): a 4-byte tag, ``count``, ``size``, and ``base``
(a double: the recorder's clock at the request; a stamp minus ``base`` is the ``t`` of
the lines). Then, by tag:

* ``AUDIO_TAG`` (``DGA3``): ``count`` frames the client sent, each exactly ``size`` bytes:
  ``count`` stamps (doubles), then the frames back to back, each one whole WebSocket
  binary frame exactly as sent (header, mask key, masked payload; a fragmented message is
  kept reassembled and unmasked). Their ``audio`` is the running sum of payload bytes over
  the request's byte rate.
* ``READS_TAG`` (``DGR3``): ``count`` reads of the server's bytes after the 101, ``size``
  bytes in all: ``count`` stamps (doubles), ``count`` positions (uint32: how many of this
  socket's audio frames were sent before the read), ``count`` lengths (uint32), then the
  reads back to back, exactly as they came (WebSocket frames, possibly split or several
  per read). The reader parses the frames; each message gets the ``t`` of the read that
  completed it and the audio clock after ``position`` frames, and goes in wire order
  after those frames.

A line's ``sidecar`` is the sidecar's size when it was written: the blocks before it came
before it on the wire. The recorder writes the sidecar's pending blocks before each line
and every 64 KiB of audio (``AUDIO_FLUSH``) or 64 KiB of reads, so a killed process
loses at most that much; the reader keeps every whole block and reports a cut one, or a
cut last line, as ``Recording.truncated``. In version 3 the lines hold the handshake and
what the client sent besides audio (control messages, close); ``dgproto replay FILE
--frames`` prints every frame, server messages included, as one JSON line each.

**Version 2** (read only): the sidecar held only the client's audio, per frame an 8-byte
double ``t`` then the frame as sent, and the server's messages were lines. **Version 1**:
no sidecar. Without a sidecar (``null``: recording to a file object rather than a path)
every frame is a line, in any version.

**Several sockets** (a ``reconnect=`` stream): each socket's session starts with its own
header line (then its request, response and frames); all share one sidecar, whose offsets
count from the start of that file. ``read_recordings`` returns one ``Recording`` per
socket, ``read_recording`` the first.

Pure: ``Recorder`` turns calls into lines, ``read_recording`` lines into typed records;
writing the file is the adapters' job (``dgproto.transports._record``).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import sys
from array import array
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import attrs

from ._audio import bytes_per_second
from ._framing import apply_mask
from ._options import LiveOptions

__all__ = [
    "FORMAT",
    "REDACTED",
    "VERSION",
    "FrameRecord",
    "Recorder",
    "Recording",
    "RecordingError",
    "RequestRecord",
    "ResponseRecord",
    "read_recording",
    "read_recordings",
    "redact_headers",
    "redact_target",
]

FORMAT = "dgproto-recording"
VERSION = 3
#: The versions ``read_recording`` accepts.
READABLE_VERSIONS = (1, 2, 3)
#: A version 2 sidecar record's head: the frame's ``t``, a little-endian double.
SIDECAR_T = struct.Struct("<d")
#: A version 3 sidecar block's head: tag, count, size, base (see the module docstring).
BLOCK = struct.Struct("<4sIId")
#: The tag of a block of audio frames the client sent.
AUDIO_TAG = b"DGA3"
#: The tag of a block of the server's reads.
READS_TAG = b"DGR3"
#: What a credential is replaced with.
REDACTED = "<redacted>"

Direction = Literal["send", "recv"]
Kind = Literal["text", "binary", "close", "ping", "pong"]
_KINDS = ("text", "binary", "close", "ping", "pong")

#: Headers whose whole value is a secret (the auth scheme of ``authorization`` is kept).
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
#: Query keys whose value is a secret.
_SECRET_QUERY = frozenset({"token", "access_token", "api_key", "key"})
_AUTH_SCHEMES = ("token", "bearer")


class RecordingError(ValueError):
    """A recording that cannot be read: says which line and why."""


# --------------------------------------------------------------------------- redaction


def _scrub(value: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            value = value.replace(secret, REDACTED)
    return value


def redact_headers(
    headers: Iterable[tuple[str, str]], secrets: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Lower-cased headers with every credential replaced by ``REDACTED``.

    ``Authorization: Token KEY`` keeps its scheme (replay needs the form, not the key);
    the browser form ``Sec-WebSocket-Protocol: token, KEY`` keeps ``token``. Any listed
    ``secrets`` found elsewhere are replaced too.
    """
    out: list[tuple[str, str]] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in _SECRET_HEADERS:
            scheme, space, _ = value.strip().partition(" ")
            value = f"{scheme} {REDACTED}" if space and name.endswith("authorization") else REDACTED
        elif name == "sec-websocket-protocol":
            value = ", ".join(_redact_protocols([p.strip() for p in value.split(",")]))
        out.append((name, _scrub(value, secrets)))
    return out


def _redact_protocols(offered: list[str]) -> list[str]:
    out: list[str] = []
    secret_next = False
    for item in offered:
        out.append(REDACTED if secret_next else item)
        secret_next = item.lower() in _AUTH_SCHEMES
    return out


def _redact_callback(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{key}={REDACTED}" for key, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_target(target: str, secrets: Sequence[str] = ()) -> tuple[str, list[tuple[str, str]]]:
    """``(path, query pairs)`` of a request target, credentials replaced.

    ``token``/``access_token``/``key``/``api_key`` values go; a ``callback`` URL loses
    its user info and its query values (a webhook's credentials travel there).
    """
    path, _, query = target.partition("?")
    pairs: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY:
            value = REDACTED
        elif key.lower() == "callback":
            value = _redact_callback(value)
        pairs.append((key, _scrub(value, secrets)))
    return _scrub(path, secrets), pairs


# --------------------------------------------------------------------------- records


@attrs.frozen(kw_only=True)
class RequestRecord:
    t: float
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    @property
    def query_string(self) -> str:
        """The (redacted) query, for ``LiveOptions.from_query``."""
        return "&".join(f"{k}={v}" for k, v in self.query)


@attrs.frozen(kw_only=True)
class ResponseRecord:
    t: float
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@attrs.frozen(kw_only=True)
class FrameRecord:
    t: float
    audio: float | None
    direction: Direction
    kind: Kind
    text: str | None = None
    data: bytes = b""
    code: int | None = None
    reason: str = ""

    def json(self) -> Any:
        """The decoded text message, or ``None`` (not text, or not JSON)."""
        if self.text is None:
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def message_type(self) -> str | None:
        """A text message's ``type`` when it is a JSON object with a str one."""
        message = self.json()
        kind = message.get("type") if isinstance(message, dict) else None
        return kind if isinstance(kind, str) else None


@attrs.frozen(kw_only=True)
class Recording:
    """One session, as read back: the handshake, then every frame in wire order."""

    version: int
    request: RequestRecord
    response: ResponseRecord | None
    frames: tuple[FrameRecord, ...] = ()
    #: The file ends mid-block or mid-line (a killed process): what was whole is here.
    truncated: bool = False

    @property
    def accepted(self) -> bool:
        return self.response is not None and self.response.status == 101


# --------------------------------------------------------------------------- frames


_KIND_OF_OPCODE: dict[int, Kind] = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


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


# --------------------------------------------------------------------------- encoder


_AUDIO_HEAD = '{"type":"frame","t":'
#: Where a text frame's message is spliced in as JSON (see ``_spliced``).
_JSON_MARK = ',"kind":"text","json":'
#: A str as a JSON string literal, non-ASCII kept (the C encoder json.dumps calls, minus
#: the cost of building an encoder per call: this runs for every text frame).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


class Recorder:
    """Turns one session's handshake and frames into lines of the format above.

    ``t`` counts from the first ``now`` given. ``secrets`` (the API key, a proxy
    password...) are also scrubbed from the request wherever they appear, on top of the
    fixed rules of ``redact_headers``/``redact_target``.
    """

    def __init__(self, *, secrets: Sequence[str] = ()) -> None:
        self._secrets = tuple(secrets)
        self._start: float | None = None

    def _t(self, now: float) -> float:
        if self._start is None:
            self._start = now
        return round(now - self._start, 6)

    def _stamp(self, now: float, audio: float | None) -> str:
        """``T,"audio":A`` with six decimals: one ``%`` costs a third of ``repr(round())``
        twice, which was most of the inbound recording cost."""
        start = now if self._start is None else self._start  # the request set it
        if audio is None:
            return '%.6f,"audio":null' % (now - start)
        return '%.6f,"audio":%.6f' % (now - start, audio)  # noqa: UP031

    def header(self, sidecar: str | None = None, offset: int = 0) -> str:
        """A socket's first line: ``sidecar`` names the raw audio file (``None``: audio
        inline), ``offset`` is where this socket's audio starts in it."""
        header = {"format": FORMAT, "version": VERSION, "sidecar": sidecar}
        if offset:
            header["offset"] = offset
        return _dumps(header)

    def request(
        self, *, method: str, target: str, headers: Iterable[tuple[str, str]], now: float
    ) -> str:
        path, query = redact_target(target, self._secrets)
        return _dumps(
            {
                "type": "request",
                "t": self._t(now),
                "method": method,
                "path": path,
                "query": query,
                "headers": redact_headers(headers, self._secrets),
            }
        )

    def response(
        self, *, status: int, headers: Iterable[tuple[str, str]], body: bytes, now: float
    ) -> str:
        return _dumps(
            {
                "type": "response",
                "t": self._t(now),
                "status": status,
                "headers": redact_headers(headers, self._secrets),
                "body": _b64(body),
            }
        )

    def audio(self, payload: bytes, now: float, audio_seconds: float | None) -> str:
        """``frame("send", "binary", ...)``, shortened for the 50-a-second audio path."""
        stamp = self._stamp(now, audio_seconds)
        data = b2a_base64(payload, newline=False).decode("ascii")
        return f'{_AUDIO_HEAD}{stamp},"dir":"send","kind":"binary","data":"{data}"}}\n'

    def text(
        self,
        direction: Direction,
        payload: bytes | bytearray,
        now: float,
        audio: float | None,
        sidecar: int | None = None,
    ) -> str:
        """``frame(direction, "text", ...)``, shortened for the inbound message path."""
        text = payload.decode("utf-8", errors="replace")
        head = f'{_AUDIO_HEAD}{self._stamp(now, audio)},"dir":"{direction}"'
        if sidecar is not None:
            head += f',"sidecar":{sidecar}'
        if text[-1:] == "}" and text[:1] == "{" and "\n" not in text and "\r" not in text:
            return f"{head}{_JSON_MARK}{text}}}\n"  # spliced: escaping cost more than all else
        return f'{head},"kind":"text","text":{_quote(text)}}}\n'

    def frame(
        self,
        direction: Direction,
        kind: Kind,
        payload: bytes,
        *,
        now: float,
        audio_seconds: float | None,
        sidecar: int | None = None,
    ) -> str:
        """One frame: ``payload`` is the unmasked payload (a close frame's raw one)."""
        if kind == "text":
            return self.text(direction, payload, now, audio_seconds, sidecar)
        stamp = self._stamp(now, audio_seconds)
        head = f'{_AUDIO_HEAD}{stamp},"dir":"{direction}","kind":"{kind}"'
        if sidecar is not None:
            head += f',"sidecar":{sidecar}'
        if kind == "close":
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", errors="replace")
            return f'{head},"code":{code},"reason":{_quote(reason)}}}\n'
        return f'{head},"data":"{_b64(payload)}"}}\n'


# --------------------------------------------------------------------------- reader


def _need(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordingError(f"{where}: {key!r} is missing or has the wrong type")
    return value


def _pairs(value: Any, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in value
    ):
        raise RecordingError(f"{where}: {key!r} must be a list of [str, str] pairs")
    return tuple((p[0], p[1]) for p in value)


def _unb64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise RecordingError(f"{where}: base64 data must be a str")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise RecordingError(f"{where}: bad base64 ({exc})") from None


def _spliced(line: str) -> dict[str, Any] | None:
    """A frame line whose message was spliced in raw: its fields, ``text`` the raw text.

    Read by position, not parsed, so the text is the server's byte for byte, and a
    message that was not valid JSON (which makes the line invalid JSON too) still loads.
    ``None`` when the line does not have that shape.
    """
    head, _, rest = line.rstrip("\n").partition(_JSON_MARK)
    if not rest.endswith("}"):
        return None
    try:
        obj = json.loads(head + "}")
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "frame":
        return None
    obj["kind"], obj["text"] = "text", rest[:-1]
    return obj


def line_is_whole(line: str) -> bool:
    """Whether ``line`` (without its newline) is a whole record: blank, JSON, or a
    spliced frame; a file's last line that is not was cut by a stopped writer."""
    if not line.strip() or (_JSON_MARK in line and _spliced(line) is not None):
        return True
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _frame(obj: dict[str, Any], where: str) -> FrameRecord:
    direction = obj.get("dir")
    kind = obj.get("kind")
    if direction not in ("send", "recv"):
        raise RecordingError(f"{where}: 'dir' must be 'send' or 'recv', got {direction!r}")
    if kind not in _KINDS:
        raise RecordingError(f"{where}: unknown frame kind {kind!r}")
    audio = obj.get("audio")
    if audio is not None:
        audio = float(_need(obj, "audio", (int, float), where))
    common: dict[str, Any] = {
        "t": float(_need(obj, "t", (int, float), where)),
        "audio": audio,
        "direction": direction,
        "kind": kind,
    }
    if kind == "text":
        return FrameRecord(text=_need(obj, "text", str, where), **common)
    if kind == "close":
        return FrameRecord(
            code=_need(obj, "code", int, where), reason=_need(obj, "reason", str, where), **common
        )
    return FrameRecord(data=_unb64(obj.get("data"), where), **common)


def _check_header(obj: Any, where: str) -> tuple[int, str | None, int]:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordingError(f"{where}: not a {FORMAT} file (no format header)")
    version = obj.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise RecordingError(
            f"{where}: {FORMAT} version {version!r} is not supported; this dgproto reads "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    sidecar = obj.get("sidecar")
    if sidecar is not None and not isinstance(sidecar, str):
        raise RecordingError(f"{where}: 'sidecar' must be a file name or null")
    offset = obj.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise RecordingError(f"{where}: 'offset' must be a sidecar byte offset")
    return version, sidecar, offset


def _frame_record(
    direction: Direction, kind: Kind, payload: bytes, t: float, audio: float | None
) -> FrameRecord:
    """A frame read from the sidecar, as its line would have given it."""
    if kind == "text":
        text = payload.decode("utf-8", errors="replace")
        return FrameRecord(t=t, audio=audio, direction=direction, kind=kind, text=text)
    if kind == "close":
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        reason = payload[2:].decode("utf-8", errors="replace")
        return FrameRecord(
            t=t, audio=audio, direction=direction, kind=kind, code=code, reason=reason
        )
    return FrameRecord(t=t, audio=audio, direction=direction, kind=kind, data=payload)


def _frame_layout(data: bytes, pos: int) -> tuple[int, int]:
    """``(where the payload starts, its length)`` for the frame header at ``data[pos]``
    (at least two bytes there; a header cut short reads as a wrong length, which the
    callers' bounds checks then refuse)."""
    second = data[pos + 1]
    length, head = second & 0x7F, 2
    if length == 126:
        length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
    elif length == 127:
        length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
    return pos + head + (4 if second & 0x80 else 0), length


def _binary_frame(data: bytes, pos: int, end: int) -> tuple[bytes, int] | None:
    """``(unmasked payload, its length)`` of the whole binary frame ``data[pos:end]``."""
    if end - pos < 2 or data[pos] != 0x82:
        return None
    second = data[pos + 1]
    start, length = _frame_layout(data, pos)
    if start + length != end:
        return None
    payload = data[start:end]
    if second & 0x80:
        payload = apply_mask(payload, data[start - 4 : start])
    return payload, length


class _SidecarReader:
    """Walks a version 2 sidecar's records in order, turning them into send frames."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        #: the current socket's byte rate and audio bytes so far (its audio clock)
        self.bps: int | None = None
        self.audio_bytes = 0
        self.truncated = False

    def start(self, bps: int | None) -> None:
        """A new socket's request: its audio clock starts from 0 at ``bps``."""
        self.bps, self.audio_bytes = bps, 0

    def until(self, offset: int | None, where: str) -> list[FrameRecord]:
        """The records that start before ``offset`` (all that are left for ``None``)."""
        data, out = self._data, []
        end = len(data) if offset is None else offset
        if end > len(data):
            raise RecordingError(f"{where}: the sidecar is shorter ({len(data)} bytes) than {end}")
        while self._pos < end:
            pos = self._pos
            if pos + SIDECAR_T.size + 2 > len(data):
                raise RecordingError(f"sidecar byte {pos}: a truncated record")
            (t,) = SIDECAR_T.unpack_from(data, pos)
            pos += SIDECAR_T.size
            start, length = _frame_layout(data, pos)
            stop = start + length
            frame = _binary_frame(data, pos, stop) if stop <= len(data) else None
            if frame is None:
                raise RecordingError(f"sidecar byte {self._pos}: not a whole binary frame")
            self._pos = stop
            self.audio_bytes += frame[1]
            audio = None if self.bps is None else round(self.audio_bytes / self.bps, 6)
            out.append(
                FrameRecord(
                    t=round(t, 6), audio=audio, direction="send", kind="binary", data=frame[0]
                )
            )
        return out


_U32 = "I" if array("I").itemsize == 4 else "L"
_BIG_ENDIAN = sys.byteorder == "big"


def _array(code: str, data: bytes, pos: int, count: int) -> array[Any]:
    """``count`` little-endian items of ``code`` at ``data[pos:]``."""
    out = array(code)
    out.frombytes(data[pos : pos + count * out.itemsize])
    if _BIG_ENDIAN:  # pragma: no cover - the format is little-endian
        out.byteswap()
    return out


class _BlockReader:
    """Walks a version 3 sidecar's blocks in order: the client's audio frames and the
    server's messages, merged in wire order by the reads' positions."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.truncated = False
        self.start(None)

    def start(self, bps: int | None) -> None:
        """A new socket's request: its audio clock, frame count and parser restart."""
        self.bps = bps
        #: payload bytes sent after each audio frame so far (index: frames before)
        self._clock = [0]
        self._parser = _Frames()

    def _audio(self, frames: int) -> float | None:
        if self.bps is None:
            return None
        return round(self._clock[min(frames, len(self._clock) - 1)] / self.bps, 6)

    def until(self, offset: int | None, where: str) -> list[FrameRecord]:
        """The frames of the blocks that start before ``offset`` (all for ``None``), in
        wire order. A block cut short (the file ends inside it) is left out."""
        data = self._data
        end = len(data) if offset is None else offset
        if end > len(data):
            self.truncated = True
            end = len(data)
        keyed: list[tuple[int, int, int, FrameRecord]] = []
        while self._pos < end:
            pos = self._pos
            if pos + BLOCK.size > len(data):
                self.truncated = True
                self._pos = len(data)
                break
            tag, count, size, base = BLOCK.unpack_from(data, pos)
            pos += BLOCK.size
            if tag == AUDIO_TAG:
                stop = pos + count * (8 + size)
            elif tag == READS_TAG:
                stop = pos + count * 16 + size
            else:
                raise RecordingError(f"sidecar byte {self._pos}: not a block ({tag!r})")
            if stop > len(data):
                self.truncated = True
                self._pos = len(data)
                break
            stamps = _array("d", data, pos, count)
            pos += 8 * count
            if tag == AUDIO_TAG:
                self._audio_block(stamps, base, data, pos, size, keyed)
            else:
                self._reads_block(stamps, base, data, pos, count, keyed)
            self._pos = stop
        keyed.sort(key=_order)
        return [item[3] for item in keyed]

    def _audio_block(
        self,
        stamps: array[float],
        base: float,
        data: bytes,
        pos: int,
        size: int,
        out: list[tuple[int, int, int, FrameRecord]],
    ) -> None:
        clock = self._clock
        for stamp in stamps:
            frame = _binary_frame(data, pos, pos + size)
            if frame is None:
                raise RecordingError(f"sidecar byte {pos}: not a whole binary frame")
            index = len(clock)
            clock.append(clock[-1] + frame[1])
            record = FrameRecord(
                t=round(stamp - base, 6),
                audio=self._audio(index),
                direction="send",
                kind="binary",
                data=frame[0],
            )
            out.append((index - 1, 1, len(out), record))
            pos += size

    def _reads_block(
        self,
        stamps: array[float],
        base: float,
        data: bytes,
        pos: int,
        count: int,
        out: list[tuple[int, int, int, FrameRecord]],
    ) -> None:
        positions = _array(_U32, data, pos, count)
        lengths = _array(_U32, data, pos + 4 * count, count)
        pos += 8 * count
        parser = self._parser
        for stamp, at, length in zip(stamps, positions, lengths, strict=True):
            t, audio = round(stamp - base, 6), self._audio(at)
            for kind, payload, _ in parser.feed(data[pos : pos + length]):
                out.append((at, 0, len(out), _frame_record("recv", kind, payload, t, audio)))
            pos += length


def _order(item: tuple[int, int, int, FrameRecord]) -> tuple[int, int, int]:
    """Wire order: the reads after ``n`` audio frames, before the frame after those."""
    return item[0], item[1], item[2]


class _Segment:
    """One socket's records while they are read."""

    def __init__(self, version: int, reader: _SidecarReader | _BlockReader | None) -> None:
        self.version = version
        #: the shared sidecar reader when this socket's frames are in it
        self.reader = reader
        self.request: RequestRecord | None = None
        self.response: ResponseRecord | None = None
        self.frames: list[FrameRecord] = []

    def add(self, obj: dict[str, Any], where: str) -> None:
        _record(obj, self, where)
        reader = self.reader
        if reader is None:
            return
        if obj.get("type") == "request":
            assert self.request is not None
            reader.start(_byte_rate(self.request))
        elif obj.get("type") == "frame":
            frame = self.frames.pop()
            self.frames += reader.until(_need(obj, "sidecar", int, where), where)
            self.frames.append(frame)

    def done(self, where: str, sidecar_end: int | None, truncated: bool) -> Recording:
        if self.request is None:
            raise RecordingError(f"{where}: no request record: the session never started")
        if self.reader is not None:
            self.frames += self.reader.until(sidecar_end, where)
            truncated = truncated or self.reader.truncated
        return Recording(
            version=self.version,
            request=self.request,
            response=self.response,
            frames=tuple(self.frames),
            truncated=truncated,
        )


def read_recordings(
    lines: Iterable[str], sidecar: bytes | None = None, *, truncated: bool = False
) -> list[Recording]:
    """Parse a recording's lines into one ``Recording`` per socket (blank lines skipped).

    ``sidecar`` is the content of the raw file the header names (``None``: there is none,
    and a header naming one is an error). ``truncated``: the caller dropped a cut last
    line (the last socket's ``Recording.truncated`` says so). ``RecordingError`` says
    where it broke.
    """
    out: list[Recording] = []
    segment: _Segment | None = None
    reader: _SidecarReader | _BlockReader | None = None
    where = "line 0"
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        obj = _spliced(line) if _JSON_MARK in line else None
        if obj is None:
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise RecordingError(f"{where}: not JSON ({exc})") from None
        if segment is None or (isinstance(obj, dict) and "format" in obj):
            version, named, offset = _check_header(obj, where)
            if segment is not None:
                if segment.version != version:
                    raise RecordingError(f"{where}: version {version} after {segment.version}")
                out.append(segment.done(where, offset, False))
            if named is not None and sidecar is None:
                raise RecordingError(f"{where}: the audio sidecar {named!r} is missing")
            if named is not None and reader is None:
                assert sidecar is not None
                reader = _BlockReader(sidecar) if version >= 3 else _SidecarReader(sidecar)
            segment = _Segment(version, None if named is None else reader)
            continue
        if not isinstance(obj, dict):
            raise RecordingError(f"{where}: expected a JSON object")
        segment.add(obj, where)
    if segment is None:
        raise RecordingError(f"empty file: no {FORMAT} header")
    out.append(segment.done(where, None, truncated))
    return out


def read_recording(lines: Iterable[str], sidecar: bytes | None = None) -> Recording:
    """The first socket's session of a recording (see ``read_recordings``)."""
    return read_recordings(lines, sidecar)[0]


def _byte_rate(request: RequestRecord) -> int | None:
    """The request's audio byte rate (``None``: no fixed rate), as the tap computed it."""
    try:
        options = LiveOptions.from_query(request.query_string)
    except ValueError:
        return None
    return bytes_per_second(options.encoding, options.sample_rate, options.channels or 1)


def _record(obj: dict[str, Any], segment: _Segment, where: str) -> None:
    kind = obj.get("type")
    if kind == "frame":
        if segment.response is None:
            raise RecordingError(f"{where}: a frame before the handshake response")
        segment.frames.append(_frame(obj, where))
    elif kind == "request" and segment.request is None:
        segment.request = RequestRecord(
            t=float(_need(obj, "t", (int, float), where)),
            method=_need(obj, "method", str, where),
            path=_need(obj, "path", str, where),
            query=_pairs(obj.get("query"), where, "query"),
            headers=_pairs(obj.get("headers"), where, "headers"),
        )
    elif kind == "response" and segment.request is not None and segment.response is None:
        segment.response = ResponseRecord(
            t=float(_need(obj, "t", (int, float), where)),
            status=_need(obj, "status", int, where),
            headers=_pairs(obj.get("headers"), where, "headers"),
            body=_unb64(obj.get("body", ""), where),
        )
    else:
        raise RecordingError(f"{where}: unexpected record {kind!r} here")
