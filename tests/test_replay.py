"""Record a session (client core against the emulator core, tapped at the bytes), then
replay it through ``ReplayConnection``: the client must see the same events, in the same
order, at the same points of its audio."""

from __future__ import annotations

import json
import logging
import random

import pytest

from dgproto import Auth, Closed, Config, HandshakeRejected, Results, State
from dgproto._recording import FrameRecord, Recording, RequestRecord, ResponseRecord
from dgproto.emulator import EmulatorConfig, FaultPlan, ReplayConnection, silence, synthesize

from .recording_helpers import (
    KEY,
    RATE,
    TappedPipe,
    client,
    emulator,
    replayer,
    summary,
)


def scenario(pipe: TappedPipe, chunk: int = 640) -> None:
    """Tone speech with interim results, a KeepAlive gap, Finalize, then CloseStream."""
    pipe.stream(synthesize("Hello world. This is a test.", sample_rate=RATE), chunk)
    pipe.advance(7.0)  # idle: KeepAlives (every 3 s) keep the stream open
    pipe.stream(synthesize("After the pause.", sample_rate=RATE), chunk)
    pipe.client.finalize(now=pipe.now)
    pipe.pump()
    pipe.stream(silence(0.3, sample_rate=RATE) + synthesize("Tail.", sample_rate=RATE), chunk)
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)


def recorded() -> tuple[TappedPipe, Recording]:
    pipe = TappedPipe(client(), emulator())
    scenario(pipe)
    return pipe, pipe.recording()


def test_replay_reproduces_events_order_and_audio_positions() -> None:
    original, recording = recorded()
    assert original.client.keepalives_sent >= 2
    kinds = [summary(e)[0] for e in original.events]
    assert {"Connected", "Results", "UtteranceEnd", "FinalizeComplete", "Closed"} <= set(kinds)
    assert any(isinstance(e, Results) and not e.is_final for e in original.events)

    replay = TappedPipe(client(), replayer(recording))
    scenario(replay)
    assert [(round(a, 6), summary(e)) for a, e in replay.timed] == [
        (round(a, 6), summary(e)) for a, e in original.timed
    ]
    assert isinstance(replay.server, ReplayConnection)
    assert replay.server.differences == []
    assert replay.client.request_id == original.client.request_id
    closed = replay.events[-1]
    assert isinstance(closed, Closed)
    assert closed.metadata is not None


def test_a_different_chunk_size_replays_the_same_events() -> None:
    original, recording = recorded()
    replay = TappedPipe(client(), replayer(recording))
    scenario(replay, chunk=1600)  # 50 ms chunks instead of 20 ms
    assert [summary(e) for e in replay.events] == [summary(e) for e in original.events]
    # each event surfaces at the same audio position, give or take one chunk
    for (got, _), (want, _) in zip(replay.timed, original.timed, strict=True):
        assert want - 1e-6 <= got < want + 0.05 + 1e-6
    assert replay.server.differences == []


def test_sent_as_fast_as_possible_still_follows_the_audio_clock() -> None:
    original, recording = recorded()
    replay = TappedPipe(client(), replayer(recording))
    replay.stream(synthesize("Hello world. This is a test.", sample_rate=RATE), realtime=False)
    replay.stream(synthesize("After the pause.", sample_rate=RATE), realtime=False)
    finals_before = [e for e in replay.events if isinstance(e, Results) and e.is_final]
    want = [
        e
        for a, e in original.timed
        if isinstance(e, Results)
        and e.is_final
        and a <= replay.client.audio_seconds_sent + 1e-6
        and not e.from_finalize
    ]
    assert [summary(e) for e in finals_before] == [summary(e) for e in want]


def test_a_rejected_handshake_replays_as_the_same_rejection() -> None:
    pipe = TappedPipe(client(), emulator(EmulatorConfig(faults=FaultPlan(reject_status=429))))
    recording = pipe.recording()
    assert recording.response is not None
    assert recording.response.status == 429
    original = [e for e in pipe.events if isinstance(e, HandshakeRejected)]
    replay = TappedPipe(client(auth=Auth.token("another-key")), replayer(recording))
    rejected = [e for e in replay.events if isinstance(e, HandshakeRejected)]
    assert len(original) == len(rejected) == 1
    assert rejected[0] == original[0]
    assert rejected[0].retryable
    assert rejected[0].body
    assert replay.client.state is State.CLOSED


