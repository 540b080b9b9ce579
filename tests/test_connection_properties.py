"""Property-based tests of ``ListenConnection``: the spec's invariants under random input.

* a hypothesis state machine drives random client commands and server inputs through a
  real wsproto server on a virtual clock, and checks the invariants after every step;
* chunking invariance: any split of a recorded server byte stream gives the same events;
* garbage in never raises: hostile bytes end the session with one ``Closed`` at most;
* timers: a deadline is never in the past after ``handle_timer``, and early calls do nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from unittest import mock

import hypothesis.strategies as st
import pytest
import wsproto.handshake
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from wsproto.connection import ConnectionState

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import LocalProtocolError, RemoteProtocolError
from dgproto._events import (
    Closed,
    Connected,
    Event,
    FinalizeComplete,
    HandshakeRejected,
    MalformedMessage,
    Metadata,
    Results,
    SpeechStarted,
    UnknownMessage,
    Utterance,
    UtteranceEnd,
)
from dgproto._options import Auth, LiveOptions
from dgproto._state import State

from .helpers import (
    METADATA_JSON,
    NET0001_REASON,
    FakeServer,
    close_payload,
    fixture_text,
    raw_frame,
    results_json,
    split_at,
)

#: States only move forward.
RANK = {State.IDLE: 0, State.CONNECTING: 1, State.OPEN: 2, State.CLOSING: 3, State.CLOSED: 4}
REASONS = {"from_finalize", "covered", "timeout", "closed"}
LIVE = (State.OPEN, State.CLOSING)
#: Float slack for comparing sums of virtual times.
EPS = 1e-9
#: linear16, 16 kHz, mono.
BYTES_PER_SECOND = 32000
#: A close reason must fit in 123 bytes, so this is shorter than Deepgram's prose.
DATA0000_REASON = "The payload cannot be decoded as audio. See https://dpgr.am/data0000"
UTTERANCE_END_JSON = json.dumps({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.175})
SPEECH_STARTED_JSON = json.dumps({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 1.73})
UNKNOWN_JSON = json.dumps({"type": "Wibble", "n": 1, "nested": {"x": [1, 2]}})


def new_client(config: Config | None = None) -> ListenConnection:
    return ListenConnection(
        options=LiveOptions(encoding="linear16", sample_rate=16000),
        auth=Auth.token("test-key"),
        host="localhost",
        config=config if config is not None else Config(),
    )


def check_ending(
    events: Sequence[Event], client: ListenConnection, *, timeouts: bool = False
) -> None:
    """At most one ``Closed``, last, explained: by a timer when ``timeouts`` (the peer did
    nothing wrong), else by hostile input."""
    closed = [e for e in events if isinstance(e, Closed)]
    assert client.should_close_transport == (client.state is State.CLOSED)
    if client.state is not State.CLOSED:
        assert closed == []
        assert client.closed is None
        return
    assert len(closed) == 1
    assert events[-1] is closed[0] is client.closed
    end = closed[0]
    if timeouts:
        assert end.initiator == "timeout", end
        assert end.error is None
        assert end.code == 1006
    elif end.initiator == "client":
        # our close frame, for the peer's fault
        assert isinstance(end.error, RemoteProtocolError), end
        assert end.error.close_code == end.code
    elif end.initiator == "transport":
        assert isinstance(end.error, RemoteProtocolError), end
        assert end.code == 1006
    else:
        # the garbage happened to spell a valid close frame or HTTP error response
        assert end.initiator == "server", end
        assert end.error is None


# =============================================================================== 1. the machine

CONFIGS = st.builds(
    Config,
    keepalive_interval=st.sampled_from([None, 0.75, 4.0]),
    open_timeout=st.sampled_from([None, 10.0]),
    finalize_timeout=st.sampled_from([None, 3.0]),
    close_timeout=st.sampled_from([None, 10.0]),
    ping_interval=st.sampled_from([None, 2.5]),
    ping_timeout=st.sampled_from([None, 1.0]),
    utterance_timeout=st.sampled_from([None, 3.0]),
    utterance_max_seconds=st.sampled_from([None, 60.0, 0.05]),
)

#: Audio chunks: empty, tiny, or up to 0.2 s; the content varies so order shows.
#: (Sizes are sampled: hypothesis draws small integers far more often than large ones.)
CHUNKS = st.tuples(
    st.sampled_from([0, 1, 7, 320, 641, 1000, 3200, 6400]) | st.integers(0, 6400),
    st.integers(0, 255),
).map(lambda t: bytes((t[1] + i) % 251 for i in range(t[0])))

DURATIONS = st.one_of(
    st.floats(min_value=0.0, max_value=12.0),
    st.sampled_from([0.0, 0.75, 1.0, 2.5, 3.0, 4.0, 10.0]),
)

#: Hostile bytes for the machine: random, or a valid-looking frame cut short.
GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.tuples(st.text(max_size=200), st.integers(1, 300)).map(
        lambda t: raw_frame(0x1, t[0].encode())[: t[1]]
    ),
)

#: What the server can say besides Results, and the event each must become.
SERVER_MESSAGES: dict[str, tuple[str | bytes, type[Event]]] = {
    "metadata": (METADATA_JSON, Metadata),
    "utterance_end": (UTTERANCE_END_JSON, UtteranceEnd),
    "speech_started": (SPEECH_STARTED_JSON, SpeechStarted),
    "unknown": (UNKNOWN_JSON, UnknownMessage),
    "malformed": ('{"type": "Results", nope', MalformedMessage),
    "not_an_object": ("[1, 2]", MalformedMessage),
    "binary": (b"\x00\x01\x02", MalformedMessage),
}

SERVER_CLOSES = [
    # code, reason, error_code, retryable
    (1000, "", None, False),
    (1011, NET0001_REASON, "NET-0001", True),
    (1008, DATA0000_REASON, "DATA-0000", False),
]


class ConnectionMachine(RuleBasedStateMachine):
    """Random client commands and server inputs; the model checks every invariant after each."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.config = Config()
        self.client = new_client(self.config)
        self.server = FakeServer(auto_accept=False)
        self.patience = 0
        self.steps = 0
        # what the client emitted, with the virtual time it was drained at
        self.log: list[Event] = []
        self.log_times: list[float] = []
        # the model: what the server must have received, in order
        self.expected: list[str] = []
        self.audio = bytearray()
        #: (channel, time of the call, seconds of audio sent before it)
        self.finalizes: list[tuple[int | None, float, float]] = []
        self.open_time: float | None = None
        self.last_data: float | None = None
        self.rank = 0
        self.closed_seen = False
        # garbage may leave the client mid-frame: later server frames then read as noise
        self.desynced = False

    @initialize(
        config=CONFIGS,
        patience=st.integers(0, 40),
        phase=st.sampled_from(["idle", "connecting", "open", "open", "open"]),
    )
    def start(self, config: Config, patience: int, phase: str) -> None:
        """Most runs start OPEN (connect + accept), so random steps reach deep states."""
        self.config = config
        self.client = new_client(config)
        self.patience = patience
        if phase != "idle":
            self.connect()
        if phase == "open":
            self.server_accepts()

    # --------------------------------------------------------------------------- plumbing

    def patient(self) -> bool:
        """Rules that end the session wait a drawn number of steps, so sessions get long."""
        return self.steps >= self.patience

    def server_open(self) -> bool:
        return self.server.ws.state is ConnectionState.OPEN

    def server_waiting(self) -> bool:
        return (
            self.server.request is not None and self.server.ws.state is ConnectionState.CONNECTING
        )

    def drain(self) -> list[Event]:
        new = self.client.events()
        for event in new:
            assert not self.closed_seen, f"{event!r} emitted after Closed"
            if isinstance(event, Connected):
                self.open_time = self.now
            if isinstance(event, Closed):
                self.closed_seen = True
            self.log.append(event)
            self.log_times.append(self.now)
        return new

    def record_frames(self, entries: Sequence[tuple[str, Any]], *, timer: bool) -> None:
        keepalives = 0
        for kind, payload in entries:
            if kind not in ("audio", "text"):
                continue
            if timer:
                # the timer only ever sends KeepAlive, and only after an idle interval
                assert kind == "text", f"timer sent {kind}"
                assert payload == {"type": "KeepAlive"}, payload
                interval = self.config.keepalive_interval
                assert interval is not None
                assert self.open_time is not None
                since = max(t for t in (self.open_time, self.last_data) if t is not None)
                assert self.now - since >= interval - EPS, (self.now, since)
                keepalives += 1
                self.expected.append("KeepAlive")
            self.last_data = self.now
        assert keepalives <= 1

    def pump(self, *, timer: bool = False) -> list[Event]:
        """Move bytes both ways until quiet. Server bytes reach the client even once it is
        CLOSED (an adapter would not do that), to show that they are ignored."""
        new: list[Event] = []
        while True:
            moved = False
            out = self.client.data_to_send()
            if out:
                assert not self.closed_seen, "the client wrote after Closed"
                before = len(self.server.received)
                self.server.feed(out)
                self.record_frames(self.server.received[before:], timer=timer)
                moved = True
            new += self.drain()
            back = self.server.take()
            if back:
                self.client.receive_data(back, now=self.now)
                moved = True
            if not moved:
                break
        new += self.drain()
        return new

    def snapshot(self) -> tuple[object, ...]:
        c = self.client
        return (
            c.state,
            c.get_timer(),
            c.audio_bytes_sent,
            c.pending_finalizes,
            c.closed,
            c.request_id,
            c.should_close_transport,
        )

    def attempt(self, legal: bool, call: Callable[[], object]) -> bool:
        """Make a call; if the state forbids it, it must raise and change nothing."""
        if legal:
            call()
            return True
        state = self.client.state
        before = self.snapshot()
        with pytest.raises(LocalProtocolError) as info:
            call()
        assert info.value.state is state
        assert self.snapshot() == before
        assert self.client.data_to_send() == b""
        assert self.client.events() == []
        return False

    def expect_message(self, was: State, events: Sequence[Event], cls: type[Event]) -> Event | None:
        """A message the server sent to a live client arrives as exactly one event."""
        if was not in LIVE or self.desynced:
            return None
        assert events, f"{cls.__name__} was dropped"
        assert isinstance(events[0], cls), events
        # after it: only the Finalizes and utterances it completes (check_utterances)
        assert all(isinstance(e, (FinalizeComplete, Utterance)) for e in events[1:]), events
        return events[0]

    def check_early_timer(self, when: float) -> None:
        """``handle_timer`` before the deadline does nothing at all."""
        before = self.snapshot()
        self.client.handle_timer(now=when)
        assert self.snapshot() == before
        assert self.client.data_to_send() == b""
        assert self.client.events() == []

    # --------------------------------------------------------------------------- client commands

    @rule()
    def connect(self) -> None:
        legal = self.client.state is State.IDLE
        if self.attempt(legal, lambda: self.client.connect(now=self.now)):
            self.pump()
            assert self.client.state is State.CONNECTING
            assert self.server.request is not None
            assert "encoding=linear16" in self.server.request.target

    @rule(chunk=CHUNKS)
    def send_audio(self, chunk: bytes) -> None:
        legal = self.client.state is State.OPEN
        if self.attempt(legal, lambda: self.client.send_audio(chunk, now=self.now)) and chunk:
            self.expected.append("audio")
            self.audio += chunk
        self.pump()

    @rule()
    def send_keepalive(self) -> None:
        legal = self.client.state is State.OPEN
        if self.attempt(legal, lambda: self.client.send_keepalive(now=self.now)):
            self.expected.append("KeepAlive")
        self.pump()

    @rule(channel=st.sampled_from([None, 0]))
    def finalize(self, channel: int | None) -> None:
        legal = self.client.state is State.OPEN
        if self.attempt(legal, lambda: self.client.finalize(channel, now=self.now)):
            self.expected.append("Finalize")
            self.finalizes.append((channel, self.now, len(self.audio) / BYTES_PER_SECOND))
            self.pump()
            want = {"type": "Finalize"} if channel is None else {"type": "Finalize", "channel": 0}
            assert self.server.texts()[-1] == want

    @rule(channel=st.sampled_from([-1, True, "0", 1.0]))
    def finalize_with_a_bad_channel(self, channel: Any) -> None:
        if self.client.state is not State.OPEN:
            self.attempt(False, lambda: self.client.finalize(channel, now=self.now))
            return
        before = self.snapshot()
        with pytest.raises(ValueError, match="channel"):
            self.client.finalize(channel, now=self.now)
        assert self.snapshot() == before
        assert self.client.data_to_send() == b""
        assert self.client.events() == []

    @rule(numerals=st.booleans())
    def configure(self, numerals: bool) -> None:
        legal = self.client.state is State.OPEN
        call = lambda: self.client.configure(features={"numerals": numerals}, now=self.now)  # noqa: E731
        if self.attempt(legal, call):
            self.expected.append("Configure")
            self.pump()
            sent = self.server.texts()[-1]
            assert sent["type"] == "Configure"
            assert sent["features"] == {"numerals": numerals}

    @precondition(lambda self: self.client.state is State.OPEN)
    @rule(
        ops=st.lists(
            st.sampled_from(["audio", "keepalive", "finalize", "configure"]), min_size=2, max_size=6
        ),
        chunk=CHUNKS,
    )
    def burst(self, ops: list[str], chunk: bytes) -> None:
        """Several commands queued before one flush: the wire order is still the call order."""
        c = self.client
        for op in ops:
            if op == "audio":
                c.send_audio(chunk, now=self.now)
                if chunk:
                    self.expected.append("audio")
                    self.audio += chunk
                continue
            if op == "keepalive":
                c.send_keepalive(now=self.now)
                self.expected.append("KeepAlive")
            elif op == "finalize":
                c.finalize(now=self.now)
                self.expected.append("Finalize")
                self.finalizes.append((None, self.now, len(self.audio) / BYTES_PER_SECOND))
            else:
                c.configure(features={"numerals": True}, now=self.now)
                self.expected.append("Configure")
        self.pump()

    @precondition(lambda self: self.patient())
    @rule()
    def close_stream(self) -> None:
        legal = self.client.state is State.OPEN
        if self.attempt(legal, lambda: self.client.close_stream(now=self.now)):
            self.expected.append("CloseStream")
            assert self.client.state is State.CLOSING
        self.pump()

    @precondition(lambda self: self.patient())
    @rule()
    def abort(self) -> None:
        was = self.client.state
        self.client.abort(now=self.now)
        events = self.pump()
        assert self.client.state is State.CLOSED
        if was is State.CLOSED:
            assert events == []
            return
        end = events[-1]
        assert isinstance(end, Closed)
        assert end.initiator == "client"
        assert end.code == (1000 if was in LIVE else 1006)
        if was in LIVE:
            assert self.server.received[-1] == ("close", 1000)

    @rule(seconds=DURATIONS, early=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
    def advance(self, seconds: float, early: float) -> None:
        """Let virtual time pass like an adapter: fire each deadline at its time, then pump."""
        target = self.now + seconds
        for _ in range(10_000):
            deadline = self.client.get_timer()
            if deadline is None or deadline > target:
                break
            assert deadline > self.now, "a deadline in the past was left armed"
            when = self.now + (deadline - self.now) * early
            if when < deadline:
                self.check_early_timer(when)
            self.now = deadline
            self.client.handle_timer(now=self.now)
            after = self.client.get_timer()
            assert after is None or after > self.now, (after, self.now)
            self.pump(timer=True)
        else:
            raise AssertionError("handle_timer() did not move its deadline forward")
        self.check_early_timer(target)
        self.now = target
        self.pump()

    # --------------------------------------------------------------------------- server inputs

    @precondition(lambda self: self.server_waiting())
    @rule()
    def server_accepts(self) -> None:
        was = self.client.state
        self.server.accept()
        events = self.pump()
        if was is State.CONNECTING and not self.desynced:
            assert self.client.state is State.OPEN
            assert [type(e) for e in events] == [Connected]
            assert isinstance(events[0], Connected)
            assert events[0].request_id == "req-1" == self.client.request_id
        elif was is State.CLOSED:
            assert events == []

    @precondition(lambda self: self.server_waiting() and self.patient())
    @rule(status=st.sampled_from([401, 429, 503]))
    def server_rejects(self, status: int) -> None:
        was = self.client.state
        body = json.dumps({"err_code": "NOPE", "err_msg": "no", "request_id": "req-9"})
        self.server.reject(status, body.encode(), [(b"content-type", b"application/json")])
        events = self.pump()
        if was is State.CONNECTING and not self.desynced:
            assert [type(e) for e in events] == [HandshakeRejected, Closed]
            rejected, end = events
            assert isinstance(rejected, HandshakeRejected)
            assert isinstance(end, Closed)
            assert rejected.status_code == status
            assert (rejected.err_code, rejected.err_msg) == ("NOPE", "no")
            assert rejected.request_id == "req-9" == self.client.request_id
            assert (end.code, end.initiator) == (1006, "server")
            assert end.retryable == (status != 401)

    @precondition(lambda self: self.server_open())
    @rule(
        is_final=st.booleans(),
        from_finalize=st.booleans(),
        end=st.floats(min_value=0.0, max_value=1.2),
        start=st.floats(min_value=0.0, max_value=1.0),
        fragment=st.none() | st.integers(1, 80),
    )
    def server_results(
        self, is_final: bool, from_finalize: bool, end: float, start: float, fragment: int | None
    ) -> None:
        was = self.client.state
        stop = end * len(self.audio) / BYTES_PER_SECOND
        begin = start * stop
        text = results_json(
            start=begin,
            duration=stop - begin,
            transcript="hello wörld",
            is_final=is_final,
            from_finalize=from_finalize,
        )
        self.server.send_text(text, fragment=fragment)
        event = self.expect_message(was, self.pump(), Results)
        if event is not None:
            assert isinstance(event, Results)
            assert event.raw == json.loads(text)
            assert (event.is_final, event.from_finalize) == (is_final, from_finalize)

    @precondition(lambda self: self.server_open() and self.finalizes)
    @rule(which=st.integers(0, 1000), is_final=st.booleans())
    def server_answers_finalize(self, which: int, is_final: bool) -> None:
        """Deepgram's reply to a Finalize: ``from_finalize`` Results ending at the audio sent
        before it. Replying to an older Finalize makes a late (stale) reply."""
        was = self.client.state
        _channel, _called, mark = self.finalizes[which % len(self.finalizes)]
        begin = max(0.0, mark - 0.5)
        text = results_json(
            start=begin, duration=mark - begin, is_final=is_final, from_finalize=True
        )
        self.server.send_text(text)
        self.expect_message(was, self.pump(), Results)

    @precondition(lambda self: self.server_open())
    @rule(kind=st.sampled_from(sorted(SERVER_MESSAGES)), fragment=st.none() | st.integers(1, 30))
    def server_sends(self, kind: str, fragment: int | None) -> None:
        was = self.client.state
        payload, cls = SERVER_MESSAGES[kind]
        if isinstance(payload, bytes):
            self.server.send_binary(payload)
        else:
            self.server.send_text(payload, fragment=fragment)
        event = self.expect_message(was, self.pump(), cls)
        if isinstance(event, MalformedMessage):
            assert event.data == payload
        elif event is not None:
            assert getattr(event, "raw", None) == json.loads(payload)

    @precondition(lambda self: self.server_open())
    @rule(payload=st.binary(max_size=20))
    def server_pings(self, payload: bytes) -> None:
        was = self.client.state
        self.server.ping(payload)
        events = self.pump()
        if was in LIVE and not self.desynced:
            assert events == []
            assert self.server.received[-1] == ("pong", payload)

    @precondition(lambda self: self.server_open() and self.patient())
    @rule(close=st.sampled_from(SERVER_CLOSES))
    def server_closes(self, close: tuple[int, str, str | None, bool]) -> None:
        code, reason, error_code, retryable = close
        was = self.client.state
        self.server.close(code, reason)
        events = self.pump()
        if was not in LIVE or self.desynced:
            return
        assert self.client.state is State.CLOSED
        end = events[-1]
        assert isinstance(end, Closed)
        assert (end.code, end.reason, end.initiator) == (code, reason, "server")
        assert (end.error_code, end.retryable, end.clean) == (error_code, retryable, True)
        assert end.error is None
        # the utterances the close ends, then the Finalizes it cuts short, then Closed
        ended = [e for e in events[:-1] if isinstance(e, Utterance)]
        assert events[: len(ended)] == ended
        assert all(e.reason == "closed" for e in ended)
        assert all(
            isinstance(e, FinalizeComplete) and e.reason == "closed"
            for e in events[len(ended) : -1]
        ), events
        assert self.server.received[-1] == ("close", code)  # echoed

    @precondition(lambda self: self.patient())
    @rule(kind=st.sampled_from(["eof", "empty_read", "garbage"]), garbage=GARBAGE)
    def transport_input(self, kind: str, garbage: bytes) -> None:
        was = self.client.state
        if kind == "eof":
            call: Callable[[], None] = lambda: self.client.receive_eof(now=self.now)  # noqa: E731
        else:
            data = b"" if kind == "empty_read" else garbage
            call = lambda: self.client.receive_data(data, now=self.now)  # noqa: E731
        if not self.attempt(was is not State.IDLE, call):
            return
        events = self.pump()
        if was is State.CLOSED:
            assert events == []
            return
        check_ending(events, self.client)
        if kind != "garbage":
            end = events[-1]
            assert isinstance(end, Closed)
            assert (end.code, end.initiator, end.clean) == (1006, "transport", False)
            assert isinstance(end.error, RemoteProtocolError)
            assert end.retryable == (was is not State.CLOSING)
        elif self.client.state is not State.CLOSED:
            self.desynced = True
        else:
            end = events[-1]
            assert isinstance(end, Closed)
            if end.initiator == "client" and was in LIVE:
                assert self.server.received[-1] == ("close", end.code)

    # --------------------------------------------------------------------------- invariants

    @invariant()
    def check_model(self) -> None:
        self.steps += 1
        c = self.client
        state = c.state
        # state only moves forward
        assert RANK[state] >= self.rank, (state, self.rank)
        self.rank = RANK[state]
        assert c.should_close_transport == (state is State.CLOSED)
        # nothing left unsent or undrained between steps
        assert c.data_to_send() == b""
        assert c.events() == []
        # Closed: exactly once, last, only when CLOSED
        closed = [e for e in self.log if isinstance(e, Closed)]
        if state is State.CLOSED:
            assert len(closed) == 1
            assert self.log[-1] is closed[0] is c.closed
            metadata = [e for e in self.log if isinstance(e, Metadata)]
            assert closed[0].metadata is (metadata[-1] if metadata else None)
        else:
            assert closed == []
            assert c.closed is None
        # the wire order is the call order (KeepAlives the timer sent included)
        assert self.server.types() == self.expected
        # every byte of audio arrived, in order, and is counted
        assert c.audio_bytes_sent == len(self.audio)
        heard = b"".join(p for kind, p in self.server.received if kind == "audio")
        assert heard == bytes(self.audio)
        assert c.audio_seconds_sent == len(self.audio) / BYTES_PER_SECOND
        # no KeepAlive after CloseStream; never idle for longer than keepalive_interval
        if "CloseStream" in self.expected:
            assert "KeepAlive" not in self.expected[self.expected.index("CloseStream") :]
        interval = self.config.keepalive_interval
        if state is State.OPEN and interval is not None:
            assert self.open_time is not None
            since = max(t for t in (self.open_time, self.last_data) if t is not None)
            assert self.now - since <= interval + EPS
        # timers are never left in the past
        timer = c.get_timer()
        assert timer is None or timer > self.now, (timer, self.now)
        self.check_finalizes()
        self.check_utterances()

    def check_utterances(self) -> None:
        """Each ``Utterance`` follows the finals it is built from (each used once), is
        never empty, and its reason matches what came just before it."""
        used: set[int] = set()
        at: dict[int, int] = {id(e): i for i, e in enumerate(self.log)}
        for i, event in enumerate(self.log):
            if not isinstance(event, Utterance):
                continue
            assert event.transcript.strip()
            assert event.results
            for results in event.results:
                assert results.is_final
                assert results.transcript.strip()
                assert at[id(results)] < i
                assert id(results) not in used
                used.add(id(results))
            last = at[id(event.results[-1])]
            between = self.log[last + 1 : i]
            if event.reason == "speech_final":
                # right after its last final (and the Finalizes that final completed)
                assert event.results[-1].speech_final
                assert all(isinstance(e, (Utterance, FinalizeComplete)) for e in between)
            elif event.reason == "finalize":
                assert any(
                    isinstance(e, FinalizeComplete) and e.reason != "closed" for e in between
                )
            elif event.reason == "timeout":
                # the backstop's deadline passed, or the words reached the length cap
                timeout = self.config.utterance_timeout
                cap = self.config.utterance_max_seconds
                waited = timeout is not None and (
                    self.log_times[i] - self.log_times[last] >= timeout - EPS
                )
                assert waited or (cap is not None and event.end - event.start >= cap - EPS)
            elif event.reason == "closed":
                rest = self.log[i + 1 :]  # drained with the Closed that follows
                assert rest
                assert isinstance(rest[-1], Closed), rest
                assert all(isinstance(e, (Utterance, FinalizeComplete)) for e in rest[:-1]), rest
        if self.client.state is State.CLOSED:
            # no final is dropped: each that reaches past the finals before it (a repeat
            # of words already taken is not new) went into exactly one utterance
            reach = float("-inf")
            for e in self.log:
                if isinstance(e, Results) and e.is_final and e.transcript.strip():
                    if e.end > reach + 0.01:
                        assert id(e) in used, e
                    reach = max(reach, e.end)

    def check_finalizes(self) -> None:
        done = [
            (t, e)
            for t, e in zip(self.log_times, self.log, strict=True)
            if isinstance(e, FinalizeComplete)
        ]
        assert len(done) <= len(self.finalizes)
        timeout = self.config.finalize_timeout
        for (at, event), (channel, called, _mark) in zip(done, self.finalizes, strict=False):
            assert event.channel == channel
            assert event.reason in REASONS
            if event.reason == "timeout":
                assert timeout is not None
                assert at - called >= timeout - EPS
        assert self.client.pending_finalizes == len(self.finalizes) - len(done)
        if self.client.state is State.CLOSED:
            assert len(done) == len(self.finalizes)
        elif timeout is not None:
            # nothing still waiting is past its deadline
            for _channel, called, _mark in self.finalizes[len(done) :]:
                assert called + timeout > self.now
        for i, logged in enumerate(self.log):
            if not isinstance(logged, FinalizeComplete):
                continue
            if logged.reason == "closed":
                following = self.log[i + 1]
                assert isinstance(following, Closed) or (
                    isinstance(following, FinalizeComplete) and following.reason == "closed"
                )
            elif logged.reason == "from_finalize":
                previous = self.log[i - 1]
                assert isinstance(previous, Results)
                assert previous.from_finalize


TestConnectionMachine = ConnectionMachine.TestCase
TestConnectionMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ======================================================================= 2. chunking invariance

FIXED_NONCE = base64.b64encode(b"dgproto-fixed-16")

#: Server actions: ("text", payload, fragment size or None), ("ping", payload), ("binary", data).
Action = tuple[Any, ...]

RICH_SESSION: list[Action] = [
    ("text", results_json(start=0.0, duration=0.5, transcript="hel", is_final=False), None),
    ("text", results_json(start=0.0, duration=1.0, transcript="hello wörld ✓ 日本"), None),
    ("text", results_json(start=1.0, duration=0.5, transcript="fragmented text"), 7),
    ("ping", b"are you there"),
    ("text", UTTERANCE_END_JSON, None),
    ("text", SPEECH_STARTED_JSON, None),
    ("text", results_json(start=1.5, duration=0.25, transcript="done", from_finalize=True), None),
    ("text", fixture_text("listen_v1_results_final_speech_final_wire_capture.json"), 3),
]

ACTIONS = st.one_of(
    st.builds(
        lambda text, frag: ("text", text, frag),
        st.sampled_from(
            [
                results_json(start=0.0, duration=0.3, transcript="ä", is_final=False),
                UTTERANCE_END_JSON,
                SPEECH_STARTED_JSON,
                UNKNOWN_JSON,
                "not json at all: ü",
                "",
            ]
        ),
        st.none() | st.integers(1, 20),
    ),
    st.builds(lambda p: ("ping", p), st.binary(max_size=10)),
    st.builds(lambda d: ("binary", d), st.binary(max_size=10)),
)


def fixed_nonce() -> Any:
    """The client's Sec-WebSocket-Key is random; pin it so a recorded 101 can be replayed."""
    return mock.patch.object(wsproto.handshake, "generate_nonce", return_value=FIXED_NONCE)


def connected_client() -> ListenConnection:
    with fixed_nonce():
        client = new_client()
        client.connect(now=0.0)
    return client


def record_session(actions: Sequence[Action]) -> tuple[bytes, list[Event]]:
    """Run a live session against FakeServer; return what the server sent and the events."""
    client = connected_client()
    server = FakeServer(request_id="req-chunks")
    stream = bytearray()
    events: list[Event] = []

    def pump() -> None:
        while True:
            out = client.data_to_send()
            if out:
                server.feed(out)
            back = server.take()
            if back and not client.should_close_transport:
                stream.extend(back)
                client.receive_data(back, now=0.0)
            else:
                back = b""
            if not out and not back:
                break
        events.extend(client.events())

    pump()
    assert client.state is State.OPEN
    for action in actions:
        if action[0] == "text":
            server.send_text(action[1], fragment=action[2])
        elif action[0] == "ping":
            server.ping(action[1])
        else:
            server.send_binary(action[1])
        pump()
    client.close_stream(now=0.0)
    pump()
    assert server.texts()[-1] == {"type": "CloseStream"}
    server.send_text(METADATA_JSON)
    server.close(1000)
    pump()
    assert client.should_close_transport
    return bytes(stream), events


def replay(pieces: Iterable[bytes]) -> list[Event]:
    """Feed a recorded server stream to a fresh client, piece by piece."""
    client = connected_client()
    client.data_to_send()
    events: list[Event] = []
    for piece in pieces:
        client.receive_data(piece, now=0.0)
        if client.state is State.OPEN:
            client.close_stream(now=0.0)  # as the recorded client did, once it could
        client.data_to_send()
        events += client.events()
    assert client.state is State.CLOSED
    return events


def event_keys(events: Sequence[Event]) -> list[tuple[object, ...]]:
    keys: list[tuple[object, ...]] = []
    for e in events:
        name = type(e).__name__
        if isinstance(e, Closed):
            keys.append((name, e.code, e.reason, e.initiator, e.clean, e.error_code))
        else:
            keys.append((name, getattr(e, "raw", None), e))
    return keys


def test_rich_session_gives_the_same_events_whole_and_byte_by_byte() -> None:
    stream, live = record_session(RICH_SESSION)
    names = [type(e).__name__ for e in live]
    assert names[0] == "Connected"
    assert isinstance(live[0], Connected)
    assert live[0].request_id == "req-chunks"
    assert names[-2:] == ["Metadata", "Closed"]
    assert {"Results", "UtteranceEnd", "SpeechStarted"} <= set(names)
    expected = event_keys(live)
    assert event_keys(replay([stream])) == expected
    assert event_keys(replay(stream[i : i + 1] for i in range(len(stream)))) == expected


@settings(max_examples=50, deadline=None)
@given(extra=st.lists(ACTIONS, max_size=6), data=st.data())
def test_any_split_of_a_recorded_session_gives_the_same_events(
    extra: list[Action], data: st.DataObject
) -> None:
    stream, live = record_session(RICH_SESSION + extra)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40), label="cuts")
    assert event_keys(replay(split_at(stream, cuts))) == event_keys(live)


