"""ListenConnection against a real wsproto server, on a virtual clock: every rule in DESIGN.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from wsproto.events import BytesMessage, Pong

from dgproto import (
    Closed,
    Config,
    Connected,
    FinalizeComplete,
    HandshakeRejected,
    ListenConnection,
    LiveOptions,
    LocalProtocolError,
    MalformedMessage,
    Metadata,
    RemoteProtocolError,
    Results,
    State,
    UnknownMessage,
    Utterance,
    classify_close,
)
from dgproto._options import Auth

from .helpers import (
    METADATA_JSON,
    NET0001_REASON,
    FakeServer,
    LivePair,
    fixture_text,
    kinds,
    results_json,
)

# ---------------------------------------------------------------------------- handshake


def test_connect_sends_upgrade_with_query_auth_and_user_agent() -> None:
    pair = LivePair(
        options=LiveOptions(
            model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True
        )
    )
    request = pair.server.request
    assert request is not None
    assert request.host == "localhost"
    assert request.target.startswith("/v1/listen?")
    assert "model=nova-3" in request.target
    assert "interim_results=true" in request.target
    headers = dict(request.extra_headers)
    assert headers[b"authorization"] == b"Token test-key"
    assert headers[b"user-agent"].startswith(b"dgproto/")
    assert pair.client.state is State.OPEN
    [connected] = pair.log
    assert isinstance(connected, Connected)
    assert connected.request_id == "req-1"
    assert pair.client.request_id == "req-1"
    assert ("dg-request-id", "req-1") in connected.headers


def test_path_with_query_is_merged_and_empty_query_adds_nothing() -> None:
    client = ListenConnection(options=LiveOptions(model="base"), path="/v1/listen?tag=a")
    client.connect(now=0)
    assert b"GET /v1/listen?tag=a&model=base HTTP/1.1" in client.data_to_send()
    bare = ListenConnection(path="/v1/listen")
    bare.connect(now=0)
    assert b"GET /v1/listen HTTP/1.1" in bare.data_to_send()


def test_subprotocol_auth_is_offered_and_accepted() -> None:
    server = FakeServer(auto_accept=False)
    pair = LivePair(auth=Auth.subprotocol("sekrit"), server=server)
    assert server.request is not None
    assert server.request.subprotocols == ["token", "sekrit"]
    assert not any(k == b"authorization" for k, _ in server.request.extra_headers)
    server.accept(subprotocol="token")
    [connected] = pair.pump()
    assert isinstance(connected, Connected)
    assert connected.subprotocol == "token"


def test_repr_names_state_not_secrets() -> None:
    client = ListenConnection(auth=Auth.token("s3cr3t-key"))
    assert "s3cr3t-key" not in repr(client)
    assert "IDLE" in repr(client)


@pytest.mark.parametrize(
    ("status", "body", "err_code", "retryable"),
    [
        (400, {"err_code": "Bad Request", "err_msg": "bad model"}, "Bad Request", False),
        (
            401,
            {"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."},
            "INVALID_AUTH",
            False,
        ),
        (
            402,
            {"err_code": "ASR_PAYMENT_REQUIRED", "err_msg": "no credits"},
            "ASR_PAYMENT_REQUIRED",
            False,
        ),
        (
            403,
            {"err_code": "INSUFFICIENT_PERMISSIONS", "err_msg": "no"},
            "INSUFFICIENT_PERMISSIONS",
            False,
        ),
        (429, {"err_code": "TOO_MANY_REQUESTS", "err_msg": "later"}, "TOO_MANY_REQUESTS", True),
        (
            503,
            {"error_code": "Service Unavailable", "err_msg": "later"},
            "Service Unavailable",
            True,
        ),
        (500, {"category": "INTERNAL", "message": "boom"}, "INTERNAL", True),
    ],
)
def test_handshake_rejection_is_parsed_then_closed(
    status: int, body: dict[str, str], err_code: str, retryable: bool
) -> None:
    server = FakeServer(auto_accept=False)
    pair = LivePair(server=server)
    payload = json.dumps({**body, "request_id": "body-id"}).encode()
    server.reject(status, payload, headers=[(b"dg-error", b"header detail")])
    events = pair.pump()
    assert kinds(events) == ["HandshakeRejected", "Closed"]
    rejected, closed = events
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == status
    assert rejected.err_code == err_code
    assert rejected.err_msg == (body.get("err_msg") or body.get("message"))
    assert rejected.dg_error == "header detail"
    assert rejected.request_id == "body-id"
    assert rejected.body == payload
    assert rejected.retryable is retryable
    assert isinstance(closed, Closed)
    assert closed.initiator == "server"
    assert closed.retryable is retryable
    assert pair.client.should_close_transport
    assert pair.client.request_id == "body-id"


def test_rejection_prefers_header_request_id_and_tolerates_plain_text_body() -> None:
    server = FakeServer(auto_accept=False)
    pair = LivePair(server=server)
    server.reject(405, b"Method Not Allowed", headers=[(b"dg-request-id", b"hdr-id")])
    rejected, _ = pair.pump()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.request_id == "hdr-id"
    assert rejected.err_code is None
    assert rejected.err_msg is None
    assert rejected.body == b"Method Not Allowed"


def test_rejection_body_delimited_by_eof_and_bounded() -> None:
    pair = LivePair(config=Config(max_message_size=10), server=FakeServer(auto_accept=False))
    pair.client.receive_data(b"HTTP/1.1 401 Unauthorized\r\n\r\n" + b"x" * 50, now=0)
    assert pair.client.events() == []
    pair.client.receive_eof(now=0)
    rejected, closed = pair.client.events()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 401
    assert rejected.body == b"x" * 10
    assert isinstance(closed, Closed)


def test_rejection_body_truncated_by_eof_reports_what_arrived() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    pair.client.receive_data(b'HTTP/1.1 429 Too Many\r\ncontent-length: 100\r\n\r\n{"err', now=0)
    pair.client.receive_eof(now=0)
    rejected, closed = pair.client.events()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.body == b'{"err'
    assert rejected.retryable
    assert isinstance(closed, Closed)


def test_informational_non_101_response_is_a_rejection() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    pair.client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n", now=0)
    rejected, closed = pair.client.events()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 100
    assert isinstance(closed, Closed)


def test_garbage_handshake_response_is_a_remote_protocol_error() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    pair.client.receive_data(b"SSH-2.0-OpenSSH\r\n\r\n", now=0)
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, RemoteProtocolError)
    assert pair.client.should_close_transport


def test_bad_accept_token_is_a_remote_protocol_error() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    pair.client.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: nope\r\n\r\n",
        now=0,
    )
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, RemoteProtocolError)
    assert "accept" in closed.reason


def test_open_timeout() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False), config=Config(open_timeout=5))
    assert pair.client.get_timer() == 5
    assert pair.advance(4.9) == []
    pair.client.handle_timer(now=4.0)  # early: nothing
    assert pair.client.events() == []
    [closed] = pair.advance(0.2)
    assert isinstance(closed, Closed)
    assert closed.initiator == "timeout"
    assert closed.retryable
    assert pair.client.get_timer() is None


def test_no_open_timeout_when_disabled() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False), config=Config(open_timeout=None))
    assert pair.client.get_timer() is None
    pair.client.handle_timer(now=1000)
    assert pair.client.state is State.CONNECTING


def test_eof_during_handshake() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    pair.client.receive_data(b"", now=1)  # b"" is EOF, as from recv()
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert closed.initiator == "transport"
    assert closed.retryable
    assert isinstance(closed.error, RemoteProtocolError)


def test_data_after_101_in_same_chunk_is_processed() -> None:
    server = FakeServer(auto_accept=False)
    pair = LivePair(server=server)
    server.accept()
    server.send_text(results_json(start=0, duration=1, transcript="hi"))
    events = pair.pump()
    assert kinds(events) == ["Connected", "Results"]


# ---------------------------------------------------------------------------- misuse


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.send_audio(b"x", now=0),
        lambda c: c.send_keepalive(now=0),
        lambda c: c.finalize(now=0),
        lambda c: c.configure(features={"numerals": True}, now=0),
        lambda c: c.close_stream(now=0),
        lambda c: c.receive_data(b"x", now=0),
        lambda c: c.receive_eof(now=0),
    ],
)
def test_misuse_before_connect_raises_and_changes_nothing(
    call: Callable[[ListenConnection], object],
) -> None:
    client = ListenConnection()
    with pytest.raises(LocalProtocolError) as info:
        call(client)
    assert info.value.state is State.IDLE
    assert client.state is State.IDLE
    assert client.data_to_send() == b""
    assert client.events() == []


def test_send_before_open_names_the_state() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    with pytest.raises(LocalProtocolError, match="CONNECTING") as info:
        pair.client.send_audio(b"abc", now=0)
    assert info.value.state is State.CONNECTING
    assert pair.client.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        pair.client.connect(now=0)


def test_after_close_stream_audio_and_control_raise() -> None:
    pair = LivePair()
    pair.client.close_stream(now=0)
    for call in (
        lambda: pair.client.send_audio(b"x", now=0),
        lambda: pair.client.send_keepalive(now=0),
        lambda: pair.client.finalize(now=0),
        lambda: pair.client.configure(keyterms=["x"], now=0),
        lambda: pair.client.close_stream(now=0),
    ):
        with pytest.raises(LocalProtocolError, match="CLOSING"):
            call()
    assert pair.client.state is State.CLOSING


def test_after_closed_commands_raise_and_input_is_ignored() -> None:
    pair = LivePair()
    pair.client.abort(now=0)
    pair.pump()
    with pytest.raises(LocalProtocolError, match="CLOSED"):
        pair.client.send_audio(b"x", now=0)
    pair.client.receive_data(b"\x81\x01a", now=0)
    pair.client.receive_eof(now=0)
    pair.client.handle_timer(now=100)
    pair.client.abort(now=0)  # idempotent
    assert pair.client.events() == []
    assert pair.client.data_to_send() == b""


def test_bad_arguments_raise() -> None:
    pair = LivePair()
    with pytest.raises(TypeError):
        pair.client.send_audio("text", now=0)  # type: ignore[arg-type]
    for channel in (-1, True, 1.5):
        with pytest.raises(ValueError, match="channel"):
            pair.client.finalize(channel=channel, now=0)  # type: ignore[arg-type]
    assert pair.client.pending_finalizes == 0
    assert pair.client.data_to_send() == b""


# ---------------------------------------------------------------------------- sending


def test_audio_is_framed_counted_and_empty_chunks_never_sent() -> None:
    pair = LivePair()
    pair.client.send_audio(b"", now=0)
    pair.client.send_audio(memoryview(b""), now=0)
    assert pair.client.data_to_send() == b""
    pair.client.send_audio(b"\x01\x02" * 1600, now=0)
    pair.client.send_audio(bytearray(b"\x03" * 10), now=0)
    pair.client.send_audio(memoryview(b"\x04" * 6), now=0)
    pair.pump()
    assert pair.server.received == [
        ("audio", b"\x01\x02" * 1600),
        ("audio", b"\x03" * 10),
        ("audio", b"\x04" * 6),
    ]
    assert pair.client.audio_bytes_sent == 3216
    assert pair.client.audio_seconds_sent == pytest.approx(3216 / 32000)


def test_audio_seconds_unknown_without_fixed_byte_rate() -> None:
    pair = LivePair(options=LiveOptions(encoding="opus", sample_rate=48000))
    pair.send_audio()
    assert pair.client.audio_bytes_sent == 3200
    assert pair.client.audio_seconds_sent is None


def test_control_messages_keep_their_place_behind_audio() -> None:
    pair = LivePair()
    c = pair.client
    c.send_audio(b"a" * 100, now=0)
    c.finalize(now=0)
    c.send_audio(b"b" * 100, now=0)
    c.finalize(channel=1, now=0)
    c.configure(keyterms=["dgproto"], features={"numerals": True}, now=0)
    c.send_keepalive(now=0)
    c.send_audio(b"c" * 100, now=0)
    c.close_stream(now=0)
    pair.pump()
    assert pair.server.types() == [
        "audio",
        "Finalize",
        "audio",
        "Finalize",
        "Configure",
        "KeepAlive",
        "audio",
        "CloseStream",
    ]
    texts = pair.server.texts()
    assert texts[0] == {"type": "Finalize"}
    assert texts[1] == {"type": "Finalize", "channel": 1}
    assert texts[2] == {
        "type": "Configure",
        "keyterms": ["dgproto"],
        "features": {"numerals": True},
    }


def test_send_audio_behind_a_queued_frame_copies_nothing_twice() -> None:
    """A loop of ``send_audio`` calls before one ``data_to_send`` (the by-hand loop) must
    queue frame after frame, not re-join the whole queue on every call (quadratic)."""
    pair = LivePair()
    c = pair.client
    c.send_keepalive(now=0)
    for _ in range(1000):
        c.send_audio(b"a" * 640, now=0)
    assert len(c._out) == 1001  # the KeepAlive, then each frame once
    pair.server.feed(c.data_to_send())
    assert pair.server.types() == ["KeepAlive"] + ["audio"] * 1000


def test_audio_data_to_send_returns_the_frame_behind_what_was_queued() -> None:
    pair = LivePair()
    c = pair.client
    assert c.audio_data_to_send(b"", now=0) == b""
    alone = c.audio_data_to_send(bytearray(b"a" * 100), now=0)  # nothing queued: the frame
    assert c.data_to_send() == b""
    c.send_keepalive(now=0)
    c.send_audio(b"b" * 100, now=0)
    joined = c.audio_data_to_send(b"c" * 100, now=0)  # KeepAlive, b, then c
    assert c.data_to_send() == b""
    c.finalize(now=0)
    rest = c.audio_data_to_send(memoryview(b""), now=0)  # the queued Finalize only
    for data in (alone, joined, rest):
        pair.server.feed(data)
    assert len(alone) == 2 + 4 + 100  # exactly one masked frame: header, key, payload
    assert pair.server.types() == ["audio", "KeepAlive", "audio", "audio", "Finalize"]
    assert [p for kind, p in pair.server.received if kind == "audio"] == [
        b"a" * 100,
        b"b" * 100,
        b"c" * 100,
    ]
    assert c.audio_bytes_sent == c.stats.audio_bytes_sent == 300
    with pytest.raises(TypeError):
        c.audio_data_to_send("text", now=0)  # type: ignore[arg-type]
    c.close_stream(now=0)
    with pytest.raises(LocalProtocolError, match="CLOSING"):
        c.audio_data_to_send(b"x", now=0)
    pair.server.feed(c.data_to_send())  # the CloseStream alone: the refused frame left nothing
    assert pair.server.types()[5:] == ["CloseStream"]


# ---------------------------------------------------------------------------- KeepAlive


def test_keepalive_only_when_idle() -> None:
    pair = LivePair(config=Config(keepalive_interval=4))
    assert pair.client.get_timer() == 4
    # streaming: audio every second keeps pushing the deadline, no KeepAlive
    for _ in range(10):
        pair.advance(1)
        pair.send_audio()
    assert "KeepAlive" not in pair.server.types()
    assert pair.client.get_timer() == pytest.approx(pair.now + 4)
    # silence: one KeepAlive every 4 s
    pair.advance(12.5)
    assert pair.server.types().count("KeepAlive") == 3
    assert pair.client.keepalives_sent == 3
    pair.client.send_keepalive(now=pair.now)
    assert pair.client.keepalives_sent == 4
    # a control message also counts as activity
    pair.client.finalize(now=pair.now)
    assert pair.client.get_timer() is not None
    pair.pump()
    ka_before = pair.server.types().count("KeepAlive")
    assert ka_before == 4
    pair.advance(3.9)
    assert pair.server.types().count("KeepAlive") == ka_before


def test_keepalive_never_while_connecting_or_closing_and_can_be_disabled() -> None:
    connecting = LivePair(server=FakeServer(auto_accept=False), config=Config(open_timeout=None))
    connecting.advance(60)
    assert connecting.server.received == []
    closing = LivePair(config=Config(close_timeout=None))
    closing.client.close_stream(now=0)
    closing.advance(60)
    assert closing.server.types() == ["CloseStream"]
    disabled = LivePair(config=Config(keepalive_interval=None, ping_interval=None))
    disabled.advance(60)
    assert disabled.server.types() == []
    assert disabled.client.get_timer() is None


# ---------------------------------------------------------------------------- receiving


def test_all_message_kinds_decode_and_unknown_or_malformed_never_end_the_stream() -> None:
    pair = LivePair()
    s = pair.server
    s.send_text(fixture_text("listen_v1_results_final_speech_final_wire_capture.json"))
    s.send_text(fixture_text("listen_v1_speech_started_js_issue241.json"))
    s.send_text(fixture_text("listen_v1_utterance_end_docs.json"))
    s.send_json({"type": "SomethingNew", "x": 1})
    s.send_text("not json at all")
    s.send_binary(b"\x00\x01")
    events = pair.pump()
    assert kinds(events) == [
        "Results",
        "Utterance",  # the final is speech_final: its utterance ends right after it
        "SpeechStarted",
        "UtteranceEnd",  # for the same words: no second Utterance
        "UnknownMessage",
        "MalformedMessage",
        "MalformedMessage",
    ]
    results = events[0]
    assert isinstance(results, Results)
    assert results.is_final
    assert results.speech_final
    utterance = events[1]
    assert isinstance(utterance, Utterance)
    assert (utterance.reason, utterance.results) == ("speech_final", (results,))
    assert utterance.transcript == results.transcript
    assert isinstance(events[4], UnknownMessage)
    assert events[4].raw == {"type": "SomethingNew", "x": 1}
    assert isinstance(events[5], MalformedMessage)
    assert pair.client.state is State.OPEN
    pair.send_audio()
    assert pair.server.types()[-1] == "audio"


def test_next_event_pops_one_at_a_time() -> None:
    pair = LivePair(connect=False)
    pair.client.connect(now=0)
    pair.server.feed(pair.client.data_to_send())
    pair.server.send_text(METADATA_JSON)
    pair.client.receive_data(pair.server.take(), now=0)
    assert isinstance(pair.client.next_event(), Connected)
    assert isinstance(pair.client.next_event(), Metadata)
    assert pair.client.next_event() is None


def test_fragmented_text_is_reassembled() -> None:
    pair = LivePair()
    text = results_json(start=0, duration=1, transcript="hello fragmented world")
    pair.server.send_text(text, fragment=7)
    [results] = pair.pump()
    assert isinstance(results, Results)
    assert results.transcript == "hello fragmented world"


def test_fragmented_binary_is_reassembled_into_one_malformed_message() -> None:
    pair = LivePair()
    pair.server.out += pair.server.ws.send(BytesMessage(data=b"ab", message_finished=False))
    pair.server.out += pair.server.ws.send(BytesMessage(data=b"cd", message_finished=True))
    [event] = pair.pump()
    assert isinstance(event, MalformedMessage)
    assert event.data == b"abcd"


@pytest.mark.parametrize("fragment", [None, 5])
def test_max_message_size_closes_with_1009(fragment: int | None) -> None:
    pair = LivePair(config=Config(max_message_size=20))
    pair.server.send_text("x" * 21, fragment=fragment)
    [closed] = pair.pump()
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    assert isinstance(closed.error, RemoteProtocolError)
    assert closed.error.close_code == 1009
    assert ("close", 1009) in pair.server.received


def test_binary_over_max_message_size_closes_with_1009() -> None:
    pair = LivePair(config=Config(max_message_size=4))
    pair.server.send_binary(b"12345")
    [closed] = pair.pump()
    assert isinstance(closed, Closed)
    assert closed.code == 1009


def test_pings_are_answered() -> None:
    pair = LivePair()
    pair.server.ping(b"abc")
    assert pair.pump() == []
    assert ("pong", b"abc") in pair.server.received


def test_invalid_frame_is_our_close_for_their_fault() -> None:
    pair = LivePair()
    # a masked frame from the server is a protocol violation (RFC 6455 5.1)
    pair.client.receive_data(b"\x81\x81abcd\x00", now=0)
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert closed.initiator == "client"
    assert closed.code == 1002
    assert isinstance(closed.error, RemoteProtocolError)
    pair.server.feed(pair.client.data_to_send())
    assert ("close", 1002) in pair.server.received


def test_json_loads_is_pluggable() -> None:
    seen: list[str] = []

    def loads(text: str) -> object:
        seen.append(text)
        return json.loads(text)

    pair = LivePair(config=Config(json_loads=loads))
    pair.server.send_text(METADATA_JSON)
    pair.pump()
    assert seen == [METADATA_JSON]


# ---------------------------------------------------------------------------- closing


def test_close_stream_drains_results_and_metadata_then_echoes_close() -> None:
    pair = LivePair()
    pair.send_audio(1.0)
    pair.client.close_stream(now=pair.now)
    pair.pump()
    assert pair.client.state is State.CLOSING
    pair.server.send_text(results_json(start=0, duration=1, transcript="tail words"))
    pair.server.send_text(METADATA_JSON)
    pair.server.close(1000)
    events = pair.pump()
    # the drained final had no end signal: the close ends its utterance, before Closed
    assert kinds(events) == ["Results", "Metadata", "Utterance", "Closed"]
    assert isinstance(events[2], Utterance)
    assert (events[2].transcript, events[2].reason) == ("tail words", "closed")
    closed = events[-1]
    assert isinstance(closed, Closed)
    assert (closed.code, closed.initiator, closed.clean, closed.retryable) == (
        1000,
        "server",
        True,
        False,
    )
    assert isinstance(closed.metadata, Metadata)
    assert pair.client.metadata is closed.metadata
    assert pair.client.closed is closed
    assert pair.server.received[-1] == ("close", 1000)  # echoed
    assert pair.client.should_close_transport


def test_close_timeout_sends_our_close_and_keeps_what_arrived() -> None:
    pair = LivePair(config=Config(close_timeout=2))
    pair.client.close_stream(now=0)
    pair.server.send_text(results_json(start=0, duration=1, transcript="kept"))
    pair.pump()
    events = pair.advance(2.5)
    assert kinds(pair.log) == ["Connected", "Results", "Utterance", "Closed"]
    utterance, closed = events
    assert isinstance(utterance, Utterance)
    assert (utterance.transcript, utterance.reason) == ("kept", "closed")
    assert isinstance(closed, Closed)
    assert closed.initiator == "timeout"
    assert not closed.clean
    assert ("close", 1000) in pair.server.received


def test_no_close_timeout_when_disabled() -> None:
    pair = LivePair(config=Config(close_timeout=None, keepalive_interval=None, ping_interval=None))
    pair.client.close_stream(now=0)
    assert pair.client.get_timer() is None


@pytest.mark.parametrize(
    ("code", "reason", "error_code", "retryable"),
    [
        (1011, NET0001_REASON, "NET-0001", True),
        (
            1011,
            "Deepgram did not provide a response message within the timeout window. "
            "See https://dpgr.am/net0000",
            "NET-0000",
            True,
        ),
        (1008, "DATA-0000: payload cannot be decoded as audio", "DATA-0000", False),
        (1008, "see https://dpgr.am/data0000", "DATA-0000", False),
        (1000, "", None, False),
        (1012, "restarting", None, True),
        (1003, "unsupported", None, False),
    ],
)
def test_server_close_is_classified(
    code: int, reason: str, error_code: str | None, retryable: bool
) -> None:
    pair = LivePair()
    pair.server.send_text(METADATA_JSON)
    pair.server.close(code, reason)
    events = pair.pump()
    assert kinds(events) == ["Metadata", "Closed"]
    closed = events[-1]
    assert isinstance(closed, Closed)
    assert closed.code == code
    assert closed.reason == reason
    assert closed.error_code == error_code
    assert closed.retryable is retryable
    assert closed.initiator == "server"
    assert classify_close(code, reason) == (error_code, retryable)


def test_close_frame_without_status() -> None:
    pair = LivePair()
    pair.client.receive_data(b"\x88\x00", now=0)
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert closed.code == 1005
    assert closed.initiator == "server"


@pytest.mark.parametrize("closing", [False, True])
def test_eof_without_close_frame(closing: bool) -> None:
    pair = LivePair()
    if closing:
        pair.client.close_stream(now=0)
        pair.pump()
    pair.client.receive_eof(now=0)
    pair.client.receive_eof(now=0)  # idempotent
    [closed] = pair.client.events()
    assert isinstance(closed, Closed)
    assert closed.code == 1006
    assert closed.initiator == "transport"
    assert closed.retryable is not closing
    assert isinstance(closed.error, RemoteProtocolError)


def test_abort_in_every_state() -> None:
    idle = ListenConnection()
    idle.abort(now=0)
    [closed] = idle.events()
    assert isinstance(closed, Closed)
    assert closed.initiator == "client"
    assert idle.data_to_send() == b""

    connecting = LivePair(server=FakeServer(auto_accept=False))
    connecting.client.abort(now=0)
    [closed] = connecting.client.events()
    assert isinstance(closed, Closed)
    assert closed.code == 1006

    open_pair = LivePair()
    open_pair.send_audio(0.5)
    open_pair.client.finalize(now=0)
    open_pair.client.abort(now=0)
    events = open_pair.pump()
    assert kinds(events) == ["FinalizeComplete", "Closed"]
    assert isinstance(events[0], FinalizeComplete)
    assert events[0].reason == "closed"
    assert open_pair.server.received[-1] == ("close", 1000)


# ---------------------------------------------------------------------------- Finalize


def _finalize_completions(events: Sequence[object]) -> list[str]:
    return [e.reason for e in events if isinstance(e, FinalizeComplete)]


def test_finalize_completes_on_from_finalize() -> None:
    pair = LivePair()
    pair.send_audio(1.0)
    pair.client.finalize(now=pair.now)
    pair.pump()
    assert pair.client.pending_finalizes == 1
    pair.server.send_text(results_json(start=0, duration=0.5, transcript="early", is_final=False))
    assert _finalize_completions(pair.pump()) == []
    pair.server.send_text(results_json(start=0, duration=1.0, transcript="x", from_finalize=True))
    events = pair.pump()
    assert kinds(events) == ["Results", "FinalizeComplete", "Utterance"]
    assert events[1] == FinalizeComplete(channel=None, reason="from_finalize")
    assert isinstance(events[2], Utterance)
    assert (events[2].transcript, events[2].reason) == ("x", "finalize")


def test_finalize_completes_when_finals_cover_the_audio() -> None:
    pair = LivePair()
    pair.send_audio(2.0)
    pair.client.finalize(now=pair.now)
    pair.pump()
    pair.server.send_text(results_json(start=0, duration=1.2, transcript="part"))
    assert _finalize_completions(pair.pump()) == []
    pair.server.send_text(results_json(start=1.2, duration=0.795, transcript="rest"))
    assert _finalize_completions(pair.pump()) == ["covered"]


def test_finalize_with_nothing_to_flush_completes_at_once() -> None:
    pair = LivePair()
    pair.client.finalize(now=0)
    assert kinds(pair.client.events()) == ["FinalizeComplete"]


def test_finalize_timeout() -> None:
    pair = LivePair(config=Config(finalize_timeout=3, keepalive_interval=None))
    pair.send_audio(1.0)
    pair.client.finalize(now=0)
    pair.pump()
    assert pair.client.get_timer() == 3
    assert pair.advance(2.9) == []
    assert _finalize_completions(pair.advance(0.2)) == ["timeout"]


def test_finalize_without_timeout_waits_for_close() -> None:
    pair = LivePair(
        config=Config(finalize_timeout=None, keepalive_interval=None, ping_interval=None)
    )
    pair.send_audio(1.0)
    pair.client.finalize(now=0)
    pair.pump()
    assert pair.client.get_timer() is None
    pair.client.handle_timer(now=100)  # nothing is due: still waiting
    assert pair.client.pending_finalizes == 1
    pair.server.close(1011, NET0001_REASON)
    assert _finalize_completions(pair.pump()) == ["closed"]


def test_finalizes_complete_in_order_and_late_replies_are_not_misattributed() -> None:
    pair = LivePair(config=Config(finalize_timeout=1, keepalive_interval=None))
    pair.send_audio(1.0)
    pair.client.finalize(now=pair.now)  # F1 at 1.0 s of audio
    pair.pump()
    assert _finalize_completions(pair.advance(1.5)) == ["timeout"]
    pair.send_audio(1.0)
    pair.client.finalize(now=pair.now)  # F2 at 2.0 s
    pair.pump()
    # the late reply to F1 must not complete F2
    pair.server.send_text(results_json(start=0, duration=1.0, transcript="a", from_finalize=True))
    assert _finalize_completions(pair.pump()) == []
    pair.server.send_text(results_json(start=1.0, duration=1.0, transcript="b", from_finalize=True))
    assert _finalize_completions(pair.pump()) == ["from_finalize"]


def test_channel_finalize_waits_for_its_channel() -> None:
    options = LiveOptions(encoding="linear16", sample_rate=16000, channels=2, multichannel=True)
    pair = LivePair(options=options)
    pair.client.send_audio(bytes(64000), now=0)  # 1 s of stereo
    pair.client.finalize(channel=1, now=0)
    pair.client.finalize(now=0)
    pair.pump()
    # a from_finalize on another channel does not complete a channel-1 Finalize
    pair.server.send_text(
        results_json(start=0, duration=1, transcript="l", from_finalize=True, channel=(0, 2))
    )
    assert _finalize_completions(pair.pump()) == []
    pair.server.send_text(results_json(start=0, duration=1, transcript="r", channel=(1, 2)))
    # channel 1 covered completes F(1); both channels covered completes F(all)
    assert _finalize_completions(pair.pump()) == ["covered", "covered"]


def test_finalize_with_unknown_audio_clock_needs_from_finalize() -> None:
    pair = LivePair(options=LiveOptions(encoding="opus", sample_rate=48000))
    pair.send_audio(1.0)
    pair.client.finalize(now=pair.now)
    pair.server.send_text(results_json(start=0, duration=5, transcript="x"))
    assert _finalize_completions(pair.pump()) == []
    pair.server.send_text(results_json(start=5, duration=1, transcript="y", from_finalize=True))
    assert _finalize_completions(pair.pump()) == ["from_finalize"]


# ---------------------------------------------------------------------------- pings


def test_ping_interval_and_pong_timeout() -> None:
    config = Config(ping_interval=5, ping_timeout=2, keepalive_interval=None)
    pair = LivePair(config=config)
    assert pair.client.get_timer() == 5
    pair.advance(5)
    assert pair.server.received[-1] == ("ping", b"dgproto-1")
    # the fake server answered, so no timeout; the next ping is due at 10
    assert pair.client.get_timer() == 10
    # now the server stops answering
    pair.server.answer_pings = False
    events = pair.advance(7.5)
    assert kinds(events) == ["Closed"]
    closed = events[0]
    assert isinstance(closed, Closed)
    assert closed.initiator == "timeout"
    assert closed.retryable


def test_unmatched_pong_is_ignored_and_ping_without_timeout() -> None:
    pair = LivePair(config=Config(ping_interval=5, ping_timeout=None, keepalive_interval=None))
    pair.server.out += pair.server.ws.send(Pong(payload=b"unsolicited"))
    assert pair.pump() == []
    pair.advance(5)
    assert pair.client.get_timer() == 10


def test_a_late_pong_acknowledges_its_ping_and_every_earlier_one() -> None:
    config = Config(ping_interval=1, ping_timeout=3, keepalive_interval=None)
    pair = LivePair(config=config)
    pair.server.answer_pings = False
    pair.advance(2.5)  # pings 1 and 2 are out, unanswered
    assert [p for k, p in pair.server.received if k == "ping"] == [b"dgproto-1", b"dgproto-2"]
    assert pair.client.get_timer() == 3  # the next ping; ping 1's pong is due at 4
    pair.server.out += pair.server.ws.send(Pong(payload=b"dgproto-2"))
    pair.pump()
    pair.advance(1.6)  # t=4.1: ping 3 went out at 3, due at 6; nobody is late
    assert pair.client.state is State.OPEN
    pair.advance(2.0)  # t=6.1: ping 3 is unanswered past its deadline
    assert isinstance(pair.client.closed, Closed)
    assert pair.client.closed.initiator == "timeout"
    assert type(pair.client.closed.code) is int


@pytest.mark.parametrize("silent_from", [0.0, 4.99, 5.01, 7.3, 30.0])
def test_a_default_config_detects_a_silent_peer_within_20_s(silent_from: float) -> None:
    """Issue 9: pings are on by default, so a peer that stops answering (a NAT that
    dropped the flow, socket still open) ends the stream within 20 s, retryably."""
    pair = LivePair(config=Config())
    pair.advance(silent_from)
    assert pair.client.state is State.OPEN
    pair.server.answer_pings = False
    went_quiet = pair.now
    while pair.client.closed is None and pair.now < went_quiet + 60:
        pair.advance(0.01)
    closed = pair.client.closed
    assert isinstance(closed, Closed)
    assert (closed.code, closed.initiator, closed.retryable) == (1006, "timeout", True)
    assert pair.now - went_quiet <= 15.0 + 0.011  # ping_interval + ping_timeout
    # pings are not Deepgram activity: KeepAlive kept going out while idle
    assert "KeepAlive" in pair.server.types()
