"""The official deepgram-sdk (7.x) streams to the emulator: proof it speaks the real protocol.

The SDK is a dev dependency; it is pointed at the emulator through its documented
``DeepgramClientEnvironment`` and never reaches the network.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from dgproto.emulator import EmulatorConfig, silence, synthesize
from dgproto.transports.server import serve_in_thread

deepgram = pytest.importorskip("deepgram")
from deepgram import DeepgramClient  # noqa: E402
from deepgram.environment import DeepgramClientEnvironment  # noqa: E402

SPEECH = "Hello from the official client. It streams to the emulator."


def _environment(port: int) -> Any:
    return DeepgramClientEnvironment(
        base=f"http://127.0.0.1:{port}",
        production=f"ws://127.0.0.1:{port}",
        agent=f"ws://127.0.0.1:{port}",
        agent_rest=f"http://127.0.0.1:{port}",
    )


def test_official_sdk_streams_finalizes_and_closes_cleanly() -> None:
    audio = synthesize(SPEECH, sample_rate=16000) + silence(0.1, sample_rate=16000)
    config = EmulatorConfig(accepted_keys=frozenset({"interop-key"}))
    with serve_in_thread(config=config) as server:
        client = DeepgramClient(api_key="interop-key", environment=_environment(server.port))
        messages: list[Any] = []
        with client.listen.v1.connect(
            model="nova-3",
            encoding="linear16",
            sample_rate=16000,
            interim_results="true",
            punctuate="true",
        ) as socket:
            half = len(audio) // 2 // 640 * 640
            for i in range(0, half, 640):
                socket.send_media(audio[i : i + 640])
            socket.send_finalize()
            for i in range(half, len(audio), 640):
                socket.send_media(audio[i : i + 640])
            socket.send_close_stream()
            messages.extend(socket)  # until the server's close frame
        records = server.connections
    finals = [m for m in messages if getattr(m, "type", None) == "Results" and m.is_final]
    transcript = " ".join(m.channel.alternatives[0].transcript for m in finals).split()
    assert transcript == SPEECH.split()
    assert any(m.from_finalize for m in finals)
    metadata = [m for m in messages if getattr(m, "type", None) == "Metadata"]
    assert len(metadata) == 1
    assert metadata[0].duration == pytest.approx(len(audio) / 32000)
    assert metadata[0].sha256 == hashlib.sha256(audio).hexdigest()
    (record,) = records
    emulator = record.emulator
    assert emulator.close_sent is not None
    assert emulator.close_sent[0] == 1000  # a clean close after CloseStream
    types = [m.type for m in emulator.received_text_messages]
    assert types == ["Finalize", "CloseStream"]


def test_official_sdk_gets_401_for_a_wrong_key() -> None:
    config = EmulatorConfig(accepted_keys=frozenset({"right-key"}))
    with serve_in_thread(config=config) as server:
        client = DeepgramClient(api_key="wrong-key", environment=_environment(server.port))
        with pytest.raises(Exception) as info, client.listen.v1.connect(model="nova-3"):
            pass
    assert "401" in str(info.value)
    assert "wrong-key" not in str(info.value)