# ========================================================================= 3. garbage in


class Opened:
    """A client after a good handshake, with the FakeServer that accepted it."""

    def __init__(self, config: Config | None = None) -> None:
        self.client = new_client(config)
        self.server = FakeServer()
        self.client.connect(now=0.0)
        self.server.feed(self.client.data_to_send())
        self.client.receive_data(self.server.take(), now=0.0)
        connected = self.client.events()
        assert [type(e) for e in connected] == [Connected]
        assert self.client.state is State.OPEN

    def feed(self, pieces: Iterable[bytes]) -> list[Event]:
        """Hand bytes straight to the client; its output goes to the server."""
        events: list[Event] = []
        for piece in pieces:
            self.client.receive_data(piece, now=0.0)
            self.server.feed(self.client.data_to_send())
            events += self.client.events()
        return events

    def still_usable(self) -> None:
        """An OPEN client after odd input can still send, then end cleanly."""
        c = self.client
        c.send_audio(b"\x01\x02", now=1.0)
        c.finalize(now=1.0)
        self.server.feed(c.data_to_send())
        assert self.server.received[-2:] == [("audio", b"\x01\x02"), ("text", {"type": "Finalize"})]
        c.receive_eof(now=2.0)
        events = c.events()
        assert isinstance(events[-1], Closed)
        assert [type(e) for e in events] == [FinalizeComplete, Closed]
        assert c.data_to_send() == b""


