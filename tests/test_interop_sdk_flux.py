"""The official deepgram-sdk (7.x) ``listen.v2`` client streams to the emulator's Flux.

Like ``test_interop_sdk.py`` for v1: the SDK is pointed at the emulator through its
documented ``DeepgramClientEnvironment`` and never reaches the network. The SDK parses
every frame into its own pydantic types, so this also proves the emulator's Flux frames
have the shapes the official client expects.
"""

from __future__ import annotations

from typing import Any

import pytest

from dgproto.emulator import EmulatorConfig, silence, synthesize
from dgproto.transports.server import serve_in_thread

deepgram = pytest.importorskip("deepgram")
from deepgram import DeepgramClient  # noqa: E402

from .test_interop_sdk import _environment  # noqa: E402

SENTENCES = ["Hello from the official client.", "Flux hears two turns."]
CHUNK = 2560  # 80 ms of linear16 at 16 kHz, as Deepgram recommends for Flux


def test_official_sdk_flux_client_gets_turns_with_the_right_transcripts() -> None:
    audio = b"".join(synthesize(s) + silence(0.6) for s in SENTENCES)
    config = EmulatorConfig(accepted_keys=frozenset({"interop-key"}))
    with serve_in_thread(config=config) as server:
        client = DeepgramClient(api_key="interop-key", environment=_environment(server.port))
        messages: list[Any] = []
        with client.listen.v2.connect(
            model="flux-general-en",
            encoding="linear16",
            sample_rate=16000,
            eager_eot_threshold=0.5,
        ) as socket:
            for i in range(0, len(audio), CHUNK):
                socket.send_media(audio[i : i + CHUNK])
            socket.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 0.8}})
            socket.send_close_stream()
            messages.extend(socket)  # until the server's close frame
        (record,) = server.connections
    types = [type(m).__name__ for m in messages]
    assert types[0] == "ListenV2Connected"
    turns = [m for m in messages if type(m).__name__ == "ListenV2TurnInfo"]
    ends = [m for m in turns if m.event == "EndOfTurn"]
    assert [m.transcript for m in ends] == SENTENCES
    assert [m.turn_index for m in ends] == [0, 1]
    assert all(m.trigger == "model" for m in ends)
    assert {m.event for m in turns} >= {"StartOfTurn", "Update", "EagerEndOfTurn", "EndOfTurn"}
    (success,) = [m for m in messages if type(m).__name__ == "ListenV2ConfigureSuccess"]
    assert success.thresholds.eot_threshold == 0.8
    sequence = [m.sequence_id for m in messages]
    assert sequence == list(range(len(messages)))
    assert record.emulator.close_sent is not None
    assert record.emulator.close_sent[0] == 1000


def test_official_sdk_flux_client_is_refused_a_v1_model() -> None:
    with serve_in_thread(config=EmulatorConfig()) as server:
        client = DeepgramClient(api_key="k", environment=_environment(server.port))
        with pytest.raises(Exception) as info, client.listen.v2.connect(model="nova-3"):
            pass
    assert "400" in str(info.value)
