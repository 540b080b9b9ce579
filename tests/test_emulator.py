"""The emulator is the spec of Deepgram's server behaviour, executable.

A bare wsproto client drives ``EmulatorConnection`` over an in-memory pipe on a virtual
clock (``tests/emulator_helpers.py``): handshakes, control messages, the transcript
timing rules, every fault, and garbage. Audio is the tone codec's, so the words that come
back prove the audio went through intact.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from array import array
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

import dgproto.emulator as emulator
from dgproto.emulator import (
    NET0001_REASON,
    EmulatorConfig,
    EmulatorConnection,
    EmulatorState,
    FaultPlan,
    RecognizedWord,
    ScriptedRecognizer,
    ToneRecognizer,
    _pcm,
    silence,
    synthesize,
)
from dgproto.emulator._connection import CONTAINER_WARNING, UNDECODED_WARNING, _split_utf8
from dgproto.emulator._handshake import find_credentials
from dgproto.emulator._session import (
    ChannelTranscriber,
    Segmenter,
    SegmenterSettings,
    SpeechStart,
    UtteranceGap,
    Window,
)
from tests.emulator_helpers import (
    LINEAR16,
    Client,
    close_of,
    closing,
    end_of,
    transcript,
    words,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepgram"  # copies of shared/
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SENTENCES = "Hello world. How are you?"


def speech(text: str = SENTENCES, tail: float = 1.0, **kwargs: Any) -> bytes:
    return synthesize(text, **kwargs) + silence(tail, **kwargs)


def noise(seconds: float, amplitude: int = 3000, rate: int = 16000) -> bytes:
    """Loud audio with no tones in it (a square wave the decoder cannot read)."""
    samples = array("h", ([amplitude] * 7 + [-amplitude] * 7) * int(seconds * rate / 14))
    return samples.tobytes()


def assert_contiguous(finals: list[dict[str, Any]]) -> None:
    at = 0.0
    for result in finals:
        assert result["start"] == pytest.approx(at, abs=1e-6)
        at = end_of(result)


# ============================================================================ handshake


def test_accepts_a_token_and_answers_101_with_a_request_id() -> None:
    client = Client()
    assert client.accepted is not None
    assert client.accepted.subprotocol is None
    request_id = client.headers()["dg-request-id"]
    assert UUID.match(request_id)
    assert request_id == client.server.request_id
    assert client.server.state is EmulatorState.OPEN
    assert client.server.options is not None
    assert client.server.options.sample_rate == 16000
    assert not closing(client.server)


def test_request_ids_come_from_the_injected_rng() -> None:
    assert Client(seed=3).server.request_id == Client(seed=3).server.request_id
    assert Client(seed=3).server.request_id != Client(seed=4).server.request_id


@pytest.mark.parametrize("scheme", ["Token", "token", "TOKEN", "Bearer", "bearer"])
def test_authorization_scheme_is_case_insensitive(scheme: str) -> None:
    client = Client(headers=[(b"authorization", f"{scheme} k".encode())])
    assert client.accepted is not None


@pytest.mark.parametrize(
    "headers",
    [[], [(b"authorization", b"Basic abc")], [(b"authorization", b"Token")]],
    ids=["missing", "basic", "empty"],
)
def test_missing_or_unusable_credentials_get_401(headers: list[tuple[bytes, bytes]]) -> None:
    client = Client(headers=headers)
    assert client.rejected is not None
    assert client.rejected.status_code == 401
    body = client.error_body()
    assert list(body) == ["err_code", "err_msg", "request_id"]
    assert body == {
        "err_code": "INVALID_AUTH",
        "err_msg": "Invalid credentials.",
        "request_id": client.server.request_id,
    }
    headers_out = client.headers()
    assert headers_out["dg-request-id"] == client.server.request_id
    assert headers_out["dg-error"] == "Invalid credentials."
    assert headers_out["content-type"] == "application/json"
    assert client.server.should_close_transport
    assert client.server.state is EmulatorState.CLOSED


def test_accepted_keys_are_enforced_and_never_echoed() -> None:
    config = EmulatorConfig(accepted_keys=["good-key"])
    assert "good-key" not in repr(config)
    good = Client(headers=[(b"authorization", b"Token good-key")], config=config)
    assert good.accepted is not None
    bad = Client(headers=[(b"authorization", b"Token secret-bad")], config=config)
    assert bad.rejected is not None
    assert bad.rejected.status_code == 401
    assert b"secret-bad" not in bad.body
    assert "secret-bad" not in json.dumps(bad.headers())


def test_require_auth_false_lets_clients_without_credentials_in() -> None:
    client = Client(headers=[], config=EmulatorConfig(require_auth=False))
    assert client.accepted is not None


@pytest.mark.parametrize("scheme", ["token", "bearer", "Token"])
def test_subprotocol_auth_echoes_the_scheme(scheme: str) -> None:
    config = EmulatorConfig(accepted_keys={"sub-key"})
    client = Client(headers=[], subprotocols=[scheme, "sub-key"], config=config)
    assert client.accepted is not None
    assert client.accepted.subprotocol == scheme
    rejected = Client(headers=[], subprotocols=[scheme, "other"], config=config)
    assert rejected.rejected is not None
    assert rejected.rejected.status_code == 401


def test_subprotocol_is_echoed_even_when_the_header_carried_the_key() -> None:
    client = Client(subprotocols=["x-deepgram-session-id", "abc", "token", "k"])
    assert client.accepted is not None
    assert client.accepted.subprotocol == "token"


def test_find_credentials_prefers_the_header() -> None:
    headers = [(b"user-agent", b"x"), (b"authorization", b"Bearer jwt")]
    assert find_credentials(headers, ["token", "key"]) == ("jwt", "token")
    assert find_credentials([], ["token"]) == (None, None)
    assert find_credentials([(b"authorization", b"Basic x")], []) == (None, None)


@pytest.mark.parametrize(
    ("query", "err_code", "fragment"),
    [
        ("encoding=wav&sample_rate=16000", "INVALID_QUERY_PARAMETER", "encoding must be one of"),
        ("encoding=linear16&sample_rate=abc", "INVALID_QUERY_PARAMETER", "sample_rate"),
        ("encoding=linear16&sample_rate=-5", "INVALID_QUERY_PARAMETER", "sample_rate"),
        (f"{LINEAR16}&utterance_end_ms=1000", "INVALID_QUERY_PARAMETER", "interim_results"),
        (f"{LINEAR16}&punctuate=True", "INVALID_QUERY_PARAMETER", "punctuate"),
        ("encoding=opus&sample_rate=16000", "Bad Request", "cannot decode encoding=opus"),
        ("encoding=linear16", "Bad Request", "sample_rate is required"),
        ("encoding=linear16&sample_rate=500", "Bad Request", "between 1000 and 192000"),
        (f"{LINEAR16}&model=flux-general-en", "Bad Request", "/v2/listen"),
    ],
)
def test_invalid_parameters_get_400(query: str, err_code: str, fragment: str) -> None:
    client = Client(query)
    assert client.rejected is not None
    assert client.rejected.status_code == 400
    body = client.error_body()
    assert body["err_code"] == err_code
    assert fragment in body["err_msg"]
    assert "LiveOptions." not in body["err_msg"]
    assert client.headers()["dg-error"] == body["err_msg"]
    assert body["request_id"] == client.headers()["dg-request-id"]


def test_container_audio_is_accepted_counted_and_said_untranscribable() -> None:
    """No encoding= (mp3, ogg, ...): Deepgram decodes containers itself; the emulator
    accepts the stream, counts it, returns no transcript and says why in Metadata."""
    client = Client("punctuate=true")
    assert client.accepted is not None
    client.audio(b"ID3\x04" + bytes(4000))
    client.text({"type": "CloseStream"})
    assert client.results == []
    (metadata,) = client.of_type("Metadata")
    assert metadata["duration"] == 0
    assert [w["message"] for w in metadata["warnings"]] == [CONTAINER_WARNING]
    assert client.server.audio_bytes_received == 4004
    assert client.server.path == "/v1/listen"
    assert client.server.http_status == 101


def test_sound_it_cannot_decode_is_said_once() -> None:
    """Real speech (here: loud noise) gives empty results; Metadata says why, once."""
    rng = random.Random(3)
    noise = array("h", (rng.randint(-20000, 20000) for _ in range(16000 * 3))).tobytes()
    client = Client(LINEAR16)
    client.audio(noise)
    client.audio(noise)
    client.text({"type": "CloseStream"})
    (metadata,) = client.of_type("Metadata")
    assert [w["message"] for w in metadata["warnings"]] == [UNDECODED_WARNING]
    assert all(not r["channel"]["alternatives"][0]["transcript"] for r in client.results)


def test_tone_coded_audio_gets_no_warning() -> None:
    client = Client(LINEAR16)
    client.audio(synthesize("Hello there. This is long enough to be loud for seconds."))
    client.text({"type": "CloseStream"})
    (metadata,) = client.of_type("Metadata")
    assert "warnings" not in metadata
    assert client.server.warnings == []


def test_refused_request_records_its_status() -> None:
    client = Client("encoding=linear16")
    assert client.server.http_status == 400


def test_unknown_parameters_pass_like_on_deepgram() -> None:
    client = Client(f"{LINEAR16}&brand_new_feature=1")
    assert client.accepted is not None
    assert client.server.options is not None
    assert client.server.options.params == {"brand_new_feature": ("1",)}


def test_wrong_path_gets_404() -> None:
    # /v2/listen is Flux now (tests/test_flux_emulator.py); any other path is a 404.
    client = Client(target="/v3/listen?encoding=linear16&sample_rate=16000")
    assert client.rejected is not None
    assert client.rejected.status_code == 404
    assert "/v3/listen" in client.error_body()["err_msg"]


def test_a_configured_path_is_served() -> None:
    config = EmulatorConfig(path="/custom")
    assert Client(target=f"/custom?{LINEAR16}", config=config).accepted is not None


def _raw_response(data: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, json.loads(body)


def test_non_get_method_gets_405() -> None:
    server = EmulatorConnection(rng=random.Random(1))
    server.receive_data(
        b"POST /v1/listen HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", now=0.0
    )
    status, headers, body = _raw_response(server.data_to_send())
    assert status == 405
    assert headers["dg-request-id"] == server.request_id
    assert body["request_id"] == server.request_id
    assert "GET" in headers["dg-error"]
    assert server.should_close_transport


_UPGRADE = (
    b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\nHost: %s\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Token k\r\n%s\r\n"
)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/listen HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # not an upgrade
        (
            b"GET /v1/listen HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
        ),
        (_UPGRADE % (b"\xff\xfe", b""), 400),  # wsproto cannot decode this Host
        (_UPGRADE % (b"x", b"Sec-WebSocket-Protocol: token, \xff\r\n"), 400),
    ],
)
def test_broken_requests_get_an_http_error(request_bytes: bytes, status: int) -> None:
    server = EmulatorConnection(rng=random.Random(1))
    server.receive_data(request_bytes, now=0.0)
    got, _, body = _raw_response(server.data_to_send())
    assert got == status
    assert set(body) == {"err_code", "err_msg", "request_id"}
    assert server.should_close_transport
    server.receive_data(b"more", now=1.0)  # ignored, no crash
    assert server.data_to_send() == b""


def test_handshake_timeout_closes_a_silent_socket() -> None:
    server = EmulatorConnection(now=5.0)
    assert server.audio_seconds_received == 0.0
    assert server.get_timer() == 15.0
    server.handle_timer(now=14.0)
    assert not closing(server)
    server.handle_timer(now=15.0)
    assert server.should_close_transport
    assert server.get_timer() is None


def test_handshake_timer_starts_at_the_first_call_without_now() -> None:
    server = EmulatorConnection()
    assert server.get_timer() is None
    server.receive_data(b"GET /v1/li", now=50.0)
    assert server.get_timer() == 60.0
    untimed = EmulatorConnection(config=EmulatorConfig(handshake_timeout=None), now=0.0)
    assert untimed.get_timer() is None


def test_eof_closes_the_transport() -> None:
    client = Client()
    client.server.receive_eof(now=client.now)
    assert client.server.should_close_transport
    assert client.server.get_timer() is None
    client.send(BytesMessage(data=b"\x00\x00"))  # ignored
    assert client.server.audio_bytes_received == 0


# ============================================================================ control messages


def test_keepalive_text_gets_no_reply_and_keeps_the_session_alive() -> None:
    client = Client()
    for _ in range(5):
        client.advance(8.0)
        client.text({"type": "KeepAlive"})
    assert client.messages == []
    assert close_of(client) is None
    assert client.server.audio_bytes_received == 0
    logged = client.server.received_text_messages
    assert [m.type for m in logged] == ["KeepAlive"] * 5
    assert logged[0].at == pytest.approx(108.0)
    assert logged[0].audio_position == 0.0


def test_keepalive_sent_as_binary_is_audio() -> None:
    client = Client()
    client.send(BytesMessage(data=b'{"type":"KeepAlive"}'))
    assert client.server.audio_bytes_received == 20
    assert client.server.audio_seconds_received == pytest.approx(10 / 16000)
    assert client.server.received_text_messages == []


def test_idle_timeout_sends_metadata_then_closes_1011_net0001() -> None:
    client = Client(wall_time=1_700_000_000.25)
    client.audio(silence(0.5))
    client.advance(9.9)
    assert close_of(client) is None
    client.advance(0.2)
    assert client.close is not None
    assert client.close.code == 1011
    assert client.close.reason == NET0001_REASON
    assert [m["type"] for m in client.messages][-1] == "Metadata"
    metadata = client.messages[-1]
    assert metadata["duration"] == 0.5
    assert metadata["created"] == "2023-11-14T22:13:20.250Z"
    assert client.server.should_close_transport  # the client echoed the close
    assert client.server.close_sent == (1011, NET0001_REASON)
    assert client.server.close_received == (1011, NET0001_REASON)


def test_idle_timeout_with_debug_sends_a_closing_error_first() -> None:
    client = Client(f"{LINEAR16}&debug=true")
    client.advance(10.0)
    kinds = [m["type"] for m in client.messages]
    assert kinds == ["Metadata", "Error"]
    assert client.messages[1] == {
        "type": "Error",
        "variant": "Closing",
        "code": "NET-0001",
        "description": NET0001_REASON,
    }


def test_idle_timeout_none_never_closes() -> None:
    client = Client(config=EmulatorConfig(idle_timeout=None))
    assert client.server.get_timer() is None
    client.advance(1000.0)
    assert close_of(client) is None


def test_the_close_timeout_hangs_up_when_the_client_never_echoes() -> None:
    client = Client(echo_close=False)
    client.text({"type": "CloseStream"})
    assert client.close is not None
    assert not closing(client.server)
    client.advance(4.9)
    assert not closing(client.server)
    client.advance(0.2)
    assert client.server.should_close_transport


def test_metadata_for_a_session_without_audio() -> None:
    client = Client()
    client.text({"type": "CloseStream"})
    assert client.messages == [
        {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": client.server.request_id,
            "sha256": hashlib.sha256(b"").hexdigest(),
            "created": "1970-01-01T00:00:00.000Z",
            "duration": 0.0,
            "channels": 1,
        }
    ]
    assert client.close is not None
    assert client.close.code == 1000


def test_close_stream_flushes_finals_then_metadata_then_1000() -> None:
    audio = synthesize("one two three")  # no trailing pause: the last word is cut short
    client = Client(f"{LINEAR16}&extra=team:qa")
    client.audio(audio, chunk=333)  # odd chunks split samples
    client.text({"type": "CloseStream"})
    kinds = [m["type"] for m in client.messages]
    assert kinds[-1] == "Metadata"
    assert set(kinds[:-1]) == {"Results"}
    assert words(client.results) == ["one", "two", "three"]
    finals = client.finals
    assert_contiguous(finals)
    assert end_of(finals[-1]) == pytest.approx(len(audio) / 32000, abs=1e-6)
    assert not finals[-1]["from_finalize"]
    assert finals[-1]["metadata"]["extra"] == {"team": "qa"}
    metadata = client.messages[-1]
    assert metadata["sha256"] == hashlib.sha256(audio).hexdigest()
    assert metadata["duration"] == pytest.approx(len(audio) / 32000, abs=1e-6)
    assert metadata["channels"] == 1
    assert metadata["models"] == [finals[0]["metadata"]["model_uuid"]]
    assert metadata["model_info"] == {
        metadata["models"][0]: {
            "name": "emulator-tone",
            "version": "2026-11-20.1",
            "arch": "dgproto-emulator",
        }
    }
    assert metadata["extra"] == {"team": "qa"}
    assert client.close is not None
    assert client.close.code == 1000
    assert client.server.should_close_transport
    assert client.server.audio_bytes_received == len(audio)


def test_an_empty_binary_frame_means_close_stream() -> None:
    client = Client()
    client.audio(synthesize("hi there"))
    client.send(BytesMessage(data=b""))
    assert words(client.results) == ["hi", "there"]
    assert client.messages[-1]["type"] == "Metadata"
    assert client.close is not None
    assert client.close.code == 1000


def test_a_fragmented_binary_message_is_audio_not_close_stream() -> None:
    client = Client()
    client.send(BytesMessage(data=b"", message_finished=False))
    client.send(BytesMessage(data=b"\x01\x00", message_finished=True))
    assert close_of(client) is None
    assert client.server.audio_bytes_received == 2


def test_after_close_stream_input_is_ignored() -> None:
    client = Client(faults=FaultPlan(delay=1.0))  # the close arrives late
    client.text({"type": "CloseStream"})
    client.send(BytesMessage(data=synthesize("late")))
    client.text({"type": "Finalize"})
    client.advance(1.0)
    assert [m["type"] for m in client.messages] == ["Metadata"]
    assert client.server.audio_bytes_received == 0
    assert client.server.received_text_messages[-1].type == "Finalize"


def test_finalize_flushes_pending_words_covering_all_audio() -> None:
    audio = synthesize("testing one two")  # no pause, so nothing final yet
    client = Client("encoding=linear16&sample_rate=16000&punctuate=true")
    client.audio(audio)
    assert client.finals == []
    client.text({"type": "Finalize"})
    finals = client.finals
    assert len(finals) == 1
    final = finals[0]
    assert final["from_finalize"] is True
    assert final["speech_final"] is False
    assert final["start"] == 0.0
    assert end_of(final) == pytest.approx(client.server.audio_seconds_received, abs=1e-6)
    assert final["channel"]["alternatives"][0]["transcript"] == "testing one two"
    # Nothing new arrived: a second Finalize has nothing to flush, and no reply comes.
    client.text({"type": "Finalize"})
    assert len(client.finals) == 1
    # The stream goes on; the next final starts where the flushed one ended.
    client.audio(synthesize("more."))
    client.text({"type": "Finalize", "channel": 0})
    assert_contiguous(client.finals)
    assert words(client.finals) == ["testing", "one", "two", "more"]


def test_finalize_with_a_bad_channel_is_a_schema_error() -> None:
    client = Client()
    for channel in (1, -1, "0", True, 0.5):
        client.text({"type": "Finalize", "channel": channel})
    errors = client.of_type("Error")
    assert len(errors) == 5
    assert all(e["variant"] == "SchemaError" for e in errors)
    assert "channel" in errors[0]["description"]
    assert close_of(client) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[" * 50_000, "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"no_type": 1}', "JSON object"),
        ('{"type": 5}', "JSON object"),
        ('{"type": "Flush"}', "Unknown message type 'Flush'"),
    ],
)
def test_bad_text_gets_a_schema_error_and_the_session_goes_on(text: str, fragment: str) -> None:
    client = Client()
    client.text(text)
    error = client.messages[-1]
    assert list(error) == ["type", "variant", "description", "message"]
    assert error["type"] == "Error"
    assert error["variant"] == "SchemaError"
    assert fragment in error["description"]
    assert len(error["message"]) <= 256
    client.text({"type": "KeepAlive"})
    client.audio(synthesize("still here"))
    client.text({"type": "Finalize"})
    assert words(client.finals) == ["still", "here"]


def test_configure_success_echoes_what_was_applied() -> None:
    client = Client()
    client.text({"type": "Configure", "features": {"numerals": True}, "keyterms": ["dgproto"]})
    assert client.messages[-1] == {
        "type": "ConfigureSuccess",
        "request_id": client.server.request_id,
        "features": {"numerals": True},
        "keyterms": ["dgproto"],
    }
    assert client.server.keyterms == ("dgproto",)
    assert client.server.features["numerals"] is True
    client.text({"type": "Configure"})
    assert client.messages[-1] == {
        "type": "ConfigureSuccess",
        "request_id": client.server.request_id,
        "features": {},
    }


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"features": {"colour": True}}, "UNKNOWN_FEATURE"),
        ({"features": {"numerals": "yes"}}, "INVALID_FEATURE_VALUE"),
        ({"features": ["numerals"]}, "INVALID_FEATURES"),
        ({"keyterms": "one"}, "INVALID_KEYTERMS"),
        ({"keyterms": ["ok", ""]}, "INVALID_KEYTERMS"),
        ({"processors": {"numerals": True}}, "UNKNOWN_FIELD"),
    ],
)
def test_configure_failure(message: dict[str, Any], code: str) -> None:
    client = Client()
    client.text({"type": "Configure", **message})
    reply = client.messages[-1]
    assert list(reply) == ["type", "request_id", "code", "description"]
    assert reply["type"] == "ConfigureFailure"
    assert reply["code"] == code
    assert reply["request_id"] == client.server.request_id


def test_configure_numerals_and_punctuation_change_the_transcript() -> None:
    client = Client()
    client.audio(synthesize("Call seven, now."))
    assert client.finals[-1]["channel"]["alternatives"][0]["transcript"] == "call seven now"
    client.text({"type": "Configure", "features": {"numerals": True, "punctuate": True}})
    client.audio(synthesize("Call seven, now. Twenty."))
    finals = client.finals
    assert finals[-2]["channel"]["alternatives"][0]["transcript"] == "Call 7, now."
    assert finals[-1]["channel"]["alternatives"][0]["transcript"] == "20."
    seven = finals[-2]["channel"]["alternatives"][0]["words"][1]
    assert (seven["word"], seven["punctuated_word"]) == ("7", "7,")
    client.text({"type": "Configure", "features": {"numerals": False}})
    client.audio(synthesize("Seven."))
    assert client.finals[-1]["channel"]["alternatives"][0]["transcript"] == "Seven."


def test_smart_format_implies_punctuation() -> None:
    client = Client(f"{LINEAR16}&smart_format=true&numerals=true")
    client.audio(synthesize("Nine lives."))
    assert client.finals[-1]["channel"]["alternatives"][0]["transcript"] == "9 lives."


def test_text_messages_too_big_are_refused_with_1009() -> None:
    client = Client(config=EmulatorConfig(max_message_size=100))
    client.send(TextMessage(data="x" * 60, message_finished=False))
    assert close_of(client) is None
    client.send(TextMessage(data="x" * 60, message_finished=True))
    assert client.close is not None
    assert client.close.code == 1009
    assert client.server.should_close_transport


def test_frames_after_a_refused_message_are_not_read() -> None:
    client = Client(config=EmulatorConfig(max_message_size=100))
    client.raw(frame(0x1, b"x" * 120) + frame(0x1, b'{"type":"CloseStream"}'))
    assert client.close is not None
    assert client.close.code == 1009
    assert client.server.received_text_messages == []


def test_fragmented_client_text_is_reassembled() -> None:
    client = Client()
    client.send(TextMessage(data='{"type":"Con', message_finished=False))
    client.send(TextMessage(data='figure"}', message_finished=True))
    assert client.messages[-1]["type"] == "ConfigureSuccess"


def test_the_message_log_is_bounded() -> None:
    client = Client(config=EmulatorConfig(message_log_limit=3))
    for index in range(5):
        client.text({"type": "KeepAlive", "n": index})
    assert [m.message["n"] for m in client.server.received_text_messages] == [2, 3, 4]


def test_client_close_is_echoed() -> None:
    client = Client()
    client.send(CloseConnection(code=1000, reason="bye"))
    assert client.close is not None
    assert client.close.code == 1000
    assert client.server.close_received == (1000, "bye")
    assert client.server.should_close_transport


def test_client_pings_get_pongs() -> None:
    client = Client()
    client.send(Ping(payload=b"abc"))
    assert [p.payload for p in client.pongs] == [b"abc"]


def test_pings_do_not_count_as_activity() -> None:
    client = Client()
    for _ in range(20):
        client.advance(1.0)
        if client.close is not None:
            break
        client.send(Ping(payload=b"p"))
    assert client.close is not None
    assert client.close.code == 1011
    assert client.now == pytest.approx(110.0)
    assert client.close.code == 1011


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """A client frame, masked with a zero key (so the payload goes as is), FIN set."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload


