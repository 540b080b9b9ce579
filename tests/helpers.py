"""Test kit: a real wsproto server on the other side of an in-memory pipe, and a virtual clock.

``LivePair`` joins a ``ListenConnection`` to ``FakeServer`` (wsproto's server role), so
every core test exercises real WebSocket framing and a real HTTP upgrade, with no socket
and no sleeping: time only moves when a test calls ``advance``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from dgproto import Config, Event, FluxConnection, FluxOptions, ListenConnection, LiveOptions
from dgproto._options import Auth

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepgram"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "deepgram"


def fixture_text(name: str) -> str:
    """A real Deepgram payload, from the in-repo copy (or shared/ beside the clone)."""
    path = FIXTURES / name
    if not path.exists():
        path = SHARED_FIXTURES / name
    return path.read_text()


def results_json(
    *,
    start: float,
    duration: float,
    transcript: str = "",
    is_final: bool = True,
    speech_final: bool = False,
    from_finalize: bool = False,
    channel: tuple[int, int] = (0, 1),
) -> str:
    """A Results message shaped like Deepgram's wire format."""
    words = [
        {"word": w, "start": start, "end": start + duration, "confidence": 0.9}
        for w in transcript.split()
    ]
    return json.dumps(
        {
            "type": "Results",
            "channel_index": list(channel),
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [{"transcript": transcript, "confidence": 0.9, "words": words}]
            },
            "metadata": {"request_id": "req-1", "model_info": {}, "model_uuid": "m"},
            "from_finalize": from_finalize,
        }
    )


METADATA_JSON = json.dumps(
    {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": "req-1",
        "sha256": "incomplete",
        "created": "2026-08-25T21:11:31.685Z",
        "duration": 1.0,
        "channels": 1,
    }
)

NET0001_REASON = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)