def test_a_recorded_401_reproduces() -> None:
    pipe = TappedPipe(client(), emulator(EmulatorConfig(accepted_keys=["only-this-one"])))
    recording = pipe.recording()
    replay = TappedPipe(client(), replayer(recording))
    rejected = [summary(e) for e in replay.events if isinstance(e, HandshakeRejected)]
    assert rejected == [summary(e) for e in pipe.events if isinstance(e, HandshakeRejected)]
    assert rejected[0][1] == 401


def test_other_audio_is_followed_on_the_clock_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    _, recording = recorded()
    replay = TappedPipe(client(), replayer(recording))
    with caplog.at_level(logging.INFO, logger="dgproto.emulator.replay"):
        replay.stream(silence(1.0, sample_rate=RATE))  # far less audio, and other bytes
        replay.client.close_stream(now=replay.now)
        replay.advance(1.0)
    server = replay.server
    assert isinstance(server, ReplayConnection)
    assert any("bytes of audio" in d for d in server.differences)
    assert any("skipped a recorded Results" in d for d in server.differences)
    assert any("client sent CloseStream as answered control #1" in d for d in server.differences)
    assert "replay:" in caplog.text
    # what the recording had within the first second came; the close still came
    finals = [e for e in replay.events if isinstance(e, Results) and e.is_final]
    assert all(e.end <= 1.0 + 1e-6 for e in finals)
    closed = replay.events[-1]
    assert isinstance(closed, Closed)
    assert closed.code == 1000


def test_same_length_other_bytes_is_noted() -> None:
    pipe = TappedPipe(client(), emulator())
    audio = synthesize("Hello.", sample_rate=RATE)
    pipe.stream(audio)
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    replay = TappedPipe(client(), replayer(pipe.recording()))
    replay.stream(bytes(len(audio)))
    replay.client.close_stream(now=replay.now)
    replay.advance(1.0)
    assert replay.server.differences == [  # type: ignore[attr-defined]
        "client audio has the recording's length but other bytes"
    ]
    assert [summary(e) for e in replay.events] == [summary(e) for e in pipe.events]


def test_controls_the_recording_lacks_are_answered_as_the_emulator_would() -> None:
    pipe = TappedPipe(client(config=Config(keepalive_interval=None)), emulator())
    pipe.stream(synthesize("Hello.", sample_rate=RATE))
    pipe.advance(0.5)
    pipe.client.configure(features={"numerals": True}, now=pipe.now)  # recorded
    pipe.pump()
    recording = pipe.recording()  # no Finalize, no CloseStream: the session was cut here
    replay = TappedPipe(client(config=Config(keepalive_interval=None)), replayer(recording))
    replay.stream(synthesize("Hello.", sample_rate=RATE))
    replay.advance(0.5)
    replay.client.finalize(now=replay.now)  # recorded answer is for a Configure
    replay.pump()
    replay.client.configure(features={"bogus": 3}, now=replay.now)
    replay.pump()
    replay.client.finalize(now=replay.now)  # nothing new: no reply, completes as covered
    replay.pump()
    replay.client.close_stream(now=replay.now)
    replay.advance(1.0)
    kinds = [summary(e)[0] for e in replay.events]
    assert "ConfigureSuccess" in kinds  # the recorded answer, released by the 1st control
    assert "ConfigureFailure" in kinds  # the emulator's own answer to the 2nd
    completions = [summary(e) for e in replay.events if summary(e)[0] == "FinalizeComplete"]
    assert completions[0] == ("FinalizeComplete", "from_finalize")
    closed = replay.events[-1]
    assert isinstance(closed, Closed)
    assert closed.code == 1000
    assert closed.metadata is not None
    assert len(replay.server.differences) == 4  # type: ignore[attr-defined]


def test_a_client_close_is_echoed_not_replayed() -> None:
    pipe = TappedPipe(client(), emulator())
    pipe.stream(synthesize("Hi.", sample_rate=RATE))
    pipe.client.abort(now=pipe.now)  # the client closes first: the echo is not replayed
    pipe.advance(1.0)
    recording = pipe.recording()
    sent_close = [f for f in recording.frames if f.kind == "close" and f.direction == "send"]
    assert sent_close
    replay = TappedPipe(client(), replayer(recording))
    replay.stream(synthesize("Hi.", sample_rate=RATE))
    replay.client.abort(now=replay.now)
    replay.advance(1.0)
    assert [summary(e) for e in replay.events] == [summary(e) for e in pipe.events]


