"""FluxConnection against a real wsproto server, on a virtual clock; Flux's messages and
options; chunking invariance and a hypothesis state machine for the Flux lifecycle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from wsproto.events import AcceptConnection

from dgproto import (
    Closed,
    Config,
    ConfigureFailure,
    ConfigureSuccess,
    Connected,
    Event,
    FluxConnected,
    FluxConnection,
    FluxOptions,
    HandshakeRejected,
    ListenConnection,
    LocalProtocolError,
    MalformedMessage,
    RemoteProtocolError,
    ServerError,
    ServerWarning,
    State,
    StreamConnection,
    TurnInfo,
    TurnWord,
    UnknownMessage,
)
from dgproto._flux_messages import (
    decode_flux_message,
    encode_flux_configure,
    encode_force_end_turn,
)
from dgproto._options import Auth
from dgproto._state import FLUX_TRANSITIONS, Input

from .helpers import FakeServer, FluxPair, fixture_text, kinds

SESSION = "flux_v2_listen_session_frames_dotnet_fixture.json"
FLUX_FIXTURES = [
    "flux_v2_listen_connected.json",
    "flux_v2_listen_configure_success.json",
    "flux_v2_listen_turninfo_start_of_turn.json",
    "flux_v2_listen_turninfo_update_with_words.json",
    "flux_v2_listen_turninfo_eager_end_of_turn.json",
    "flux_v2_listen_turninfo_end_of_turn.json",
]


def session_frames() -> list[str]:
    frames: list[str] = json.loads(fixture_text(SESSION))["frames"]
    return frames


def turn(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "TurnInfo",
        "request_id": "req-1",
        "event": "Update",
        "turn_index": 0,
        "audio_window_start": 0.0,
        "audio_window_end": 0.24,
        "transcript": "",
        "words": [],
        "end_of_turn_confidence": 0.5,
        "sequence_id": 1,
    }
    base.update(fields)
    return base


# ---------------------------------------------------------------------------- handshake


def test_connect_opens_v2_listen_with_the_flux_query_and_auth() -> None:
    options = FluxOptions(
        model="flux-general-en",
        encoding="linear16",
        sample_rate=16000,
        eot_threshold=0.8,
        eager_eot_threshold=0.5,
        eot_timeout_ms=6000,
        keyterm=["Deepgram", "Flux model"],
    )
    pair = FluxPair(options=options)
    request = pair.server.request
    assert request is not None
    assert request.target == (
        "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
        "&eot_threshold=0.8&eager_eot_threshold=0.5&eot_timeout_ms=6000"
        "&keyterm=Deepgram&keyterm=Flux%20model"
    )
    assert dict(request.extra_headers)[b"authorization"] == b"Token test-key"
    [connected] = pair.log
    assert isinstance(connected, Connected)
    assert pair.client.request_id == "req-1"
    assert pair.client.state is State.OPEN
    assert repr(pair.client) == "<FluxConnection localhost/v2/listen state=OPEN>"


def test_flux_connected_message_is_an_event_and_fills_a_missing_request_id() -> None:
    server = FakeServer(auto_accept=False)
    pair = FluxPair(server=server)
    server.out += server.ws.send(AcceptConnection())  # no dg-request-id header
    pair.pump()
    assert pair.client.request_id is None
    server.send_text(fixture_text("flux_v2_listen_connected.json"))
    [event] = pair.pump()
    assert event == FluxConnected(request_id="019f4c80-a061-72f2-9780-89f9950b1adb", sequence_id=0)
    assert pair.client.request_id == "019f4c80-a061-72f2-9780-89f9950b1adb"
    server.send_json({"type": "Connected", "request_id": "another", "sequence_id": 0})
    pair.pump()
    assert pair.client.request_id == "019f4c80-a061-72f2-9780-89f9950b1adb"


def test_flux_takes_only_flux_options() -> None:
    with pytest.raises(TypeError, match="FluxOptions"):
        FluxConnection(options=object())  # type: ignore[arg-type]


def test_a_rejected_flux_handshake_is_reported_like_v1() -> None:
    server = FakeServer(auto_accept=False)
    pair = FluxPair(server=server)
    body = b'{"err_code":"Bad Request","err_msg":"bad model","request_id":"r"}'
    server.reject(400, body)
    events = pair.pump()
    assert kinds(events) == ["HandshakeRejected", "Closed"]
    rejected = events[0]
    assert isinstance(rejected, HandshakeRejected)
    assert (rejected.status_code, rejected.err_msg, rejected.request_id) == (400, "bad model", "r")


def test_both_connections_offer_the_shared_driver_surface() -> None:
    flux = FluxConnection(options=FluxOptions(model="flux-general-en"))
    assert isinstance(flux, StreamConnection)
    assert isinstance(ListenConnection(), StreamConnection)
    assert flux.audio_seconds_sent is None  # no encoding: no fixed byte rate
    for name in ("finalize", "send_keepalive", "keepalives_sent", "pending_finalizes"):
        assert not hasattr(flux, name)


# ---------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", FLUX_FIXTURES)
def test_every_flux_fixture_decodes_with_every_field(name: str) -> None:
    text = fixture_text(name)
    obj = json.loads(text)
    event = decode_flux_message(text)
    assert not isinstance(event, (UnknownMessage, MalformedMessage))
    assert event.raw == obj  # type: ignore[attr-defined]
    for key, value in obj.items():
        if key in ("type", "words"):
            continue
        got = getattr(event, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key
    if isinstance(event, TurnInfo):
        assert [attrs.asdict(w, filter=lambda a, _: a.name != "raw") for w in event.words] == (
            obj["words"]
        )


def test_the_recorded_flux_session_decodes_through_the_connection() -> None:
    pair = FluxPair()
    frames = session_frames()
    for frame in frames:
        pair.server.send_text(frame)
    events = pair.pump()
    assert len(events) == len(frames) == 105
    assert [e.sequence_id for e in events] == list(range(105))  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    for event in events:
        key = event.event if isinstance(event, TurnInfo) else type(event).__name__
        counts[key] = counts.get(key, 0) + 1
    assert counts == {
        "FluxConnected": 1,
        "ConfigureSuccess": 1,
        "Update": 100,
        "StartOfTurn": 1,
        "EagerEndOfTurn": 1,
        "EndOfTurn": 1,
    }
    success = events[9]
    assert isinstance(success, ConfigureSuccess)
    assert success.thresholds == {
        "eot_threshold": 0.8,
        "eager_eot_threshold": 0.5,
        "eot_timeout_ms": 5000,
    }
    assert (success.keyterms, success.profanity_filter) == (("Deepgram",), False)
    end = events[87]
    assert isinstance(end, TurnInfo)
    assert end.event == "EndOfTurn"
    assert (end.audio_window_start, end.audio_window_end) == (0.0, 20.0)
    assert end.end_of_turn_confidence == 0.9136
    assert end.words[-1] == TurnWord(word="America.", confidence=1.0, start=18.16, end=18.4)
    assert end.transcript.endswith("United States of America.")
    nxt = events[88]
    assert isinstance(nxt, TurnInfo)
    assert (nxt.turn_index, nxt.audio_window_start) == (1, 20.0)


def test_newer_protocol_fields_decode() -> None:
    event = decode_flux_message(
        json.dumps(
            turn(
                event="EndOfTurn",
                trigger="manual",
                languages=["en", "es"],
                languages_hinted=["en"],
                words=[{"word": "Hola", "confidence": 0.9}],
            )
        )
    )
    assert isinstance(event, TurnInfo)
    assert event.trigger == "manual"
    assert event.languages == ("en", "es")
    assert event.languages_hinted == ("en",)
    assert event.words == (TurnWord(word="Hola", confidence=0.9),)
    success = decode_flux_message(
        json.dumps(
            {
                "type": "ConfigureSuccess",
                "request_id": "r",
                "thresholds": {"eot_threshold": 0.9, "bogus": "x"},
                "keyterms": [],
                "language_hints": ["en", "de"],
                "numerals": True,
                "sequence_id": 4,
            }
        )
    )
    assert success == ConfigureSuccess(
        request_id="r",
        keyterms=(),
        language_hints=("en", "de"),
        numerals=True,
        sequence_id=4,
    )
    assert isinstance(success, ConfigureSuccess)
    assert success.thresholds == {"eot_threshold": 0.9}
    warning = decode_flux_message(
        '{"type":"Warning","request_id":"r","sequence_id":7,"code":"SLOW_AUDIO","description":"d"}'
    )
    assert warning == ServerWarning(
        code="SLOW_AUDIO", description="d", request_id="r", sequence_id=7
    )
    failure = decode_flux_message(
        '{"type":"ConfigureFailure","request_id":"r","sequence_id":3,"code":"C","description":"d"}'
    )
    assert failure == ConfigureFailure(request_id="r", code="C", description="d", sequence_id=3)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event": None}, "TurnInfo.event: is null"),
        ({"turn_index": "0"}, "TurnInfo.turn_index: expected an integer, got str"),
        ({"turn_index": 1.5}, "TurnInfo.turn_index: expected an integer"),
        ({"audio_window_end": "1"}, "TurnInfo.audio_window_end: expected a number, got str"),
        ({"transcript": 3}, "TurnInfo.transcript: expected a string, got int"),
        ({"words": {}}, "TurnInfo.words: expected an array, got dict"),
        ({"words": [3]}, "TurnInfo.words[0]: expected an object, got int"),
        ({"words": [{"word": "a"}]}, "TurnInfo.words[0].confidence: missing"),
    ],
)
def test_unusable_required_turn_fields_are_malformed(change: dict[str, Any], error: str) -> None:
    event = decode_flux_message(json.dumps(turn(**change)))
    assert isinstance(event, MalformedMessage)
    assert event.error.startswith(error)


def test_odd_optional_turn_fields_fall_back_and_the_turn_is_kept() -> None:
    event = decode_flux_message(
        json.dumps(
            turn(
                event="SomethingNew",
                words=None,
                end_of_turn_confidence="high",
                sequence_id=None,
                trigger=5,
                languages="en",
                words_extra=1,
            )
        )
    )
    assert isinstance(event, TurnInfo)
    assert event.event == "SomethingNew"  # a new event name is kept as is
    assert (event.words, event.end_of_turn_confidence, event.sequence_id) == ((), None, None)
    assert (event.trigger, event.languages) == (None, ())
    assert event.raw["words_extra"] == 1


@pytest.mark.parametrize(
    "text",
    ["", "nope", "[1]", '{"type": 3}', '{"type":"Results"}', '{"type":"Metadata"}', "{" * 5000],
)
def test_garbage_never_raises(text: str) -> None:
    event = decode_flux_message(text)
    assert isinstance(event, (MalformedMessage, UnknownMessage))


# ---------------------------------------------------------------------------- commands


def test_configure_sends_every_part_and_validates_before_sending() -> None:
    pair = FluxPair()
    pair.client.configure(
        thresholds={"eot_threshold": 1.0, "eager_eot_threshold": 0.3, "eot_timeout_ms": 60000},
        keyterms=["Deepgram"],
        language_hints=["en"],
        numerals=True,
        now=pair.now,
    )
    pair.client.force_end_turn(now=pair.now)
    pair.pump()
    assert pair.server.texts() == [
        {
            "type": "Configure",
            "thresholds": {
                "eot_threshold": 1.0,
                "eager_eot_threshold": 0.3,
                "eot_timeout_ms": 60000,
            },
            "keyterms": ["Deepgram"],
            "language_hints": ["en"],
            "numerals": True,
        },
        {"type": "ForceEndTurn"},
    ]
    assert encode_force_end_turn() == '{"type":"ForceEndTurn"}'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Configure needs"),
        ({"thresholds": {"eot_threshold": 0.4}}, "eot_threshold'] must be a number from 0.5 to 1"),
        ({"thresholds": {"eot_timeout_ms": 60001}}, "from 500 to 60000"),
        ({"thresholds": {"eager_eot_threshold": 0.95}}, "from 0.3 to 0.9"),
        ({"thresholds": {"speed": 1}}, "keys must be among"),
        ({"thresholds": [0.5]}, "thresholds must be a mapping"),
        ({"keyterms": "one"}, "keyterms must be a sequence of str"),
        ({"language_hints": [1]}, r"language_hints\[0\] must be a str"),
        ({"numerals": "yes"}, "numerals must be a bool"),
    ],
)
def test_bad_configure_raises_and_sends_nothing(kwargs: dict[str, Any], message: str) -> None:
    pair = FluxPair()
    with pytest.raises(ValueError, match=message):
        encode_flux_configure(**kwargs)
    with pytest.raises(ValueError, match=message):
        pair.client.configure(**kwargs, now=0)
    assert pair.client.data_to_send() == b""


def test_commands_are_legal_only_while_open() -> None:
    client = FluxConnection(options=FluxOptions(model="flux-general-en"))
    with pytest.raises(LocalProtocolError, match="cannot force_end_turn in state IDLE"):
        client.force_end_turn(now=0)
    pair = FluxPair()
    pair.client.close_stream(now=0)
    for call in (
        lambda: pair.client.force_end_turn(now=0),
        lambda: pair.client.configure(keyterms=["a"], now=0),
        lambda: pair.client.send_audio(b"\0\0", now=0),
    ):
        with pytest.raises(LocalProtocolError) as info:
            call()
        assert info.value.state is State.CLOSING


def test_the_flux_table_has_no_keepalive_or_finalize() -> None:
    assert Input.SEND_KEEPALIVE not in FLUX_TRANSITIONS[State.OPEN]
    assert Input.FINALIZE not in FLUX_TRANSITIONS[State.OPEN]
    assert FLUX_TRANSITIONS[State.OPEN][Input.FORCE_END_TURN] is State.OPEN


# ---------------------------------------------------------------------------- timers


def test_an_idle_flux_stream_sends_no_keepalive_but_pings_when_asked() -> None:
    quiet = FluxPair(config=Config(ping_interval=None))
    assert quiet.client.get_timer() is None  # Config's keepalive_interval is v1's alone
    quiet.advance(60)
    assert quiet.server.received == []
    pinging = FluxPair(config=Config(ping_interval=5.0, ping_timeout=2.0))
    pinging.advance(11)
    assert [kind for kind, _ in pinging.server.received] == ["ping", "ping"]
    pinging.server.answer_pings = False
    events = pinging.advance(10)
    [closed] = events
    assert isinstance(closed, Closed)
    assert (closed.initiator, closed.reason) == ("timeout", "no pong within ping_timeout")


def test_flux_pings_by_default() -> None:
    client = FluxConnection(options=FluxOptions(model="flux-general-en"))
    assert client.config.ping_interval == 5.0
    # v1 pings by default too (a silent peer is noticed) and keeps its KeepAlive
    assert ListenConnection().config.ping_interval == 5.0


def test_audio_seconds_follow_the_flux_encoding() -> None:
    pair = FluxPair(options=FluxOptions(model="m", encoding="mulaw", sample_rate=8000))
    pair.client.send_audio(bytes(4000), now=0)
    assert pair.client.audio_bytes_sent == 4000
    assert pair.client.audio_seconds_sent == 0.5


def test_close_stream_drains_turns_then_closes_cleanly() -> None:
    pair = FluxPair(config=Config(close_timeout=3.0))
    pair.send_audio(0.2)
    pair.client.close_stream(now=pair.now)
    pair.pump()
    assert pair.server.types() == ["audio", "CloseStream"]
    assert pair.client.get_timer() == 3.0
    pair.server.send_json(turn(event="EndOfTurn", transcript="Hi.", trigger="model"))
    pair.server.close(1000)
    events = pair.pump()
    assert kinds(events) == ["TurnInfo", "Closed"]
    closed = events[-1]
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean, closed.initiator, closed.error_code) == (
        1000,
        True,
        "server",
        None,
    )
    assert closed.metadata is None


def test_close_timeout_applies_to_flux() -> None:
    pair = FluxPair(config=Config(close_timeout=1.0))
    pair.client.close_stream(now=0)
    [closed] = pair.advance(1.5)
    assert isinstance(closed, Closed)
    assert closed.initiator == "timeout"


# ---------------------------------------------------------------------------- errors


def test_a_flux_error_is_server_error_then_closed_with_its_code() -> None:
    pair = FluxPair()
    pair.server.send_json(
        {
            "type": "Error",
            "sequence_id": 5,
            "code": "UNPARSABLE_CLIENT_MESSAGE",
            "description": "KeepAlive is not a Flux message",
        }
    )
    pair.server.close(1008, "UNPARSABLE_CLIENT_MESSAGE")
    events = pair.pump()
    assert events == [
        ServerError(
            code="UNPARSABLE_CLIENT_MESSAGE",
            description="KeepAlive is not a Flux message",
            sequence_id=5,
        ),
        Closed(
            code=1008,
            reason="UNPARSABLE_CLIENT_MESSAGE",
            initiator="server",
            error_code="UNPARSABLE_CLIENT_MESSAGE",
            clean=True,
        ),
    ]


def test_a_deepgram_close_code_in_the_reason_wins_over_the_error_code() -> None:
    pair = FluxPair()
    pair.server.send_json({"type": "Error", "code": "INTERNAL_SERVER_ERROR", "description": "x"})
    pair.server.close(1011, "See https://dpgr.am/net0000")
    closed = pair.pump()[-1]
    assert isinstance(closed, Closed)
    assert (closed.error_code, closed.retryable) == ("NET-0000", True)


def test_warnings_unknown_types_garbage_and_sequence_gaps_never_end_the_stream() -> None:
    pair = FluxPair()
    pair.server.send_json(turn(sequence_id=1))
    pair.server.send_json({"type": "Warning", "code": "W", "description": "d", "sequence_id": 9})
    pair.server.send_json({"type": "BrandNew", "sequence_id": 10})
    pair.server.send_text("not json")
    pair.server.send_binary(b"\x01\x02")
    pair.server.send_text(json.dumps(turn(sequence_id=40)), fragment=7)
    events = pair.pump()
    assert kinds(events) == [
        "TurnInfo",
        "ServerWarning",
        "UnknownMessage",
        "MalformedMessage",
        "MalformedMessage",
        "TurnInfo",
    ]
    assert pair.client.state is State.OPEN


def test_a_broken_frame_ends_a_flux_stream_with_a_remote_protocol_error() -> None:
    pair = FluxPair()
    pair.client.receive_data(b"\x8f\x00", now=0)  # an unknown opcode
    closed = pair.client.events()[-1]
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, RemoteProtocolError)
    assert closed.code == 1002


# ---------------------------------------------------------------------------- chunking


def _recorded_server_bytes() -> bytes:
    server = FakeServer()
    pair = FluxPair(server=server)
    del pair
    for frame in session_frames():
        server.send_text(frame)
    server.close(1000)
    return server.take()


def _client_events(chunks: list[bytes]) -> list[Event]:
    server = FakeServer()
    pair = FluxPair(server=server)
    for chunk in chunks:
        pair.client.receive_data(chunk, now=0)
    return pair.log + pair.client.events()


RECORDED = _recorded_server_bytes()
WHOLE = _client_events([RECORDED])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, len(RECORDED)), max_size=60))
def test_events_do_not_depend_on_how_the_bytes_are_cut(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [RECORDED[a:b] for a, b in zip([0, *points], [*points, len(RECORDED)], strict=True)]
    assert _client_events([c for c in chunks if c]) == WHOLE
    assert kinds(WHOLE)[-1] == "Closed"
    assert len(WHOLE) == 1 + 105 + 1


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_garbage_from_the_server_never_raises(garbage: bytes) -> None:
    pair = FluxPair()
    pair.client.receive_data(garbage, now=0)
    pair.client.receive_eof(now=1)
    events = pair.client.events()
    assert kinds(events)[-1] == "Closed"
    assert pair.client.should_close_transport


# ---------------------------------------------------------------------------- state machine

COMMANDS: dict[str, Callable[[FluxConnection, float], None]] = {
    "send_audio": lambda c, now: c.send_audio(b"\x00\x01" * 80, now=now),
    "configure": lambda c, now: c.configure(thresholds={"eot_threshold": 0.8}, now=now),
    "force_end_turn": lambda c, now: c.force_end_turn(now=now),
    "close_stream": lambda c, now: c.close_stream(now=now),
}
INPUTS = {
    "send_audio": Input.SEND_AUDIO,
    "configure": Input.CONFIGURE,
    "force_end_turn": Input.FORCE_END_TURN,
    "close_stream": Input.CLOSE_STREAM,
}


class FluxMachine(RuleBasedStateMachine):
    """Any interleaving of commands, server messages, closes and time keeps the rules:
    illegal commands raise and change nothing, ``Closed`` comes once and last, and every
    TurnInfo the server sent before closing reaches the caller."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = FluxPair(config=Config(ping_interval=3.0, ping_timeout=2.0, close_timeout=4.0))
        self.sent_turns = 0
        self.events: list[Event] = list(self.pair.log)

    def take(self) -> None:
        self.events += self.pair.pump()

    @rule(name=st.sampled_from(sorted(COMMANDS)))
    def command(self, name: str) -> None:
        client = self.pair.client
        legal = INPUTS[name] in FLUX_TRANSITIONS[client.state]
        before = client.state
        if legal:
            COMMANDS[name](client, self.pair.now)
        else:
            with pytest.raises(LocalProtocolError) as info:
                COMMANDS[name](client, self.pair.now)
            assert info.value.state is before is client.state
        self.take()

    @precondition(lambda self: self.pair.server.ws.state.name == "OPEN")
    @rule(
        event=st.sampled_from(["Update", "EndOfTurn", "Weird"]),
        fragment=st.none() | st.integers(1, 40),
    )
    def server_turn(self, event: str, fragment: int | None) -> None:
        if not self.pair.client.should_close_transport:
            self.sent_turns += 1
        self.pair.server.send_text(json.dumps(turn(event=event)), fragment=fragment)
        self.take()

    @precondition(lambda self: self.pair.server.ws.state.name == "OPEN")
    @rule(code=st.sampled_from([1000, 1008, 1011]))
    def server_closes(self, code: int) -> None:
        self.pair.server.close(code)
        self.take()

    @rule(seconds=st.floats(0.0, 5.0))
    def advance(self, seconds: float) -> None:
        self.events += self.pair.advance(seconds)

    @rule()
    def abort(self) -> None:
        self.pair.client.abort(now=self.pair.now)
        self.take()

    @invariant()
    def closed_once_and_last(self) -> None:
        closed = [i for i, e in enumerate(self.events) if isinstance(e, Closed)]
        assert len(closed) <= 1
        if closed:
            assert closed[0] == len(self.events) - 1
            assert self.pair.client.state is State.CLOSED
        turns = sum(isinstance(e, TurnInfo) for e in self.events)
        assert turns == self.sent_turns


FluxMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_flux_state_machine = FluxMachine.TestCase


def test_auth_never_leaks_into_repr() -> None:
    client = FluxConnection(options=FluxOptions(model="m"), auth=Auth.token("sekrit-key"))
    assert "sekrit" not in repr(client)
    assert "sekrit" not in repr(client.options)
