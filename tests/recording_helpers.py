"""A client core and a server core in memory with a ``WireTap`` on the client's bytes:
records a session exactly as an adapter would, and notes where on the audio clock each
client event surfaced (what a replay must reproduce)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

from dgproto import (
    Auth,
    Closed,
    Config,
    Connected,
    Event,
    FinalizeComplete,
    HandshakeRejected,
    ListenConnection,
    LiveOptions,
    Results,
    State,
)
from dgproto._recording import Recording, read_recording
from dgproto._wiretap import WireTap
from dgproto.emulator import EmulatorConfig, EmulatorConnection, ReplayConnection
from dgproto.transports._record import SessionRecorder, record_sink

from .memory_pipe import MemoryPipe

RATE = 16000
KEY = "dg-secret-key-0123456789abcdef"
OPTIONS = LiveOptions(
    encoding="linear16", sample_rate=RATE, interim_results=True, utterance_end_ms=1000
)
#: The client's upgrade request for ``OPTIONS`` (with its key) and the server's answer.
REQUEST = (
    f"GET /v1/listen?{OPTIONS.to_query()} HTTP/1.1\r\nauthorization: Token {KEY}\r\n\r\n"
).encode()
ACCEPT = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"


def upgraded_recorder(path: Any) -> SessionRecorder:
    """A ``SessionRecorder`` on ``path`` past the upgrade: audio goes to the sidecar."""
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    recorder.sent(REQUEST, 0.0)
    recorder.received(ACCEPT, 0.0)
    return recorder


class TappedPipe(MemoryPipe):
    """``MemoryPipe`` whose client bytes also go through a ``WireTap`` into ``lines``."""

    def __init__(
        self, client: ListenConnection, server: EmulatorConnection, *, now: float = 0.0
    ) -> None:
        self.file = io.StringIO()
        self.tap = WireTap(self.file.write, secrets=[KEY])
        #: (audio_seconds_sent when the event surfaced, the event)
        self.timed: list[tuple[float, Event]] = []
        super().__init__(client, server, now=now)

    def pump(self) -> None:
        client, server = self.client, self.server
        for _ in range(10_000):
            moved = False
            if out := client.data_to_send():
                self.tap.sent(out, self.now)
                server.receive_data(out, now=self.now)
                moved = True
            if client.should_close_transport and not server.should_close_transport:
                server.receive_eof(now=self.now)
            if out := server.data_to_send():
                self.tap.received(out, self.now)
                client.receive_data(out, now=self.now)
                moved = True
            if server.should_close_transport and not client.should_close_transport:
                self.tap.eof(self.now)
                client.receive_eof(now=self.now)
                moved = True
            for event in client.events():
                self.events.append(event)
                self.timed.append((client.audio_seconds_sent or 0.0, event))
            if not moved:
                return
        raise AssertionError("the pipe never went quiet")  # pragma: no cover

    def stream(self, audio: bytes, chunk: int = 640, realtime: bool = True) -> None:
        for i in range(0, len(audio), chunk):
            if self.client.state is State.CLOSED:
                return
            self.client.send_audio(audio[i : i + chunk], now=self.now)
            self.pump()
            if realtime:
                self.advance(chunk / (2 * RATE))

    def recording(self) -> Recording:
        return read_recording(self.file.getvalue().splitlines())


def client(
    *, auth: Auth | None = None, config: Config | None = None, options: LiveOptions = OPTIONS
) -> ListenConnection:
    return ListenConnection(
        options=options,
        auth=auth or Auth.token(KEY),
        host="emulator",
        config=config or Config(keepalive_interval=3),
    )


def emulator(config: EmulatorConfig | None = None) -> EmulatorConnection:
    return EmulatorConnection(config=config, rng=random.Random(1), wall_time=0.0, now=0.0)


def replayer(recording: Recording, **config: Any) -> ReplayConnection:
    return ReplayConnection(
        config=EmulatorConfig(replay=recording, **config),
        rng=random.Random(2),
        wall_time=0.0,
        now=0.0,
    )


def summary(event: Event) -> tuple[Any, ...]:
    """What an app observes of an event (enough to tell a different session apart)."""
    if isinstance(event, Results):
        alt = event.alternatives[0] if event.alternatives else None
        return (
            "Results",
            event.is_final,
            event.speech_final,
            event.from_finalize,
            round(event.start, 3),
            alt.transcript if alt else None,
        )
    if isinstance(event, Connected):
        return ("Connected", event.request_id)
    if isinstance(event, FinalizeComplete):
        return ("FinalizeComplete", event.reason)
    if isinstance(event, Closed):
        return ("Closed", event.code, event.initiator, event.clean)
    if isinstance(event, HandshakeRejected):
        return ("HandshakeRejected", event.status_code, event.err_code, event.body)
    return (type(event).__name__,)


Scenario = Callable[[TappedPipe], None]
