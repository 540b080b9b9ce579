"""Regression tests for issue 10: what fuzzing found in the client and emulator cores.

Each test names its finding (#1-#10) and fails on the code before the fix. The adapter
findings (#3, #5) and the wire trace (#10) are in ``test_hardening_adapters.py``.
"""

from __future__ import annotations

import json
import time

import pytest

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import RemoteProtocolError
from dgproto._events import Closed, HandshakeRejected, Results, UnknownMessage
from dgproto._fragments import FRAGMENT_ALLOWANCE
from dgproto._options import Auth, LiveOptions, redact_callback, redact_query
from dgproto._state import State
from dgproto.emulator._config import EmulatorConfig
from dgproto.transports._common import parse_url, redact_request

from .emulator_helpers import LINEAR16, Client, close_of
from .helpers import FakeServer, LivePair, raw_frame, results_json

# --------------------------------------------------------------------------- client core


def test_1_deeply_nested_rejection_body_is_a_rejection_not_a_recursion_error() -> None:
    pair = LivePair(server=FakeServer(auto_accept=False))
    body = b"[" * 50_000 + b"]" * 50_000
    pair.server.reject(400, body)
    events = pair.pump()
    rejected, closed = events
    assert isinstance(rejected, HandshakeRejected)
    assert (rejected.status_code, rejected.err_code, rejected.body) == (400, None, body)
    assert isinstance(closed, Closed)
    assert pair.client.state is State.CLOSED


def _101(header_line: bytes) -> bytes:
    return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + header_line + b"\r\n\r\n"


@pytest.mark.parametrize(
    "header",
    [b"Connection: Upgr\xe9ade", b"Upgrade-Extra: caf\xe9", b"Sec-WebSocket-Accept: \xff"],
)
def test_2_non_ascii_byte_in_a_101_header_closes_with_1002(header: bytes) -> None:
    client = ListenConnection(options=LiveOptions(), host="dg.test")
    client.connect(now=0)
    client.data_to_send()
    client.receive_data(_101(header), now=0)
    (closed,) = client.events()
    assert isinstance(closed, Closed)
    assert (closed.code, closed.initiator) == (1002, "client")
    assert isinstance(closed.error, RemoteProtocolError)
    assert "invalid handshake response" in closed.reason
    assert client.data_to_send() == b""  # the WebSocket never opened: no close frame


def test_2_non_ascii_byte_in_an_eof_delimited_rejection_still_reports_it() -> None:
    client = ListenConnection(options=LiveOptions(), host="dg.test")
    client.connect(now=0)
    client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\npartial body", now=0)
    client.receive_eof(now=1)
    rejected, closed = client.events()
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.body == b"partial body"
    assert isinstance(closed, Closed)


def _flood(opcode: int, frames: int) -> bytes:
    return raw_frame(opcode, b"", fin=False) + raw_frame(0x0, b"", fin=False) * frames


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_4_empty_continuation_flood_ends_with_1009_in_bounded_cpu(opcode: int) -> None:
    pair = LivePair()
    flood = _flood(opcode, 500_000)  # 1 MB of 2-byte frames
    started = time.process_time()
    pair.client.receive_data(flood, now=1)
    spent = time.process_time() - started
    closed = pair.client.closed
    assert closed is not None
    assert closed.code == 1009
    assert closed.initiator == "client"
    assert "frames" in closed.reason
    assert spent < 1.0  # was 10-14 s for 2 MiB; now ~1,000 frames are parsed, then it stops
    pair.pump()
    assert pair.server.received[-1] == ("close", 1009)


def test_4_the_bound_is_proportional_a_byte_per_frame_still_passes() -> None:
    """A legit peer splitting a message into one-character frames is not a flood."""
    pair = LivePair()
    text = results_json(start=0, duration=1, transcript="one character a frame " * 40)
    assert len(text) > FRAGMENT_ALLOWANCE
    pair.server.send_text(text, fragment=1)
    (results,) = pair.pump()
    assert isinstance(results, Results)
    assert results.transcript.startswith("one character")
    # ... and exactly at the allowance: the first 1,024 frames may carry nothing.
    pair.client.receive_data(_flood(0x1, FRAGMENT_ALLOWANCE - 1) + raw_frame(0x0, b"{}"), now=1)
    (event,) = pair.pump()
    assert isinstance(event, UnknownMessage) or type(event).__name__ == "MalformedMessage"
    assert pair.client.state is State.OPEN


def test_4_fragments_are_joined_as_they_come_and_reset_after_each_message() -> None:
    pair = LivePair()
    pair.server.send_text(json.dumps({"type": "Wibble", "pad": "é" * 300}), fragment=3)
    pair.server.send_binary(b"x")
    (unknown, malformed) = pair.pump()
    assert isinstance(unknown, UnknownMessage)
    assert unknown.raw["pad"] == "é" * 300
    assert type(malformed).__name__ == "MalformedMessage"
    assert pair.client.state is State.OPEN


# --------------------------------------------------------------------------- emulator core


def test_6_big_text_after_the_emulators_own_close_just_hangs_up() -> None:
    client = Client(config=EmulatorConfig(idle_timeout=1.0), echo_close=False)
    client.advance(1.5)  # NET-0001: Metadata, then the emulator's close frame
    close = close_of(client)
    assert close is not None
    assert close.code == 1011
    assert not client.server.should_close_transport  # waiting for the client's echo
    # over max_message_size, after the close (raw: our wsproto client may not send now)
    client.raw(raw_frame(0x1, b"x" * (70 * 1024), mask=b"abcd"))
    assert client.server.should_close_transport
    assert client.server.close_sent is not None
    assert client.server.close_sent[0] == 1011