def test_after_the_server_closes_pings_and_bad_frames_only_end_it() -> None:
    client = Client(echo_close=False, faults=FaultPlan(ping_interval=1.0, close_after_seconds=2))
    client.text({"type": "CloseStream"})
    sent = client.server.close_sent
    client.advance(2.5)  # neither a ping nor the scripted close go out after a close frame
    assert client.pings == []
    assert client.server.close_sent == sent
    client.raw(frame(0x9, b"ping?"))  # a client ping after our close: no pong
    assert client.pongs == []
    assert not closing(client.server)
    client.raw(frame(0xF))  # an unparseable frame: hang up without another close
    assert client.server.should_close_transport
    assert client.server.close_sent == sent


def test_frames_after_the_clients_close_are_ignored() -> None:
    client = Client()
    client.raw(frame(0x8, b"\x03\xe8") + frame(0x1, b'{"type":"Finalize"}'))
    assert client.server.close_received == (1000, "")
    assert client.server.received_text_messages == []


def test_no_close_timeout_waits_for_the_echo_forever() -> None:
    client = Client(echo_close=False, config=EmulatorConfig(close_timeout=None))
    client.text({"type": "CloseStream"})
    client.advance(1000.0)
    assert not closing(client.server)
    assert client.server.get_timer() is None


