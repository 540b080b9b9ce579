"""Test kit for the emulator: a bare wsproto client on the other side of an in-memory pipe,
and a virtual clock that only moves when a test says so (no sockets, no sleeping)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from dgproto.emulator._config import EmulatorConfig
from dgproto.emulator._connection import EmulatorConnection
from dgproto.emulator._faults import FaultPlan

LINEAR16 = "encoding=linear16&sample_rate=16000"
TOKEN = [(b"authorization", b"Token test-key")]


class Client:
    """One emulated session and a wsproto client talking to it on a virtual clock.

    Everything the server sends is decoded into ``events`` (wsproto events) and, for
    text messages, ``messages`` (JSON, fragments joined) or ``texts`` (raw text).
    """

    def __init__(
        self,
        query: str = LINEAR16,
        *,
        headers: Sequence[tuple[bytes, bytes]] = TOKEN,
        subprotocols: Sequence[str] = (),
        target: str | None = None,
        config: EmulatorConfig | None = None,
        faults: FaultPlan | None = None,
        seed: int = 7,
        now: float = 100.0,
        wall_time: float = 0.0,
        connect: bool = True,
        echo_close: bool = True,
        answer_pings: bool = True,
    ) -> None:
        self.now = now
        self.server = EmulatorConnection(
            config=config, faults=faults, rng=random.Random(seed), wall_time=wall_time, now=now
        )
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.echo_close = echo_close
        self.answer_pings = answer_pings
        self.events: list[Event] = []
        self.texts: list[str] = []
        self.frames: list[TextMessage] = []
        self.body = b""
        self._parts: list[str] = []
        self.accepted: AcceptConnection | None = None
        self.rejected: RejectConnection | None = None
        self.close: CloseConnection | None = None
        if connect:
            self.send(
                Request(
                    host="emulator.test",
                    target=target if target is not None else f"/v1/listen?{query}",
                    extra_headers=list(headers),
                    subprotocols=list(subprotocols),
                )
            )

    # ------------------------------------------------------------ plumbing

    def raw(self, data: bytes) -> None:
        """Hand raw bytes to the server, then deliver its answer to the client."""
        self.server.receive_data(data, now=self.now)
        self.deliver()

    def send(self, event: Event) -> None:
        self.raw(self.ws.send(event))

    def deliver(self) -> None:
        data = self.server.data_to_send()
        if data and self.ws.state is not ConnectionState.CLOSED:
            self.ws.receive_data(data)
        for event in self.ws.events():
            self.events.append(event)
            if isinstance(event, AcceptConnection):
                self.accepted = event
            elif isinstance(event, RejectConnection):
                self.rejected = event
            elif isinstance(event, RejectData):
                self.body += bytes(event.data)
            elif isinstance(event, TextMessage):
                self.frames.append(event)
                self._parts.append(event.data)
                if event.message_finished:
                    self.texts.append("".join(self._parts))
                    self._parts.clear()
            elif isinstance(event, Ping) and self.answer_pings:
                self.send(event.response())
            elif isinstance(event, CloseConnection):
                self.close = event
                if self.echo_close and self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.send(event.response())

    # ------------------------------------------------------------ time

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every server deadline on the way, at its own time."""
        target = self.now + seconds
        while True:
            timer = self.server.get_timer()
            if timer is None or timer > target:
                break
            self.now = max(self.now, timer)
            self.server.handle_timer(now=self.now)
            self.deliver()
        self.now = target
        self.server.handle_timer(now=self.now)
        self.deliver()

    # ------------------------------------------------------------ client actions

    def audio(self, data: bytes, *, chunk: int = 640, seconds_per_chunk: float = 0.0) -> None:
        """Stream audio in ``chunk``-byte binary frames, ``seconds_per_chunk`` apart."""
        for index in range(0, len(data), chunk):
            if seconds_per_chunk:
                self.advance(seconds_per_chunk)
            self.send(BytesMessage(data=data[index : index + chunk]))

    def realtime(self, data: bytes, *, bytes_per_second: int = 32000, chunk_ms: int = 20) -> None:
        """Stream audio in ``chunk_ms`` chunks, the clock advancing in real time."""
        chunk = bytes_per_second * chunk_ms // 1000
        self.audio(data, chunk=chunk, seconds_per_chunk=chunk_ms / 1000)

    def text(self, message: Any) -> None:
        self.send(TextMessage(data=message if isinstance(message, str) else json.dumps(message)))

    # ------------------------------------------------------------ what came back

    @property
    def messages(self) -> list[dict[str, Any]]:
        out = []
        for text in self.texts:
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return out

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.of_type("Results")

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["is_final"]]

    @property
    def pongs(self) -> list[Pong]:
        return [e for e in self.events if isinstance(e, Pong)]

    @property
    def pings(self) -> list[Ping]:
        return [e for e in self.events if isinstance(e, Ping)]

    def headers(self) -> dict[str, str]:
        event = self.accepted or self.rejected
        assert event is not None
        pairs = event.extra_headers if isinstance(event, AcceptConnection) else event.headers
        return {k.decode().lower(): v.decode() for k, v in pairs}

    def error_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body)
        return body


def transcript(results: Sequence[dict[str, Any]]) -> str:
    """The finals' transcripts joined, as an app would build them."""
    parts = [r["channel"]["alternatives"][0]["transcript"] for r in results if r["is_final"]]
    return " ".join(p for p in parts if p)


def words(results: Sequence[dict[str, Any]]) -> list[str]:
    return [
        w["word"]
        for r in results
        if r["is_final"]
        for w in r["channel"]["alternatives"][0]["words"]
    ]


def end_of(result: dict[str, Any]) -> float:
    return float(result["start"] + result["duration"])


# Functions, not attribute reads: mypy would otherwise keep an earlier ``assert x is None``
# narrowing across the call that changes it.


def close_of(client: Client) -> CloseConnection | None:
    """The close frame the client received, if any."""
    return client.close


def closing(who: Client | EmulatorConnection) -> bool:
    """The server's ``should_close_transport``."""
    server = who.server if isinstance(who, Client) else who
    return server.should_close_transport