@settings(max_examples=150, deadline=None)
@given(
    garbage=st.one_of(
        st.binary(min_size=1, max_size=300),
        st.binary(max_size=60).map(lambda b: b"HTTP/1.1 " + b),
        st.binary(max_size=60).map(lambda b: b"HTTP/1.1 101 Switching Protocols\r\n" + b),
    ),
    cuts=st.lists(st.integers(0, 300), max_size=5),
)
def test_garbage_while_connecting_never_raises(garbage: bytes, cuts: list[int]) -> None:
    client = new_client()
    client.connect(now=0.0)
    client.data_to_send()
    events: list[Event] = []
    for piece in split_at(garbage, cuts):
        client.receive_data(piece, now=0.0)
        events += client.events()
    check_ending(events, client)
    if client.state is State.CLOSED:
        assert client.data_to_send() == b""  # no WebSocket yet: no close frame
        if not any(isinstance(e, HandshakeRejected) for e in events):
            assert events[-1] == client.closed
            assert client.closed is not None
            assert isinstance(client.closed.error, RemoteProtocolError)
    else:
        assert client.state is State.CONNECTING
        assert events == []
    client.receive_eof(now=1.0)
    events += client.events()
    check_ending(events, client)
    assert client.state is State.CLOSED


@settings(max_examples=50, deadline=None)
@given(cut=st.integers(0, 400))
def test_truncated_handshake_response_waits_then_eof_is_a_protocol_error(cut: int) -> None:
    client = new_client()
    server = FakeServer()
    client.connect(now=0.0)
    server.feed(client.data_to_send())
    response = server.take()
    cut = min(cut, len(response) - 1)
    client.receive_data(response[:cut] or b"H", now=0.0)
    assert client.state is State.CONNECTING
    assert client.events() == []
    client.receive_eof(now=0.0)
    events = client.events()
    check_ending(events, client)
    end = events[-1]
    assert isinstance(end, Closed)
    assert (end.initiator, end.code, end.retryable) == ("transport", 1006, True)