def test_6_big_text_while_open_still_closes_with_1009() -> None:
    client = Client()
    client.text("x" * (70 * 1024))
    close = close_of(client)
    assert close is not None
    assert close.code == 1009


def test_7_lone_surrogate_keyterm_gets_configure_failure_and_the_session_goes_on() -> None:
    client = Client()
    client.text('{"type":"Configure","keyterms":["ok","\\ud800"]}')
    client.text({"type": "Configure", "keyterms": ["fine"]})
    failure, success = client.messages
    assert (failure["type"], failure["code"]) == ("ConfigureFailure", "INVALID_KEYTERMS")
    assert success["type"] == "ConfigureSuccess"
    assert client.server.keyterms == ("fine",)


@pytest.mark.parametrize("channels", [65, 100_000, 10**30])
def test_8_channels_over_the_cap_get_a_deepgram_style_400_at_once(channels: int) -> None:
    started = time.process_time()
    client = Client(f"{LINEAR16}&channels={channels}&multichannel=true")
    assert time.process_time() - started < 0.5  # was 1.7 s and +100 MB at 100,000
    assert client.rejected is not None
    assert client.rejected.status_code == 400
    body = client.error_body()
    assert body["err_code"] == "INVALID_QUERY_PARAMETER"
    assert "channels must be at most 64" in body["err_msg"]
    assert body["request_id"] == client.server.request_id


def test_8_the_cap_is_configurable_and_a_finished_session_drops_its_recognizers() -> None:
    client = Client(
        f"{LINEAR16}&channels=8&multichannel=true", config=EmulatorConfig(max_channels=8)
    )
    assert client.accepted is not None
    assert len(client.server._transcribers) == 8  # one recognizer per channel while live
    client.text({"type": "CloseStream"})
    assert client.server.should_close_transport
    # The server keeps finished sessions for introspection: none keeps its recognizers.
    assert client.server._transcribers == {}
    assert client.server.audio_seconds_received == 0.0
    with pytest.raises(ValueError, match="max_channels"):
        EmulatorConfig(max_channels=0)


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_9_empty_continuation_flood_closes_the_emulator_with_1009(opcode: int) -> None:
    client = Client()
    flood = raw_frame(opcode, b"", fin=False, mask=b"abcd")
    flood += raw_frame(0x0, b"", fin=False, mask=b"abcd") * 200_000
    started = time.process_time()
    client.raw(flood)
    assert time.process_time() - started < 1.0  # was 4.3 s holding 349,505 fragments
    close = close_of(client)
    assert close is not None
    assert close.code == 1009
    assert client.server.should_close_transport


def test_9_audio_in_many_small_continuation_frames_is_still_audio() -> None:
    client = Client()
    audio = bytes(3200)
    frames = raw_frame(0x2, audio[:2], fin=False, mask=b"abcd")
    for i in range(2, len(audio), 2):
        last = i + 2 >= len(audio)
        frames += raw_frame(0x0, audio[i : i + 2], fin=last, mask=b"abcd")
    client.raw(frames)
    assert client.server.audio_bytes_received == len(audio)
    assert close_of(client) is None


# --------------------------------------------------------------------------- secrets

CALLBACK = "https://hookuser:hookpass@hooks.example:8443/cb?token=tok123&plain#frag456"
LEAKS = ("hookuser", "hookpass", "tok123", "frag456")


def test_10_redact_callback_hides_userinfo_query_values_and_fragment() -> None:
    shown = redact_callback(CALLBACK)
    assert shown == "https://<redacted>@hooks.example:8443/cb?token=<redacted>&plain#<redacted>"
    assert redact_callback("http://[::1/x") == "<redacted>"
    assert redact_callback("https://h/p") == "https://h/p"


def test_10_live_options_repr_hides_the_callbacks_credentials() -> None:
    options = LiveOptions(callback=CALLBACK, model="nova-3")
    text = repr(options)
    assert "hooks.example:8443/cb" in text
    assert "nova-3" in text
    assert not any(leak in text for leak in LEAKS)


def test_10_request_trace_connection_and_endpoint_reprs_hide_the_callback() -> None:
    options = LiveOptions(callback=CALLBACK)
    url = "ws://dg.test/v1/listen?callback=" + "https%3A%2F%2Fu2%3Ap2%40h%2F%3Ftoken%3Dtok789"
    endpoint = parse_url(url)
    conn = ListenConnection(
        options=options, auth=Auth.token("the-api-key"), host="dg.test", path=endpoint.target
    )
    conn.connect(now=0)
    request = conn.data_to_send()
    assert b"hookpass" in request
    assert b"tok789" in request
    for text in (redact_request(request), repr(conn), repr(endpoint)):
        assert not any(leak in text for leak in (*LEAKS, "u2", "p2", "tok789", "the-api-key"))
        assert "<redacted>" in text
    assert redact_request(request).startswith("GET /v1/listen?callback=https://<redacted>@h/")
    assert redact_query("/v1/listen?model=nova-3") == "/v1/listen?model=nova-3"
    assert redact_query("model=a&callback=x") == "model=a&callback=x"  # no credentials in it


def test_10_a_bad_callback_error_never_shows_the_value() -> None:
    with pytest.raises(ValueError) as info:
        LiveOptions(callback="ftp://hookuser:hookpass@h/?token=tok123")
    assert not any(leak in str(info.value) for leak in LEAKS)


def test_10_client_reprs_hide_a_config_secret_too() -> None:
    # The API key itself: never in a repr, an event or the Closed error (kept so).
    pair = LivePair(config=Config(), auth=Auth.token("sk-never-shown"))
    pair.server.close(1011, "bye")
    events = pair.pump()
    assert all("sk-never-shown" not in repr(e) for e in events)
    assert "sk-never-shown" not in repr(pair.client)