def _bare(frames: tuple[FrameRecord, ...], status: int = 101) -> Recording:
    return Recording(
        version=1,
        request=RequestRecord(
            t=0.0,
            method="GET",
            path="/v1/listen",
            query=(("encoding", "linear16"), ("sample_rate", "16000")),
            headers=(),
        ),
        response=ResponseRecord(
            t=0.0, status=status, headers=(("sec-websocket-protocol", "token"),)
        ),
        frames=frames,
    )


def test_binary_frames_pings_and_the_browser_subprotocol() -> None:
    frames = (
        FrameRecord(t=0.1, audio=0.0, direction="recv", kind="binary", data=b"\x01"),
        FrameRecord(t=0.1, audio=0.0, direction="recv", kind="ping", data=b""),
        FrameRecord(t=0.2, audio=0.0, direction="recv", kind="text", text="not json"),
        FrameRecord(
            t=0.2,
            audio=0.0,
            direction="recv",
            kind="text",
            text='{"type":"Results","is_final":true,"start":"x"}',
        ),
    )
    server = replayer(_bare(frames))
    replay = TappedPipe(
        client(auth=Auth.subprotocol(KEY), config=Config(ping_interval=0.5)), server
    )
    assert server.subprotocol == "token"
    assert server.messages_sent == 3
    replay.client.send_audio(b"\x00\x00", now=replay.now)
    replay.pump()
    replay.advance(0.6)  # the client pings; the replay answers
    assert replay.client.get_timer() is not None
    assert replay.client.state is State.OPEN


def test_no_handshake_answer_waits_for_the_timeout_and_bad_requests_get_400() -> None:
    recording = Recording(version=1, request=_bare(()).request, response=None)
    server = replayer(recording, handshake_timeout=1.0)
    replay = TappedPipe(client(), server)
    assert "no handshake answer" in server.differences[-1]
    replay.advance(2.0)
    assert replay.client.state is State.CLOSED
    bad = replayer(recording)
    bad.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", now=0.0)
    assert bad.data_to_send().startswith(b"HTTP/1.1 405")
    bad.receive_data(b"more", now=0.0)  # closed: ignored
    bad.handle_timer(now=1.0)
    assert bad.get_timer() is None


def test_an_unparseable_query_falls_back_and_no_fixed_rate_gates_on_controls() -> None:
    recording = _bare(())
    odd = replayer(recording)
    odd.receive_data(
        b"GET /v1/listen?sample_rate=abc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
        now=0.0,
    )
    assert odd.data_to_send().startswith(b"HTTP/1.1 101")
    assert any("differs from the recording" in d for d in odd.differences)
    mp3 = replayer(_bare(()))
    mp3.receive_data(
        b"GET /v1/listen?encoding=mp3 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
        now=0.0,
    )
    assert mp3.audio_seconds_received == 0.0


def reconnecting_replayer(recording: Recording) -> ReplayConnection:
    return ReplayConnection(
        recording=recording,
        reconnected=True,
        config=EmulatorConfig(),
        rng=random.Random(2),
        wall_time=0.0,
        now=0.0,
    )


def test_a_dropped_socket_is_dropped_again_where_it_ended() -> None:
    """A file's socket the client reconnected after (``reconnected=True``): the server
    never closed it, so the replay ends it at the same audio point, with no close."""
    pipe = TappedPipe(client(), emulator(EmulatorConfig(faults=FaultPlan(drop_after_messages=2))))
    pipe.stream(synthesize("Hello world. This is a test.", sample_rate=RATE))
    recording = pipe.recording()
    assert not any(f.kind == "close" for f in recording.frames)
    ended = pipe.events[-1]
    assert isinstance(ended, Closed)
    assert ended.initiator == "transport"
    last = max(f.audio for f in recording.frames if f.audio is not None)

    replay = TappedPipe(client(), reconnecting_replayer(recording))
    replay.stream(synthesize("Hello world. This is a test.", sample_rate=RATE))
    assert [summary(e) for e in replay.events] == [summary(e) for e in pipe.events]
    assert replay.server.should_close_transport
    assert replay.client.audio_seconds_sent == pytest.approx(last, abs=0.021)
    # the same socket replayed as a file's last one (where the recording may just stop)
    # stays open for whatever the client does next
    alone = TappedPipe(client(), replayer(recording))
    alone.stream(synthesize("Hello world. This is a test.", sample_rate=RATE))
    assert not alone.server.should_close_transport
    assert alone.client.state is State.OPEN