#: Frames that break RFC 6455, and the close code the client must answer with.
VIOLATIONS: list[tuple[str, bytes, int]] = [
    ("rsv1 without extension", raw_frame(0x1, b"{}", rsv=4), 1002),
    ("rsv3", raw_frame(0x2, b"x", rsv=1), 1002),
    ("reserved data opcode", raw_frame(0x3, b"x"), 1002),
    ("reserved control opcode", raw_frame(0xB, b""), 1002),
    ("masked frame from server", raw_frame(0x1, b"{}", mask=b"abcd"), 1002),
    ("fragmented ping", raw_frame(0x9, b"x", fin=False), 1002),
    ("ping longer than 125", raw_frame(0x9, b"x" * 126), 1002),
    ("continuation out of nowhere", raw_frame(0x0, b"x"), 1002),
    (
        "new message inside a fragmented one",
        raw_frame(0x1, b"a", fin=False) + raw_frame(0x1, b"b"),
        1002,
    ),
    ("close with one byte", raw_frame(0x8, b"\x03"), 1002),
    ("close code below 1000", raw_frame(0x8, close_payload(999)), 1002),
    ("close code 1005", raw_frame(0x8, close_payload(1005)), 1002),
    ("close code 1006", raw_frame(0x8, close_payload(1006)), 1002),
    ("close code 5000", raw_frame(0x8, close_payload(5000)), 1002),
    ("64-bit length with the top bit", bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big"), 1002),
    ("invalid UTF-8 text", raw_frame(0x1, b'{"type": "\xff"}'), 1007),
    ("truncated UTF-8 at message end", raw_frame(0x1, b"caf\xc3"), 1007),
    ("UTF-16 surrogate in UTF-8", raw_frame(0x1, b"\xed\xa0\x80"), 1007),
    ("invalid UTF-8 close reason", raw_frame(0x8, close_payload(1000, b"\xc3\x28")), 1007),
]


@pytest.mark.parametrize(
    ("frame", "code"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS]
)
def test_protocol_violations_end_with_our_close_and_a_remote_protocol_error(
    frame: bytes, code: int
) -> None:
    opened = Opened()
    opened.client.send_audio(bytes(3200), now=0.0)
    opened.client.finalize(now=0.0)
    opened.server.feed(opened.client.data_to_send())
    events = opened.feed([frame])
    check_ending(events, opened.client)
    assert [type(e) for e in events] == [FinalizeComplete, Closed]
    assert events[0] == FinalizeComplete(channel=None, reason="closed")
    end = events[-1]
    assert isinstance(end, Closed)
    assert (end.code, end.initiator, end.clean) == (code, "client", False)
    assert isinstance(end.error, RemoteProtocolError)
    assert end.error.close_code == code
    assert opened.server.received[-1] == ("close", code)
    assert opened.feed([raw_frame(0x1, b"{}"), b"\x00" * 10]) == []
    assert opened.client.data_to_send() == b""


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(st.sampled_from([UTTERANCE_END_JSON, UNKNOWN_JSON, "nope"]), max_size=3),
    hostile=st.one_of(
        st.binary(min_size=1, max_size=200),
        st.sampled_from([v[1] for v in VIOLATIONS]),
        st.tuples(st.binary(max_size=200), st.integers(0, 210)).map(
            lambda t: raw_frame(0x1, t[0])[: t[1]]
        ),
        st.tuples(st.text(max_size=200), st.integers(0, 210)).map(
            lambda t: raw_frame(0x1, t[0].encode())[: t[1]]
        ),
    ),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_garbage_after_open_never_raises(
    before: list[str], hostile: bytes, cuts: list[int]
) -> None:
    opened = Opened()
    for text in before:
        opened.server.send_text(text)
    good = opened.server.take()
    events = opened.feed(split_at(good + hostile, cuts))
    assert len(events) >= len(before)
    assert [type(e) for e in events[: len(before)]] == [
        {UTTERANCE_END_JSON: UtteranceEnd, UNKNOWN_JSON: UnknownMessage}.get(t, MalformedMessage)
        for t in before
    ]
    check_ending(events, opened.client)
    if opened.client.state is State.OPEN:
        opened.still_usable()
    else:
        end = events[-1]
        assert isinstance(end, Closed)
        if end.initiator == "client":
            assert opened.server.received[-1] == ("close", end.code)
        # after Closed, more input is ignored and nothing is written
        assert opened.feed([good, hostile, b""]) == []
        assert opened.client.data_to_send() == b""


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=80, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda kind, fields: json.dumps({**fields, "type": kind}),
            st.sampled_from(
                ["Results", "Metadata", "UtteranceEnd", "SpeechStarted", "Error", "Other"]
            ),
            st.dictionaries(
                st.sampled_from(
                    ["channel", "channel_index", "start", "duration", "is_final", "alternatives"]
                ),
                JSON_VALUES,
                max_size=4,
            ),
        ),
    ),
    fragment=st.none() | st.integers(1, 10),
)
def test_any_text_message_is_one_event_and_the_stream_goes_on(
    text: str, fragment: int | None
) -> None:
    opened = Opened()
    opened.server.send_text(text, fragment=fragment)
    events = opened.feed([opened.server.take()])
    assert len(events) == 1
    assert not isinstance(events[0], Closed)
    assert opened.client.state is State.OPEN
    opened.still_usable()


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(1, 300),
    size=st.integers(0, 400),
    binary=st.booleans(),
    fragment=st.none() | st.integers(1, 60),
    cuts=st.lists(st.integers(0, 500), max_size=5),
)
def test_messages_over_max_message_size_close_with_1009(
    limit: int, size: int, binary: bool, fragment: int | None, cuts: list[int]
) -> None:
    opened = Opened(Config(max_message_size=limit))
    if binary:
        opened.server.send_binary(b"b" * size)
    else:
        opened.server.send_text("t" * size, fragment=fragment)  # ASCII: characters == bytes
    opened.server.send_text(UTTERANCE_END_JSON)
    events = opened.feed(split_at(opened.server.take(), cuts))
    check_ending(events, opened.client)
    if size > limit:
        assert [type(e) for e in events] == [Closed]
        end = events[0]
        assert isinstance(end, Closed)
        assert (end.code, end.initiator) == (1009, "client")
        assert isinstance(end.error, RemoteProtocolError)
        assert opened.server.received[-1] == ("close", 1009)
    else:
        assert isinstance(events[0], MalformedMessage)
        if len(UTTERANCE_END_JSON) <= limit:
            assert [type(e) for e in events] == [MalformedMessage, UtteranceEnd]
            opened.still_usable()