def test_a_bad_frame_gets_a_protocol_error_close() -> None:
    client = Client()
    client.raw(b"\x8f\x80\x00\x00\x00\x00")  # opcode 0xF is reserved (masked, empty)
    assert client.close is not None
    assert client.close.code == 1002
    assert client.server.should_close_transport


def test_invalid_utf8_text_gets_1007() -> None:
    client = Client()
    client.raw(b"\x81\x82\x00\x00\x00\x00\xff\xfe")  # a masked text frame, bytes ff fe
    assert client.close is not None
    assert client.close.code == 1007


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_garbage_never_raises(before_open: bytes, after_open: bytes) -> None:
    fresh = EmulatorConnection(rng=random.Random(0), now=0.0)
    fresh.receive_data(before_open, now=1.0)
    fresh.data_to_send()
    client = Client()
    client.server.receive_data(after_open, now=client.now)
    client.server.data_to_send()
    client.server.handle_timer(now=client.now + 100)
    client.server.receive_eof(now=client.now + 101)
    assert client.server.should_close_transport


# ============================================================================ transcripts


def test_tone_audio_streamed_in_20ms_chunks_comes_back_word_for_word() -> None:
    text = "The quick brown fox jumps. Over the lazy dog!"
    client = Client(f"{LINEAR16}&punctuate=true&interim_results=true")
    client.realtime(speech(text))
    finals = client.finals
    assert transcript(finals) == text
    assert_contiguous(finals)
    # The real codec's layout gives each word's time on the audio clock.
    from dgproto.emulator._codec import layout

    expected = [t for w in layout(text) for t in (w.start, w.end)]
    got = [
        w[key]
        for r in finals
        for w in r["channel"]["alternatives"][0]["words"]
        for key in ("start", "end")
    ]
    assert got == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("encoding", "rate", "width"),
    [("mulaw", 8000, 1), ("alaw", 8000, 1), ("linear32", 48000, 4), ("linear16", 24000, 2)],
)
def test_every_supported_encoding_decodes(encoding: str, rate: int, width: int) -> None:
    client = Client(f"encoding={encoding}&sample_rate={rate}")
    audio = speech("Any encoding works.", sample_rate=rate, encoding=encoding)
    client.audio(audio, chunk=rate * width // 50)
    client.text({"type": "CloseStream"})
    assert words(client.results) == ["any", "encoding", "works"]
    assert client.messages[-1]["duration"] == pytest.approx(len(audio) / width / rate)


def test_results_have_the_wire_key_order_of_a_real_capture() -> None:
    capture = json.loads(
        (FIXTURES / "listen_v1_results_final_speech_final_wire_capture.json").read_text()
    )

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return [(k, shape(v)) for k, v in value.items()]
        if isinstance(value, list):
            return [shape(value[0])] if value and isinstance(value[0], dict) else "list"
        return type(value).__name__

    client = Client(f"{LINEAR16}&punctuate=true")
    client.audio(speech("Shape check."))
    final = client.finals[0]
    assert shape(final) == shape(capture)
    assert final["speech_final"] is True
    assert final["channel_index"] == [0, 1]
    assert final["metadata"]["model_info"] == {
        "name": "emulator-tone",
        "version": "2026-11-20.1",
        "arch": "dgproto-emulator",
    }


def test_transcript_is_lower_case_without_punctuation() -> None:
    client = Client()
    client.audio(speech("Shape check."))
    alternative = client.finals[0]["channel"]["alternatives"][0]
    assert alternative["transcript"] == "shape check"
    assert alternative["words"][0]["punctuated_word"] == "Shape"
    assert 0 < alternative["confidence"] <= 1


def test_interim_results_about_once_per_audio_second() -> None:
    client = Client(f"{LINEAR16}&interim_results=true&endpointing=false")
    client.realtime(silence(3.5))
    interims = [r for r in client.results if not r["is_final"]]
    assert [r["start"] for r in interims] == [0.0, 0.0, 0.0]
    assert [end_of(r) for r in interims] == pytest.approx([1.0, 2.0, 3.0])
    assert all(
        r["channel"]["alternatives"][0] == {"transcript": "", "confidence": 0.0, "words": []}
        for r in interims
    )


def test_interims_start_at_the_last_final_and_show_pending_words() -> None:
    client = Client(f"{LINEAR16}&interim_results=true")
    client.realtime(speech("First.", tail=0.5) + synthesize("second third fourth fifth sixth"))
    final = client.finals[0]
    later = [r for r in client.results if not r["is_final"] and r["start"] > 0]
    assert later
    assert all(r["start"] == pytest.approx(end_of(final)) for r in later)
    assert words([{**later[-1], "is_final": True}])[:3] == ["second", "third", "fourth"]


def test_no_interims_without_interim_results() -> None:
    client = Client()
    client.realtime(speech("A sentence here.", tail=2.0))
    assert all(r["is_final"] for r in client.results)


def test_endpointing_marks_sentence_ends_speech_final() -> None:
    client = Client(f"{LINEAR16}&punctuate=true")
    client.realtime(speech("Hello world. How are you? Fine.", tail=0.5))
    finals = client.finals
    assert [(r["channel"]["alternatives"][0]["transcript"], r["speech_final"]) for r in finals] == [
        ("Hello world.", True),
        ("How are you?", True),
        ("Fine.", True),
    ]
    assert_contiguous(finals)


def test_endpointing_waits_its_milliseconds_of_silence() -> None:
    client = Client(f"{LINEAR16}&endpointing=300")
    client.audio(synthesize("wait for it") + silence(0.29))
    assert client.finals == []
    client.audio(silence(0.02))
    final = client.finals[0]
    assert final["speech_final"] is True
    last_word_end = final["channel"]["alternatives"][0]["words"][-1]["end"]
    assert end_of(final) == pytest.approx(last_word_end + 0.3, abs=0.011)


def test_endpointing_false_gives_no_speech_final() -> None:
    client = Client(f"{LINEAR16}&endpointing=false")
    client.realtime(speech("One. Two. Three.", tail=4.0))
    finals = client.finals
    assert finals
    assert not any(r["speech_final"] for r in finals)
    assert all(r["duration"] == pytest.approx(5.0) for r in finals)
    assert_contiguous(finals)
    assert words(finals) == ["one", "two", "three"]


def test_long_speech_is_cut_into_max_segment_windows_between_words() -> None:
    config = EmulatorConfig(max_segment=1.0)
    client = Client(config=config)
    text = " ".join(["word"] * 12) + "."
    client.audio(speech(text, tail=0.5))
    finals = client.finals
    assert words(finals) == ["word"] * 12
    assert [r["speech_final"] for r in finals][-1] is True
    assert not any(r["speech_final"] for r in finals[:-1])
    assert_contiguous(finals)
    for result in finals:  # no word straddles a window edge
        for word in result["channel"]["alternatives"][0]["words"]:
            assert result["start"] - 1e-6 <= word["start"] <= word["end"] <= end_of(result) + 1e-6


def test_noise_without_tones_drives_vad_with_empty_transcripts() -> None:
    client = Client(f"{LINEAR16}&vad_events=true&interim_results=true")
    client.audio(silence(0.5) + noise(0.6) + silence(0.7))
    started = client.of_type("SpeechStarted")
    assert started == [{"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.5}]
    speech_finals = [r for r in client.finals if r["speech_final"]]
    assert len(speech_finals) == 1
    assert speech_finals[0]["channel"]["alternatives"][0]["transcript"] == ""
    assert end_of(speech_finals[0]) == pytest.approx(1.11, abs=0.006)


def test_speech_started_once_per_utterance() -> None:
    client = Client(f"{LINEAR16}&vad_events=true")
    client.audio(silence(0.3) + speech("Hello there friend. Again.", tail=0.5))
    stamps = [m["timestamp"] for m in client.of_type("SpeechStarted")]
    assert len(stamps) == 2
    assert stamps[0] == pytest.approx(0.3)
    kinds = [m["type"] for m in client.messages]
    assert kinds.index("SpeechStarted") < kinds.index("Results")


def test_utterance_end_reports_the_last_word_end() -> None:
    query = f"{LINEAR16}&interim_results=true&utterance_end_ms=1000&endpointing=false"
    client = Client(query)
    client.realtime(speech("Are you there?", tail=1.5))
    ends = client.of_type("UtteranceEnd")
    assert len(ends) == 1
    published = [w["end"] for r in client.results for w in r["channel"]["alternatives"][0]["words"]]
    assert ends[0] == {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": max(published)}
    kinds = [m["type"] for m in client.messages]
    first_words = next(
        i
        for i, m in enumerate(client.messages)
        if m.get("channel", {})
        and m["type"] == "Results"
        and m["channel"]["alternatives"][0]["words"]
    )
    assert first_words < kinds.index("UtteranceEnd")


def test_timestamps_follow_the_audio_clock_across_a_keepalive_gap() -> None:
    client = Client(f"{LINEAR16}&punctuate=true")
    client.realtime(speech("Before.", tail=0.2))
    for _ in range(4):
        client.advance(5.0)
        client.text({"type": "KeepAlive"})
    client.realtime(speech("After.", tail=0.2))
    client.text({"type": "CloseStream"})
    first, second = [r for r in client.finals if r["channel"]["alternatives"][0]["words"]]
    before = first["channel"]["alternatives"][0]["words"][0]
    after = second["channel"]["alternatives"][0]["words"][0]
    audio_before = len(speech("Before.", tail=0.2)) / 32000
    audio_after = len(speech("After.", tail=0.2)) / 32000
    assert before["start"] == 0.0
    assert after["start"] == pytest.approx(audio_before, abs=1e-3)  # 20 s of wall time later
    assert client.messages[-1]["duration"] == pytest.approx(audio_before + audio_after)


def test_multichannel_transcribes_each_channel() -> None:
    left = _pcm.linear16_to_samples(speech("Left side.", tail=0.5))
    right = _pcm.linear16_to_samples(speech("Right here now.", tail=0.2))
    audio = _pcm.interleave([left, right]).tobytes()
    client = Client(f"{LINEAR16}&channels=2&multichannel=true&vad_events=true")
    client.audio(audio, chunk=1000)
    client.text({"type": "Finalize", "channel": 1})
    by_channel: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    for result in client.finals:
        assert result["channel_index"][1] == 2
        by_channel[result["channel_index"][0]].append(result)
    assert words(by_channel[0]) == ["left", "side"]
    assert words(by_channel[1]) == ["right", "here", "now"]
    assert by_channel[1][-1]["from_finalize"] is True
    assert end_of(by_channel[1][-1]) == pytest.approx(client.server.audio_seconds_received)
    assert {tuple(m["channel"]) for m in client.of_type("SpeechStarted")} == {(0, 2), (1, 2)}
    client.text({"type": "CloseStream"})
    assert client.messages[-1]["channels"] == 2


def test_without_multichannel_only_channel_zero_is_transcribed() -> None:
    left = _pcm.linear16_to_samples(speech("Left only."))
    right = _pcm.linear16_to_samples(speech("Never heard."))
    audio = _pcm.interleave([left, right]).tobytes()
    client = Client(f"{LINEAR16}&channels=2")
    client.audio(audio)
    client.text({"type": "CloseStream"})
    assert words(client.results) == ["left", "only"]
    assert {tuple(r["channel_index"]) for r in client.results} == {(0, 1)}
    assert client.messages[-1]["duration"] == pytest.approx(len(audio) / 64000)


def test_noise_at_44100_gets_energy_events_and_no_words() -> None:
    client = Client("encoding=linear16&sample_rate=44100&vad_events=true")
    client.audio(noise(0.5, rate=44100) + bytes(2 * 44100))
    assert client.of_type("SpeechStarted")
    assert all(r["channel"]["alternatives"][0]["words"] == [] for r in client.results)
    recognizer = ToneRecognizer(channel=0, sample_rate=44100)
    assert recognizer.flush() == []


@pytest.mark.parametrize("rate", [22050, 44100])
def test_tone_audio_at_cd_rates_is_resampled_and_decoded(rate: int) -> None:
    text = "Hello from dgproto. Tones carry words."
    client = Client(f"encoding=linear16&sample_rate={rate}&punctuate=true")
    client.audio(synthesize(text, sample_rate=rate), chunk=3001)
    client.text({"type": "CloseStream"})
    assert (
        " ".join(r["channel"]["alternatives"][0]["transcript"] for r in client.finals).strip()
        == text
    )


def test_below_8000_hz_nothing_is_recognized() -> None:
    recognizer = ToneRecognizer(channel=0, sample_rate=6000)
    assert recognizer.feed(array("h", bytes(1200))) == []
    assert recognizer.flush() == []


def test_scripted_recognizer_replays_words_on_the_audio_clock() -> None:
    script = ScriptedRecognizer.words_from_text("Book a table, please.", start=0.5)
    config = EmulatorConfig(recognizer=ScriptedRecognizer.factory(script))
    client = Client(f"{LINEAR16}&punctuate=true", config=config)
    client.audio(noise(2.5) + silence(0.5))
    assert transcript(client.finals) == "Book a table, please."
    assert client.finals[0]["channel"]["alternatives"][0]["words"][0]["start"] == 0.5


def test_scripted_recognizer_flush_cuts_started_words() -> None:
    script = ScriptedRecognizer.words_from_text("alpha beta gamma", word_seconds=0.4)
    recognizer = ScriptedRecognizer(words=script, sample_rate=1000)
    assert recognizer.feed(array("h", bytes(2 * 600))) == script[:1]
    cut = recognizer.flush()
    assert [(w.word, w.end) for w in cut] == [("beta", 0.6)]
    assert recognizer.feed(array("h", bytes(2 * 1000))) == script[2:]
    assert ScriptedRecognizer.words_from_text("-- ok") == [
        RecognizedWord(word="ok", punctuated_word="ok", start=0.0, end=0.4, confidence=0.99)
    ]
    per_channel = ScriptedRecognizer.factory({1: script})
    assert per_channel(channel=0, sample_rate=8000).flush() == []


# ============================================================================ faults


def _session_with(faults: str, query: str = LINEAR16, **kwargs: Any) -> Client:
    return Client(query, faults=FaultPlan.parse(faults), **kwargs)


def test_drop_after_messages_closes_without_a_close_frame() -> None:
    client = _session_with("drop_after_messages=2")
    for _ in range(4):
        client.text("garbage")
    assert len(client.texts) == 2
    assert close_of(client) is None
    assert client.server.should_close_transport
    assert client.server.messages_sent == 2


def test_drop_after_zero_messages_drops_right_after_the_upgrade() -> None:
    client = _session_with("drop_after_messages=0")
    assert client.accepted is not None
    assert client.server.should_close_transport


def test_drop_after_seconds() -> None:
    client = _session_with("drop_after_seconds=3")
    assert client.server.get_timer() == pytest.approx(client.now + 3)
    client.advance(2.9)
    assert not closing(client.server)
    client.advance(0.2)
    assert client.server.should_close_transport
    assert close_of(client) is None


def test_stall_after_messages_stops_everything() -> None:
    client = _session_with("stall_after_messages=1")
    client.text("garbage")
    client.text("garbage")
    client.send(Ping(payload=b"x"))
    client.send(CloseConnection(code=1000))
    client.advance(60.0)  # not even the idle close comes
    assert len(client.texts) == 1
    assert client.pongs == []
    assert close_of(client) is None
    assert not closing(client.server)
    assert client.server.get_timer() is None
    client.server.receive_eof(now=client.now)
    assert client.server.should_close_transport


def test_stall_after_seconds_and_then_drop() -> None:
    client = _session_with("stall_after_seconds=1,drop_after_seconds=5")
    client.advance(1.0)
    client.text("garbage")
    assert client.texts == []
    client.advance(4.0)
    assert client.server.should_close_transport


def test_delay_holds_every_message_in_order() -> None:
    client = _session_with("delay=0.5")
    client.text("garbage")
    client.advance(0.2)
    client.text({"type": "Configure"})
    assert client.texts == []
    assert client.server.get_timer() == pytest.approx(client.now + 0.3)
    client.advance(0.3)
    assert [m["type"] for m in client.messages] == ["Error"]
    client.advance(0.2)
    assert [m["type"] for m in client.messages] == ["Error", "ConfigureSuccess"]
    client.send(Ping(payload=b"now"))
    assert client.pongs  # pongs are not delayed


def test_delay_also_holds_the_close_frame() -> None:
    client = _session_with("delay=1")
    client.text({"type": "CloseStream"})
    assert close_of(client) is None
    client.advance(1.0)
    assert client.close is not None
    assert client.messages[-1]["type"] == "Metadata"


def test_fragment_splits_text_messages_into_small_frames() -> None:
    client = _session_with("fragment=16")
    client.text("not json ünïcödé ✓ " * 3)
    assert len(client.frames) > 5
    assert all(len(f.data.encode()) <= 16 for f in client.frames)
    assert [f.message_finished for f in client.frames][-1] is True
    assert not any(f.message_finished for f in client.frames[:-1])
    assert client.messages[0]["variant"] == "SchemaError"


def test_split_utf8_never_cuts_a_character() -> None:
    assert _split_utf8("aé✓b", 2) == ["a", "é", "✓", "b"]
    assert _split_utf8("", 3) == [""]
    assert "".join(_split_utf8("x" * 10 + "✓" * 3, 4)) == "x" * 10 + "✓" * 3


def test_ping_interval_sends_pings() -> None:
    client = _session_with("ping_interval=2")
    client.advance(5.0)
    assert len(client.pings) == 2
    assert client.pings[0].payload != client.pings[1].payload
    assert len(client.pings[0].payload) == 8


def test_a_late_timer_call_sends_one_ping_not_a_burst() -> None:
    client = _session_with("ping_interval=1")
    client.now += 5.5
    client.server.handle_timer(now=client.now)
    client.deliver()
    assert len(client.pings) == 1
    assert client.server.get_timer() == pytest.approx(client.now + 1)


def test_unknown_and_malformed_messages_are_injected() -> None:
    client = _session_with("unknown_every=2,malformed_every=3")
    for _ in range(6):
        client.text({"type": "Configure"})
    texts = client.texts
    assert texts.count('{"type":"Results","channel_index":[0,') == 2
    unknown = [m for m in client.messages if m["type"] == "EmulatorUnknown"]
    assert len(unknown) == 3
    assert client.server.messages_sent == 6


def test_close_after_messages_with_a_code_and_reason() -> None:
    reason = "Deepgram did not provide a response message within the timeout window"
    client = _session_with(f"close_after_messages=1,close_code=1011,close_reason={reason}")
    configure = TextMessage(data='{"type": "Configure"}')
    client.raw(client.ws.send(configure) + client.ws.send(configure))
    assert len(client.texts) == 1
    assert client.close is not None
    assert (client.close.code, client.close.reason) == (1011, reason)
    assert client.server.should_close_transport


def test_close_after_seconds() -> None:
    client = _session_with("close_after_seconds=2,close_code=4000")
    client.advance(2.0)
    assert client.close is not None
    assert client.close.code == 4000
    assert client.close.reason == ""


def test_close_after_zero_messages_closes_at_once() -> None:
    client = _session_with("close_after_messages=0")
    assert client.close is not None
    assert client.close.code == 1011


@pytest.mark.parametrize(
    ("status", "key", "code"),
    [
        (429, "err_code", "TOO_MANY_REQUESTS"),
        (402, "err_code", "ASR_PAYMENT_REQUIRED"),
        (503, "error_code", "Service Unavailable"),
        (418, "err_code", "Error"),
    ],
)
def test_reject_status(status: int, key: str, code: str) -> None:
    client = _session_with(f"reject_status={status}")
    assert client.rejected is not None
    assert client.rejected.status_code == status
    body = client.error_body()
    assert body[key] == code
    assert body["request_id"] == client.server.request_id


def test_reject_with_a_custom_body() -> None:
    client = _session_with("reject_status=403,reject_err_code=NOPE,reject_err_msg=Go away.")
    assert client.error_body()["err_code"] == "NOPE"
    assert client.headers()["dg-error"] == "Go away."


def test_faults_from_the_request_header() -> None:
    headers = [(b"authorization", b"Token k"), (b"x-dgproto-faults", b"reject_status=429")]
    client = Client(headers=headers)
    assert client.rejected is not None
    assert client.rejected.status_code == 429
    bad = Client(headers=[(b"x-dgproto-faults", b"explode=1")])
    assert bad.rejected is not None
    assert bad.rejected.status_code == 400
    assert "explode" in bad.error_body()["err_msg"]
    ignored = Client(headers=headers, config=EmulatorConfig(fault_header=None))
    assert ignored.accepted is not None


def test_config_faults_apply_to_every_session_unless_overridden() -> None:
    config = EmulatorConfig(faults=FaultPlan(reject_status=500))
    assert Client(config=config).rejected is not None
    assert Client(config=config, faults=FaultPlan()).accepted is not None


# ============================================================================ FaultPlan


def test_fault_plan_parse() -> None:
    plan = FaultPlan.parse(" drop_after_messages = 3 , fragment=16,,delay=0.25 ")
    assert plan == FaultPlan(drop_after_messages=3, fragment=16, delay=0.25)
    assert plan.any
    assert not FaultPlan.parse("").any


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nope=1", "unknown fault 'nope'"),
        ("fragment", "expected key=value"),
        ("fragment=x", "fragment must be an int"),
        ("delay=soon", "delay must be a number"),
        ("fragment=0", "FaultPlan.fragment"),
        ("delay=0", "FaultPlan.delay must be > 0"),
        ("drop_after_seconds=-1", "FaultPlan.drop_after_seconds"),
        ("drop_after_seconds=nan", "FaultPlan.drop_after_seconds"),
        ("close_code=1006", "FaultPlan.close_code"),
        ("close_code=999", "FaultPlan.close_code"),
        ("reject_status=200", "FaultPlan.reject_status"),
        ("close_reason=" + "x" * 124, "FaultPlan.close_reason"),
    ],
)
def test_fault_plan_rejects_bad_specs(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        FaultPlan.parse(spec)


def test_fault_plan_field_checks() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        FaultPlan.parse(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reject_err_code"):
        FaultPlan(reject_err_code=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown_every"):
        FaultPlan(unknown_every=True)


def test_every_fault_field_is_parseable() -> None:
    from dgproto.emulator._faults import _FIELD_KINDS

    assert list(_FIELD_KINDS) == [f.name for f in attrs.fields(FaultPlan)]


fault_plans = st.builds(
    FaultPlan,
    drop_after_seconds=st.none() | st.floats(0, 1e6),
    drop_after_messages=st.none() | st.integers(0, 1000),
    delay=st.none() | st.floats(0.001, 100),
    fragment=st.none() | st.integers(1, 1000),
    ping_interval=st.none() | st.floats(0.01, 100),
    close_code=st.sampled_from([1000, 1008, 1011, 4000]),
    close_reason=st.text(
        st.characters(blacklist_characters=",", blacklist_categories=["Cs"]), max_size=20
    ).map(str.strip),
    reject_status=st.none() | st.integers(400, 599),
    reject_err_msg=st.none() | st.text("abc ", min_size=1, max_size=5).map(str.strip).filter(bool),
)


@settings(max_examples=60, deadline=None)
@given(fault_plans)
def test_fault_plan_spec_round_trips(plan: FaultPlan) -> None:
    assert FaultPlan.parse(plan.to_spec()) == plan


# ============================================================================ config


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"interim_interval": -1}, "interim_interval"),
        ({"vad_threshold": float("nan")}, "vad_threshold"),
        ({"max_message_size": 0}, "max_message_size"),
        ({"accepted_keys": "one-key"}, "accepted_keys"),
        ({"accepted_keys": [""]}, "accepted_keys"),
        ({"path": "v1/listen"}, "path"),
        ({"model_info": {"name": "x"}}, "model_info"),
        ({"vad_hangover": True}, "vad_hangover"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        EmulatorConfig(**kwargs)


def test_public_api() -> None:
    assert set(emulator.__all__) >= {
        "EmulatorConnection",
        "EmulatorConfig",
        "FaultPlan",
        "Recognizer",
        "ToneRecognizer",
        "ScriptedRecognizer",
        "synthesize",
        "silence",
    }
    for name in emulator.__all__:
        assert getattr(emulator, name) is not None


# ============================================================================ Segmenter


def _word(text: str, start: float, end: float) -> RecognizedWord:
    return RecognizedWord(word=text, punctuated_word=text, start=start, end=end)


def _feed(
    segmenter: Segmenter,
    pattern: str,
    *,
    frame: float = 0.1,
    words: dict[int, RecognizedWord] | None = None,
) -> list[Any]:
    """Step once per character: ``#`` loud, ``.`` quiet; ``words`` arrive at given steps."""
    out: list[Any] = []
    for index, char in enumerate(pattern):
        arrived = [words[index]] if words and index in words else []
        out.extend(
            segmenter.step(end=round((index + 1) * frame, 6), loud=char == "#", words=arrived)
        )
    return out


def test_segmenter_endpoint_after_speech_and_silence() -> None:
    segmenter = Segmenter(SegmenterSettings(endpointing=0.2, vad_events=True))
    out = _feed(segmenter, "..##...", words={3: _word("hi", 0.2, 0.4)})
    assert out[0] == SpeechStart(timestamp=0.2)
    final = out[1]
    assert isinstance(final, Window)
    assert (final.start, final.end, final.speech_final) == (0.0, 0.6, True)
    assert [w.word for w in final.words] == ["hi"]
    assert len(out) == 2  # no second endpoint for the same speech


def test_segmenter_forced_cut_keeps_words_inside_windows() -> None:
    segmenter = Segmenter(SegmenterSettings(endpointing=None, max_segment=0.5))
    out = _feed(segmenter, "#######", words={2: _word("a", 0.0, 0.25), 6: _word("b", 0.3, 0.65)})
    finals = [o for o in out if isinstance(o, Window)]
    assert [(f.start, f.end) for f in finals] == [(0.0, 0.25)]
    assert segmenter.pending_words == (_word("b", 0.3, 0.65),)


def test_segmenter_forced_cut_keeps_the_utterance_for_endpointing() -> None:
    segmenter = Segmenter(SegmenterSettings(endpointing=0.2, max_segment=0.3))
    out = _feed(segmenter, "###..")
    finals = [o for o in out if isinstance(o, Window)]
    assert [(f.end, f.speech_final) for f in finals] == [(0.3, False), (0.5, True)]


def test_segmenter_utterance_gap_waits_for_the_words_to_be_published() -> None:
    settings_ = SegmenterSettings(
        interim_results=True, interim_interval=0.5, endpointing=None, utterance_end=0.2
    )
    segmenter = Segmenter(settings_)
    out = _feed(segmenter, "##......", words={1: _word("w", 0.0, 0.2)})
    kinds = [type(o).__name__ for o in out]
    assert kinds == ["Window", "UtteranceGap"]
    assert out[1] == UtteranceGap(last_word_end=0.2)
    (flushed,) = segmenter.flush(words=[], from_finalize=True)
    assert isinstance(flushed, Window)
    assert flushed.from_finalize


def test_segmenter_last_word_end_is_the_latest_end() -> None:
    settings_ = SegmenterSettings(endpointing=None, utterance_end=0.3, interim_results=True)
    segmenter = Segmenter(settings_)
    words_ = {0: _word("long", 0.0, 0.3), 1: _word("inner", 0.1, 0.2)}
    out = _feed(segmenter, "........................", words=words_, frame=0.05)
    assert [o for o in out if isinstance(o, UtteranceGap)] == [UtteranceGap(last_word_end=0.3)]


def test_segmenter_flush_with_nothing_new_is_silent() -> None:
    segmenter = Segmenter(SegmenterSettings())
    assert segmenter.flush(words=[], from_finalize=True) == []
    late = segmenter.flush(words=[_word("x", 0.0, 0.0)], from_finalize=False)
    assert isinstance(late[0], Window)
    assert late[0].words[0].word == "x"


def test_channel_transcriber_frames_and_flushes_the_remainder() -> None:
    script = [_word("yes", 0.001, 0.002)]
    transcriber = ChannelTranscriber(
        recognizer=ScriptedRecognizer(words=script, sample_rate=1000),
        settings=SegmenterSettings(endpointing=None),
        sample_rate=1000,
        frame_samples=10,
        vad_threshold=100.0,
    )
    assert transcriber.feed(array("h", [0] * 15)) == []
    assert transcriber.segmenter.position == 0.01
    (final,) = transcriber.flush(from_finalize=True)
    assert isinstance(final, Window)
    assert final.end == 0.015
    assert [w.word for w in final.words] == ["yes"]