class FakeServer:
    """The server side of the pipe: wsproto SERVER, scripted by the test.

    It records what the client sent, in order, as ``("audio", bytes)``,
    ``("text", dict)``, ``("ping", payload)``, ``("pong", payload)`` or
    ``("close", code)`` so tests can assert wire order.
    """

    def __init__(self, *, auto_accept: bool = True, request_id: str = "req-1") -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.auto_accept = auto_accept
        #: Answer pings with pongs (turn off to play a dead peer).
        self.answer_pings = True
        self.request_id = request_id
        self.request: Request | None = None
        self.received: list[tuple[str, Any]] = []
        self.out = bytearray()
        self.eof = False
        self._text: list[str] = []
        self._binary: list[bytes] = []

    # what the client sent -------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.ws.state is ConnectionState.CLOSED:
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, Request):
                self.request = event
                if self.auto_accept:
                    self.accept()
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    self.received.append(("text", json.loads("".join(self._text))))
                    self._text.clear()
            elif isinstance(event, BytesMessage):
                self._binary.append(bytes(event.data))
                if event.message_finished:
                    self.received.append(("audio", b"".join(self._binary)))
                    self._binary.clear()
            elif isinstance(event, Ping):
                self.received.append(("ping", event.payload))
                if self.answer_pings:
                    self.out += self.ws.send(event.response())
            elif isinstance(event, Pong):
                self.received.append(("pong", event.payload))
            elif isinstance(event, CloseConnection):
                self.received.append(("close", event.code))
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.out += self.ws.send(event.response())

    def texts(self) -> list[dict[str, Any]]:
        return [payload for kind, payload in self.received if kind == "text"]

    def types(self) -> list[str]:
        """The wire order, as ``audio`` or the control message's ``type``."""
        return [
            payload["type"] if kind == "text" else kind
            for kind, payload in self.received
            if kind in ("text", "audio")
        ]

    # what the server says ----------------------------------------------------
    def accept(self, *, subprotocol: str | None = None) -> None:
        headers = [(b"dg-request-id", self.request_id.encode())]
        self.out += self.ws.send(AcceptConnection(subprotocol=subprotocol, extra_headers=headers))

    def reject(
        self, status: int, body: bytes = b"", headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        all_headers = [(b"content-length", str(len(body)).encode()), *headers]
        self.out += self.ws.send(
            RejectConnection(status_code=status, headers=all_headers, has_body=True)
        )
        self.out += self.ws.send(RejectData(data=body, body_finished=True))

    def send_text(self, text: str, *, fragment: int | None = None) -> None:
        if fragment is None:
            self.out += self.ws.send(TextMessage(data=text))
            return
        pieces = [text[i : i + fragment] for i in range(0, len(text), fragment)] or [""]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            self.out += self.ws.send(TextMessage(data=piece, message_finished=last))

    def send_json(self, obj: Any) -> None:
        self.send_text(json.dumps(obj))

    def send_binary(self, data: bytes) -> None:
        self.out += self.ws.send(BytesMessage(data=data))

    def ping(self, payload: bytes = b"hi") -> None:
        self.out += self.ws.send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.out += self.ws.send(CloseConnection(code=code, reason=reason))

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data


class LivePair:
    """A client core and a fake server joined by an in-memory pipe, on a virtual clock."""

    def __init__(
        self,
        *,
        options: LiveOptions | None = None,
        config: Config | None = None,
        auth: Auth | None = None,
        server: FakeServer | None = None,
        connect: bool = True,
    ) -> None:
        self.now = 0.0
        self.client = self._client(options, config, auth)
        self.server = server if server is not None else FakeServer()
        self.log: list[Event] = []
        if connect:
            self.client.connect(now=self.now)
            self.pump()

    def _client(self, options: Any, config: Config | None, auth: Auth | None) -> Any:
        return ListenConnection(
            options=options
            if options is not None
            else LiveOptions(encoding="linear16", sample_rate=16000),
            auth=auth if auth is not None else Auth.token("test-key"),
            host="localhost",
            config=config if config is not None else Config(),
        )

    def pump(self) -> list[Event]:
        """Move bytes both ways until both sides are quiet; return the new client events."""
        while True:
            moved = False
            out = self.client.data_to_send()
            if out:
                self.server.feed(out)
                moved = True
            back = self.server.take()
            if back and not self.client.should_close_transport:
                self.client.receive_data(back, now=self.now)
                moved = True
            if not moved:
                break
        new = self.client.events()
        self.log.extend(new)
        return new

    def advance(self, seconds: float) -> list[Event]:
        """Let virtual time pass, firing every deadline on the way like an adapter would.

        Returns every client event produced on the way.
        """
        target = self.now + seconds
        new: list[Event] = []
        for _ in range(100_000):  # a deadline that never moves would loop forever
            deadline = self.client.get_timer()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.client.handle_timer(now=self.now)
            new += self.pump()
        else:
            raise AssertionError("handle_timer() did not move its deadline forward")
        self.now = target
        return new + self.pump()

    def audio(self, seconds: float = 0.1) -> bytes:
        """Linear16 16 kHz mono silence of the given length."""
        return bytes(int(32000 * seconds))

    def send_audio(self, seconds: float = 0.1) -> None:
        self.client.send_audio(self.audio(seconds), now=self.now)
        self.pump()


class FluxPair(LivePair):
    """``LivePair`` with a ``FluxConnection`` (default: flux-general-en, linear16 16 kHz)."""

    client: FluxConnection

    def _client(self, options: Any, config: Config | None, auth: Auth | None) -> Any:
        return FluxConnection(
            options=options
            if options is not None
            else FluxOptions(model="flux-general-en", encoding="linear16", sample_rate=16000),
            auth=auth if auth is not None else Auth.token("test-key"),
            host="localhost",
            config=config if config is not None else Config(),
        )


def raw_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """A WebSocket frame built by hand, so tests can send what wsproto refuses to build."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if mask is not None:
        head += mask
        size = len(payload)
        key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
        payload = (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, duplicates and out-of-range ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def kinds(events: Iterable[Event]) -> list[str]:
    return [type(e).__name__ for e in events]