# ============================================================================ 4. timers

TIMER_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), DURATIONS, st.floats(0.0, 1.0, exclude_max=True)),
        st.tuples(st.sampled_from(["audio", "finalize", "close_stream", "keepalive"])),
    ),
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(config=CONFIGS, accept=st.booleans(), answer=st.booleans(), ops=TIMER_OPS)
def test_timer_is_never_in_the_past_and_early_calls_do_nothing(
    config: Config, accept: bool, answer: bool, ops: list[tuple[Any, ...]]
) -> None:
    """With a peer that answers (pongs, close echoes) or goes silent after the handshake."""
    client = new_client(config)
    server = FakeServer()
    now = 0.0
    client.connect(now=now)
    server.feed(client.data_to_send())
    if accept:
        client.receive_data(server.take(), now=now)
    events = client.events()

    def exchange() -> None:
        out = client.data_to_send()
        if answer and out:
            server.feed(out)
            back = server.take()
            if back:
                client.receive_data(back, now=now)
                client.data_to_send()

    def unchanged_by(when: float) -> None:
        before = (client.state, client.get_timer(), client.pending_finalizes)
        client.handle_timer(now=when)
        assert (client.state, client.get_timer(), client.pending_finalizes) == before
        assert client.data_to_send() == b""
        assert client.events() == []

    for op in ops:
        if op[0] == "advance":
            target = now + op[1]
            for _ in range(10_000):
                deadline = client.get_timer()
                assert deadline is None or deadline > now
                if deadline is None or deadline > target:
                    break
                when = now + (deadline - now) * op[2]
                if when < deadline:
                    unchanged_by(when)
                now = deadline
                client.handle_timer(now=now)
                after = client.get_timer()
                assert after is None or after > now, (after, now)
                exchange()
                events += client.events()
            else:
                raise AssertionError("handle_timer() did not move its deadline forward")
            unchanged_by(target)
            now = target
        elif client.state is State.OPEN:
            if op[0] == "audio":
                client.send_audio(b"\x00" * 640, now=now)
            elif op[0] == "finalize":
                client.finalize(now=now)
            elif op[0] == "keepalive":
                client.send_keepalive(now=now)
            else:
                client.close_stream(now=now)
            after = client.get_timer()
            assert after is None or after > now
            exchange()
            events += client.events()
    check_ending(events, client, timeouts=True)
    if client.state is State.CLOSED:
        assert client.get_timer() is None
        unchanged_by(now + 1e6)


