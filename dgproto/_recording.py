"""Session recordings: a versioned JSON Lines format, its encoder and its reader.

A recording lets a session that misbehaved against the real Deepgram be replayed by the
emulator as a test, so it holds exactly what crossed the wire, minus every credential.
One JSON object per line (UTF-8):

1. ``{"format": "dgproto-recording", "version": 1}``: refuse what you cannot read.
2. ``{"type": "request", "t", "method", "path", "query": [[k, v], ...], "headers":
   [[name, value], ...]}``: credentials replaced by ``<redacted>`` (see ``redact_*``).
3. ``{"type": "response", "t", "status", "headers", "body"}``: ``body`` is the base64
   rejection body (``""`` for a 101).
4. ``{"type": "frame", "t", "audio", "dir", "kind", ...}``, one per WebSocket message or
   control frame, in wire order. ``dir`` is ``"send"`` (client to server) or ``"recv"``;
   ``kind`` is ``text`` (with ``"text"``), ``binary``, ``ping`` or ``pong`` (with base64
   ``"data"``) or ``close`` (with ``"code"``, ``"reason"``).

``t`` is seconds since the request was written; ``audio`` is the client's audio clock
(``audio_seconds_sent``, after a sent frame's own audio) or ``null`` when the encoding has
no fixed byte rate. Audio is inline base64, so one file is the whole session.

Pure: ``Recorder`` turns calls into lines, ``read_recording`` lines into typed records;
writing the file is the adapters' job (``dgproto.transports._record``).
"""

from __future__ import annotations

import base64
import binascii
import json
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import attrs

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
    "redact_headers",
    "redact_target",
]

FORMAT = "dgproto-recording"
VERSION = 1
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

    @property
    def accepted(self) -> bool:
        return self.response is not None and self.response.status == 101


# --------------------------------------------------------------------------- encoder


_AUDIO_HEAD = '{"type":"frame","t":'
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

    def header(self) -> str:
        return _dumps({"format": FORMAT, "version": VERSION})

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
        t = self._t(now)
        audio = "null" if audio_seconds is None else repr(round(audio_seconds, 6))
        data = b2a_base64(payload, newline=False).decode("ascii")
        return (
            f'{_AUDIO_HEAD}{t!r},"audio":{audio},"dir":"send","kind":"binary","data":"{data}"}}\n'
        )

    def text(self, direction: Direction, payload: bytes, now: float, audio: float | None) -> str:
        """``frame(direction, "text", ...)``, shortened for the inbound message path."""
        t = self._t(now)
        clock = "null" if audio is None else repr(round(audio, 6))
        text = _quote(payload.decode("utf-8", errors="replace"))
        head = f'{_AUDIO_HEAD}{t!r},"audio":{clock},"dir":"{direction}"'
        return f'{head},"kind":"text","text":{text}}}\n'

    def frame(
        self,
        direction: Direction,
        kind: Kind,
        payload: bytes,
        *,
        now: float,
        audio_seconds: float | None,
    ) -> str:
        """One frame: ``payload`` is the unmasked payload (a close frame's raw one)."""
        t = self._t(now)
        audio = "null" if audio_seconds is None else repr(round(audio_seconds, 6))
        head = f'{{"type":"frame","t":{t!r},"audio":{audio},"dir":"{direction}","kind":"{kind}"'
        if kind == "text":
            text = payload.decode("utf-8", errors="replace")
            return f'{head},"text":{_quote(text)}}}\n'
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


def _check_header(obj: Any) -> int:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise RecordingError(f"line 1: not a {FORMAT} file (no format header)")
    version = obj.get("version")
    if version != VERSION:
        raise RecordingError(
            f"line 1: {FORMAT} version {version!r} is not supported; "
            f"this dgproto reads version {VERSION}"
        )
    return VERSION


def read_recording(lines: Iterable[str]) -> Recording:
    """Parse a recording's lines (blank lines are skipped); ``RecordingError`` says where."""
    version: int | None = None
    request: RequestRecord | None = None
    response: ResponseRecord | None = None
    frames: list[FrameRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{where}: not JSON ({exc})") from None
        if version is None:
            version = _check_header(obj)
            continue
        if not isinstance(obj, dict):
            raise RecordingError(f"{where}: expected a JSON object")
        kind = obj.get("type")
        if kind == "frame":
            if response is None:
                raise RecordingError(f"{where}: a frame before the handshake response")
            frames.append(_frame(obj, where))
        elif kind == "request" and request is None:
            request = RequestRecord(
                t=float(_need(obj, "t", (int, float), where)),
                method=_need(obj, "method", str, where),
                path=_need(obj, "path", str, where),
                query=_pairs(obj.get("query"), where, "query"),
                headers=_pairs(obj.get("headers"), where, "headers"),
            )
        elif kind == "response" and request is not None and response is None:
            response = ResponseRecord(
                t=float(_need(obj, "t", (int, float), where)),
                status=_need(obj, "status", int, where),
                headers=_pairs(obj.get("headers"), where, "headers"),
                body=_unb64(obj.get("body", ""), where),
            )
        else:
            raise RecordingError(f"{where}: unexpected record {kind!r} here")
    if version is None:
        raise RecordingError(f"empty file: no {FORMAT} header")
    if request is None:
        raise RecordingError("no request record: the session never started")
    return Recording(version=version, request=request, response=response, frames=tuple(frames))
