"""The emulator's Flux endpoint (``/v2/listen``): handshake rules, the turn cadence of the
real session fixture, Configure, ForceEndTurn, fatal messages, CloseStream and faults.

Driven by a bare wsproto client (``emulator_helpers.Client``) and, end to end, by
``FluxConnection`` through a ``MemoryPipe``, all on a virtual clock.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from dgproto import (
    Auth,
    Closed,
    Config,
    ConfigureFailure,
    ConfigureSuccess,
    FluxConnected,
    FluxConnection,
    FluxOptions,
    ServerError,
    TurnInfo,
)
from dgproto.emulator import (
    EmulatorConfig,
    EmulatorConnection,
    FaultPlan,
    ScriptedRecognizer,
    silence,
    synthesize,
)
from dgproto.emulator._turns import TurnSettings

from .emulator_helpers import LINEAR16, Client, close_of, closing
from .memory_pipe import MemoryPipe

FLUX = f"model=flux-general-en&{LINEAR16}"
CHUNK = 2560  # 80 ms


def flux(query: str = FLUX, **kwargs: Any) -> Client:
    return Client(target=f"/v2/listen?{query}", **kwargs)


def turns(client: Client) -> list[dict[str, Any]]:
    return client.of_type("TurnInfo")


def events(client: Client) -> list[tuple[str, int, str]]:
    return [(m["event"], m["turn_index"], m["transcript"]) for m in turns(client)]


def stream(client: Client, audio: bytes) -> None:
    client.audio(audio, chunk=CHUNK, seconds_per_chunk=0.08)


# ---------------------------------------------------------------------------- handshake


def test_flux_opens_with_connected_and_sequence_ids_count_every_message() -> None:
    client = flux()
    assert client.accepted is not None
    assert client.messages[0] == {
        "type": "Connected",
        "request_id": client.server.request_id,
        "sequence_id": 0,
    }
    stream(client, synthesize("Hello there.") + silence(0.6))
    sequence = [m["sequence_id"] for m in client.messages]
    assert sequence == list(range(len(sequence)))
    assert all(m["request_id"] == client.server.request_id for m in client.messages)
    assert isinstance(client.server.options, FluxOptions)


@pytest.mark.parametrize(
    ("query", "err_code", "fragment"),
    [
        (LINEAR16, "INVALID_QUERY_PARAMETER", "model is required"),
        (f"{FLUX}&eot_threshold=0.4", "INVALID_QUERY_PARAMETER", "eot_threshold must be"),
        (f"{FLUX}&eot_timeout_ms=60001", "INVALID_QUERY_PARAMETER", "from 500 to 60000"),
        (f"{FLUX}&eager_eot_threshold=x", "INVALID_QUERY_PARAMETER", "eager_eot_threshold"),
        (f"{FLUX}&encoding=flac", "INVALID_QUERY_PARAMETER", "encoding must be one of"),
        (f"model=nova-3&{LINEAR16}", "Bad Request", "connect to /v1/listen instead"),
        ("model=flux-general-en", "Bad Request", "needs raw audio"),
        ("model=flux-general-en&encoding=opus&sample_rate=16000", "Bad Request", "cannot decode"),
    ],
)
def test_bad_flux_queries_get_deepgram_style_400s(query: str, err_code: str, fragment: str) -> None:
    client = flux(query)
    assert client.rejected is not None
    assert client.rejected.status_code == 400
    body = client.error_body()
    assert body["err_code"] == err_code
    assert fragment in body["err_msg"]
    assert "FluxOptions." not in body["err_msg"]
    assert client.headers()["dg-error"] == body["err_msg"]


def test_a_flux_model_on_v1_is_still_refused() -> None:
    client = Client(f"model=flux-general-en&{LINEAR16}")
    assert client.rejected is not None
    assert "/v2/listen" in client.error_body()["err_msg"]


def test_flux_can_be_switched_off_or_moved() -> None:
    off = flux(config=EmulatorConfig(flux_path=None))
    assert off.rejected is not None
    assert off.rejected.status_code == 404
    moved = Client(target=f"/flux?{FLUX}", config=EmulatorConfig(flux_path="/flux"))
    assert moved.accepted is not None
    with pytest.raises(ValueError, match="must differ"):
        EmulatorConfig(flux_path="/v1/listen")
    with pytest.raises(ValueError, match="flux_path"):
        EmulatorConfig(flux_path="v2")


def test_auth_applies_to_flux() -> None:
    client = flux(headers=())
    assert client.rejected is not None
    assert client.rejected.status_code == 401


# ---------------------------------------------------------------------------- turns


def test_turns_follow_the_real_sessions_shape() -> None:
    client = flux(f"{FLUX}&eager_eot_threshold=0.5")
    first = "Hello there my good old friend."
    stream(client, synthesize(first) + silence(0.4) + synthesize("How are you?"))
    stream(client, silence(1.0))
    infos = turns(client)
    kinds = [(m["event"], m["turn_index"]) for m in infos]
    # Updates start before StartOfTurn, on the 240 ms grid of the turn's window
    assert kinds[0] == ("Update", 0)
    assert infos[0]["audio_window_end"] == 0.24
    assert ("StartOfTurn", 0) in kinds
    assert ("StartOfTurn", 1) in kinds
    ends = [m for m in infos if m["event"] == "EndOfTurn"]
    assert [m["transcript"] for m in ends] == [first, "How are you?"]
    assert [m["trigger"] for m in ends] == ["model", "model"]
    assert all(m["end_of_turn_confidence"] >= 0.7 for m in ends)
    # EagerEndOfTurn comes before each EndOfTurn, in the same turn
    for end in ends:
        before = [m for m in infos if m["turn_index"] == end["turn_index"]]
        assert [m["event"] for m in before].count("EagerEndOfTurn") == 1
    # the next turn's window starts where the last EndOfTurn ended
    first_end = ends[0]
    later = [m for m in infos if m["turn_index"] == 1]
    assert {m["audio_window_start"] for m in later} == {first_end["audio_window_end"]}
    # 240 ms steps mid-sentence, 80 ms steps while the turn may be ending
    updates = [m["audio_window_end"] for m in infos if m["turn_index"] == 0]
    steps = {round(b - a, 2) for a, b in itertools.pairwise(updates)}
    assert steps <= {0.08, 0.16, 0.24}
    assert 0.08 in steps
    assert 0.24 in steps
    # Updates go on through silence with the next turn's index and an empty transcript
    tail = infos[-1]
    assert (tail["event"], tail["turn_index"], tail["transcript"]) == ("Update", 2, "")
    word = ends[0]["words"][-1]
    assert set(word) == {"word", "confidence", "start", "end"}
    assert word["word"] == "friend."


def test_words_after_an_eager_end_give_turn_resumed() -> None:
    client = flux(f"{FLUX}&eager_eot_threshold=0.5&eot_threshold=1.0&eot_timeout_ms=1500")
    stream(client, synthesize("Wait. There is more.") + silence(2.0))
    seen = [(e, i) for e, i, _ in events(client) if e != "Update"]
    assert seen == [
        ("StartOfTurn", 0),
        ("EagerEndOfTurn", 0),
        ("TurnResumed", 0),
        ("EagerEndOfTurn", 0),
        ("EndOfTurn", 0),
    ]
    [end] = [m for m in turns(client) if m["event"] == "EndOfTurn"]
    assert end["transcript"] == "Wait. There is more."
    assert end["trigger"] == "timeout"  # eot_threshold=1.0: only the timeout ends it


def test_no_eager_events_without_eager_eot_threshold() -> None:
    client = flux()
    stream(client, synthesize("Just one turn.") + silence(0.6))
    names = {e for e, _, _ in events(client)}
    assert names == {"Update", "StartOfTurn", "EndOfTurn"}


def test_an_unfinished_sentence_ends_on_eot_timeout() -> None:
    config = EmulatorConfig(
        recognizer=ScriptedRecognizer.factory(ScriptedRecognizer.words_from_text("well so"))
    )
    client = flux(f"{FLUX}&eot_timeout_ms=500", config=config)
    stream(client, silence(2.0))
    [end] = [m for m in turns(client) if m["event"] == "EndOfTurn"]
    assert (end["transcript"], end["trigger"]) == ("well so", "timeout")


def test_force_end_turn_ends_the_turn_now() -> None:
    client = flux()
    stream(client, synthesize("Hold on"))
    client.text({"type": "ForceEndTurn"})
    [end] = [m for m in turns(client) if m["event"] == "EndOfTurn"]
    assert (end["transcript"], end["trigger"], end["turn_index"]) == ("Hold on", "manual", 0)
    stream(client, silence(0.24))
    assert turns(client)[-1]["turn_index"] == 1


def test_close_stream_sends_the_last_turns_events_then_closes_1000() -> None:
    client = flux()
    stream(client, synthesize("Goodbye now"))
    client.text({"type": "CloseStream"})
    last = turns(client)[-1]
    assert (last["event"], last["transcript"], last["trigger"]) == (
        "EndOfTurn",
        "Goodbye now",
        "model",
    )
    close = close_of(client)
    assert close is not None
    assert close.code == 1000
    assert client.of_type("Metadata") == []  # Flux sends no Metadata
    assert closing(client)


def test_close_stream_with_nothing_said_just_closes() -> None:
    client = flux()
    client.text({"type": "CloseStream"})
    assert turns(client) == []
    close = close_of(client)
    assert close is not None
    assert close.code == 1000


# ---------------------------------------------------------------------------- control


def test_configure_applies_and_echoes_the_settings_in_force() -> None:
    client = flux(f"{FLUX}&keyterm=Deepgram&eager_eot_threshold=0.5")
    stream(client, silence(0.24))
    assert "languages_hinted" not in turns(client)[-1]
    client.text(
        {
            "type": "Configure",
            "thresholds": {"eot_threshold": 0.8, "eot_timeout_ms": 7000},
            "language_hints": ["en"],
            "numerals": True,
        }
    )
    [success] = client.of_type("ConfigureSuccess")
    assert success["thresholds"] == {
        "eot_threshold": 0.8,
        "eager_eot_threshold": 0.5,
        "eot_timeout_ms": 7000,
    }
    assert success["keyterms"] == ["Deepgram"]
    assert (success["language_hints"], success["numerals"], success["profanity_filter"]) == (
        ["en"],
        True,
        False,
    )
    client.text(
        {"type": "Configure", "keyterms": ["Flux"], "thresholds": {"eager_eot_threshold": 0.3}}
    )
    second = client.of_type("ConfigureSuccess")[-1]
    assert second["keyterms"] == ["Flux"]
    assert second["thresholds"]["eager_eot_threshold"] == 0.3
    assert client.server.flux is not None
    assert client.server.flux.settings.eot_timeout == 7.0
    stream(client, synthesize("I have two cats.") + silence(0.6))
    ends = [m for m in turns(client) if m["event"] == "EndOfTurn"]
    assert ends[0]["transcript"] == "I have 2 cats."  # numerals applied mid-stream
    assert ends[0]["languages_hinted"] == ["en"]


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"thresholds": {"eot_threshold": 1.5}}, "eot_threshold"),
        ({"thresholds": {"speed": 1}}, "keys must be among"),
        ({"keyterms": "x"}, "keyterms must be a list"),
        ({"language_hints": [1]}, "language_hints must be a list"),
        ({"numerals": "yes"}, "numerals must be"),
        ({"features": {}}, "unknown"),
    ],
)
def test_invalid_configure_gets_configure_failure_and_changes_nothing(
    message: dict[str, Any], fragment: str
) -> None:
    client = flux()
    client.text({"type": "Configure", **message})
    [failure] = client.of_type("ConfigureFailure")
    assert failure["code"] == "INVALID_CONFIGURE"
    assert fragment in failure["description"]
    assert client.server.flux is not None
    assert client.server.flux.settings == TurnSettings()
    assert not closing(client)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"type":"KeepAlive"}', "KeepAlive is not a Flux message"),
        ('{"type":"Finalize"}', "Finalize is not a Flux message"),
        ('{"type":"Bogus"}', "Unknown message type 'Bogus'"),
        ("[1]", "string 'type' field"),
        ("not json", "not valid JSON"),
    ],
)
def test_anything_else_is_a_fatal_unparsable_client_message(text: str, fragment: str) -> None:
    client = flux()
    client.text(text)
    [error] = client.of_type("Error")
    assert error["code"] == "UNPARSABLE_CLIENT_MESSAGE"
    assert fragment in error["description"]
    assert error["sequence_id"] == 1
    close = close_of(client)
    assert close is not None
    assert (close.code, close.reason) == (1008, "UNPARSABLE_CLIENT_MESSAGE")
    assert closing(client)


# ---------------------------------------------------------------------------- time, faults


def test_pings_keep_an_idle_flux_stream_open_and_silence_does_not() -> None:
    config = EmulatorConfig(idle_timeout=5.0)
    client = flux(config=config)
    from wsproto.events import Ping

    for _ in range(4):
        client.advance(3.0)
        client.send(Ping(payload=b"p"))
    assert close_of(client) is None
    client.advance(6.0)
    close = close_of(client)
    assert close is not None
    assert close.code == 1011
    assert client.of_type("Metadata") == []


def test_faults_apply_to_flux_sessions() -> None:
    client = flux(faults=FaultPlan(close_after_messages=3, close_code=1011, close_reason="boom"))
    stream(client, silence(0.48))  # Connected, Update at 0.24 s, Update at 0.48 s
    assert len(client.messages) == 3
    close = close_of(client)
    assert close is not None
    assert (close.code, close.reason) == (1011, "boom")
    unknown = flux(faults=FaultPlan(unknown_every=2))
    stream(unknown, silence(0.5))
    assert unknown.of_type("EmulatorUnknown")


# ---------------------------------------------------------------------------- end to end


def test_flux_connection_against_the_emulator_core() -> None:
    server = EmulatorConnection(rng=random.Random(3), now=0.0)
    client = FluxConnection(
        options=FluxOptions(
            model="flux-general-en", encoding="linear16", sample_rate=16000, eager_eot_threshold=0.5
        ),
        auth=Auth.token("k"),
        host="emulator",
        config=Config(ping_interval=2.0),
    )
    pipe = MemoryPipe(client, server, now=0.0)
    audio = synthesize("Book a table. For two people.") + silence(1.0)
    for i in range(0, len(audio), CHUNK):
        client.send_audio(audio[i : i + CHUNK], now=pipe.now)
        pipe.advance(0.08)
    client.configure(thresholds={"eot_threshold": 0.9}, now=pipe.now)
    pipe.pump()
    client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    got = pipe.events
    assert isinstance(got[1], FluxConnected)
    assert got[1].request_id == client.request_id == server.request_id
    ends = [e for e in got if isinstance(e, TurnInfo) and e.event == "EndOfTurn"]
    assert [e.transcript for e in ends] == ["Book a table.", "For two people."]
    assert all(e.words and e.words[-1].end is not None for e in ends)
    assert any(
        isinstance(e, ConfigureSuccess) and e.thresholds["eot_threshold"] == 0.9 for e in got
    )
    assert not any(isinstance(e, (ConfigureFailure, ServerError)) for e in got)
    closed = got[-1]
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (1000, True)
    assert client.audio_seconds_sent == pytest.approx(len(audio) / 32000)


def test_configure_success_shows_the_server_defaults_when_nothing_was_set() -> None:
    client = flux()
    client.text({"type": "Configure", "keyterms": ["Flux"]})
    [success] = client.of_type("ConfigureSuccess")
    assert success["thresholds"] == {"eot_threshold": 0.7, "eot_timeout_ms": 5000}
    assert success["keyterms"] == ["Flux"]
    assert "language_hints" not in success
    assert success["sequence_id"] == 1