# Regression (found by these properties): a pong used to count only when it answered the
# *latest* ping, so a live peer whose pongs take longer than ping_interval (but far less
# than ping_timeout) was declared dead. With ping_interval=1, ping_timeout=3 and every pong
# 1.5 s late, the client closed at t=4 though pongs came at t=2.5 and 3.5. Now a pong
# acknowledges its ping and every earlier one, as the websockets library does.
@example(interval=1.0, delay=1.5, timeout=3.0)
@settings(max_examples=30, deadline=None)
@given(
    interval=st.floats(min_value=0.5, max_value=5.0),
    delay=st.floats(min_value=0.0, max_value=5.0),
    timeout=st.floats(min_value=0.5, max_value=10.0),
)
def test_a_peer_that_answers_every_ping_in_time_is_never_declared_dead(
    interval: float, delay: float, timeout: float
) -> None:
    assume(delay < timeout * 0.9)
    client = new_client(
        Config(ping_interval=interval, ping_timeout=timeout, keepalive_interval=None)
    )
    server = FakeServer()
    client.connect(now=0.0)
    server.feed(client.data_to_send())
    client.receive_data(server.take(), now=0.0)
    in_flight: list[tuple[float, bytes]] = []  # pongs on their way back, by arrival time
    now = 0.0
    horizon = 10 * max(interval, timeout)
    while True:
        timer = client.get_timer()
        due = [t for t in (timer, *(t for t, _ in in_flight)) if t is not None]
        if not due or min(due) > horizon:
            break
        now = min(due)
        for arrival, pong in [p for p in in_flight if p[0] <= now]:
            in_flight.remove((arrival, pong))
            client.receive_data(pong, now=now)
        client.handle_timer(now=now)
        server.feed(client.data_to_send())
        answer = server.take()
        if answer:
            in_flight.append((now + delay, answer))
        assert client.state is State.OPEN, (now, client.closed)
    assert sum(kind == "ping" for kind, _ in server.received) >= 2