def test_a_socket_the_server_closed_or_refused_is_not_dropped() -> None:
    pipe, recording = recorded()  # ends with the server's close frame
    replay = TappedPipe(client(), reconnecting_replayer(recording))
    scenario(replay)
    assert [summary(e) for e in replay.events] == [summary(e) for e in pipe.events]
    rejected = TappedPipe(client(), emulator(EmulatorConfig(faults=FaultPlan(reject_status=503))))
    again = TappedPipe(client(), reconnecting_replayer(rejected.recording()))
    assert [summary(e) for e in again.events] == [summary(e) for e in rejected.events]


def test_replay_config_takes_one_recording_or_several() -> None:
    _pipe, recording = recorded()
    assert EmulatorConfig(replay=[recording]).replay is recording
    both = EmulatorConfig(replay=[recording, recording]).replay
    assert both == (recording, recording)
    # driven directly (no socket server to pick by connection order): the first socket
    direct = ReplayConnection(
        config=EmulatorConfig(replay=both), rng=random.Random(2), wall_time=0.0, now=0.0
    )
    assert direct.recording is recording
    for bad in ([], [recording, "x"], "file.jsonl"):
        with pytest.raises(TypeError, match="replay must be"):
            EmulatorConfig(replay=bad)  # type: ignore[arg-type]


def test_replay_connection_needs_a_recording() -> None:
    with pytest.raises(ValueError, match="needs a recording"):
        ReplayConnection()
    with pytest.raises(TypeError):
        EmulatorConfig(replay="file.jsonl")  # type: ignore[arg-type]


def test_an_empty_binary_frame_is_the_deprecated_close_stream() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

    pipe = TappedPipe(client(), emulator())
    pipe.stream(synthesize("Hi.", sample_rate=RATE))
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    server = replayer(pipe.recording())
    ws = WSConnection(ConnectionType.CLIENT)
    target = "/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
    server.receive_data(ws.send(Request(host="x", target=target + "&utterance_end_ms=1000")), now=0)
    ws.receive_data(server.data_to_send())
    assert isinstance(next(ws.events()), AcceptConnection)
    server.receive_data(ws.send(BytesMessage(data=synthesize("Hi.", sample_rate=RATE))), now=0)
    server.receive_data(ws.send(BytesMessage(data=b"")), now=0)
    ws.receive_data(server.data_to_send())
    events = list(ws.events())
    assert isinstance(events[-1], CloseConnection)
    assert events[-1].code == 1000
    assert server.differences == []
    # before echoing the close: a pong, a ping (not answered now) and a late text
    server.receive_data(b"\x8a\x80\x00\x00\x00\x00" + b"\x89\x80\x00\x00\x00\x00", now=0)
    server.receive_data(b"\x81\x82\x00\x00\x00\x00{}", now=0)
    assert server.data_to_send() == b""
    assert server.received_text_messages[-1].text == "{}"


def _upgrade(target: str = "/v1/listen?encoding=linear16&sample_rate=16000") -> bytes:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import Request

    return WSConnection(ConnectionType.CLIENT).send(Request(host="x", target=target))


def test_a_recorded_rejection_without_length_or_body() -> None:
    recording = _bare((), status=401)
    server = replayer(recording)
    server.receive_data(_upgrade(), now=0.0)
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"content-length: 0" in answer.lower()
    assert server.should_close_transport


def test_odd_client_text_and_frames_after_the_close() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

    server = replayer(_bare(()))
    ws = WSConnection(ConnectionType.CLIENT)
    server.receive_data(ws.send(Request(host="x", target="/v1/listen?sample_rate=16000")), now=0)
    ws.receive_data(server.data_to_send())
    assert isinstance(next(ws.events()), AcceptConnection)
    server.receive_data(ws.send(TextMessage(data="not json")), now=0)
    server.receive_data(ws.send(TextMessage(data='{"type":"Configure","features":{}}')), now=0)
    ws.receive_data(server.data_to_send())
    answers = [json.loads(e.data)["type"] for e in ws.events() if isinstance(e, TextMessage)]
    assert answers == ["Error", "ConfigureSuccess"]  # the emulator's SchemaError, then ours
    tail = ws.send(CloseConnection(code=1000)) + b"\x89\x80\x00\x00\x00\x00"  # + a ping
    server.receive_data(tail, now=0)
    assert server.should_close_transport
    assert server.close_received == (1000, "")
    assert [m.type for m in server.received_text_messages] == [None, "Configure"]
    late = replayer(_bare(()))
    late.receive_data(_upgrade() + b"\x89\x80\x00\x00\x00\x00", now=0)  # ping, unaccepted
    assert late.data_to_send().startswith(b"HTTP/1.1 101")
