"""The documentation's guides run as written, against the emulator, and the API reference
covers every public module (docs/ is built by ``make docs``; these tests need no Sphinx)."""

from __future__ import annotations

import array
import asyncio
import base64
import json
import pkgutil
import re
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import dgproto
from dgproto import Alternative, Results, Word
from dgproto.emulator import silence, synthesize
from dgproto.emulator._codec import layout
from dgproto.transports.server import serve_in_thread

from .test_docstrings import PUBLIC_MODULES

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _source(page: str) -> str:
    """Every python block of a page, in order: one program."""
    blocks = BLOCK.findall((DOCS / page).read_text())
    assert blocks, f"no python block in docs/{page}"
    return "\n".join(blocks)


def _program(page: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(page).stem}"}
    exec(compile(_source(page), f"docs/{page}", "exec"), namespace)
    return namespace


def _chunks(audio: bytes, size: int) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def test_voice_agent_finalizes_each_turn() -> None:
    program = _program("guides/voice-agent.md")
    turns = ["Book a table.", "For two people."]
    heard: list[str] = []

    async def microphone() -> AsyncIterator[bytes | None]:
        for turn in turns:
            for chunk in _chunks(synthesize(turn), 3200):
                yield chunk
            yield None  # the user stopped talking

    async def on_utterance(text: str) -> None:
        heard.append(text)

    async def main() -> dgproto.Closed:
        with serve_in_thread() as server:
            closed: dgproto.Closed = await program["run_agent"](
                microphone(), on_utterance, url=server.url, api_key="any-key"
            )
        return closed

    closed = asyncio.run(main())
    assert heard == turns  # one reply per turn, each right after its Finalize
    assert closed.code == 1000


def test_telephony_bridge_streams_twilio_mulaw() -> None:
    bridge = _program("guides/telephony.md")["bridge"]
    text = "Press one for sales."
    audio = synthesize(text, sample_rate=8000, encoding="mulaw") + silence(
        0.3, sample_rate=8000, encoding="mulaw"
    )

    async def twilio() -> AsyncIterator[str]:
        yield json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        media = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        yield json.dumps({"event": "start", "start": {"streamSid": "MZ1", "mediaFormat": media}})
        for n, frame in enumerate(_chunks(audio, 160), start=1):  # 20 ms frames
            payload = base64.b64encode(frame).decode()
            yield json.dumps(
                {
                    "event": "media",
                    "media": {"track": "inbound", "chunk": str(n), "payload": payload},
                }
            )
            # the callee's side of the call must not reach the caller's transcript
            yield json.dumps({"event": "media", "media": {"track": "outbound", "payload": "/w=="}})
        yield json.dumps({"event": "stop", "streamSid": "MZ1"})
        raise AssertionError("the bridge read past stop")  # pragma: no cover

    finals: list[str] = []
    with serve_in_thread() as server:
        closed = asyncio.run(bridge(twilio(), finals.append, url=server.url, api_key="any-key"))
        options = server.connections[-1].emulator.options
    assert " ".join(finals) == text
    assert closed.code == 1000
    assert options is not None
    assert (options.encoding, options.sample_rate) == ("mulaw", 8000)


def _stereo_wav(path: Path, left: str, right: str) -> None:
    channels = [array.array("h", synthesize(t)) for t in (left, right)]
    length = max(len(c) for c in channels)
    stereo = array.array("h", bytes(4 * length))
    for index, samples in enumerate(channels):
        stereo[index : index + 2 * len(samples) : 2] = samples
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(stereo.tobytes())


def test_meeting_recorder_labels_each_microphone(tmp_path: Path) -> None:
    record = _program("guides/meeting-recorder.md")["record"]
    path = tmp_path / "meeting.wav"
    _stereo_wav(path, "Good morning everyone.", "Hi. Thanks.")
    with serve_in_thread() as server:
        minutes = record(str(path), url=server.url, api_key="any-key", speed=50.0)
        options = server.connections[-1].emulator.options
    assert options is not None
    assert (options.channels, options.multichannel, options.diarize) == (2, True, True)
    spoken = [line.split("] ", 1)[1] for line in minutes]
    assert sorted(spoken) == sorted(
        ["mic 0: Good morning everyone.", "mic 1: Hi.", "mic 1: Thanks."]
    )
    starts = [float(line[1:7]) for line in minutes]
    assert starts == sorted(starts)  # in time order across channels


def test_meeting_recorder_splits_turns_by_speaker() -> None:
    """The emulator does not diarize: the speaker path runs on a Results built by hand."""
    program = _program("guides/meeting-recorder.md")

    def word(text: str, start: float, speaker: int) -> Word:
        return Word(
            word=text.lower().strip(".,"),
            punctuated_word=text,
            start=start,
            end=start + 0.3,
            confidence=0.9,
            speaker=speaker,
        )

    words = (word("Yes.", 1.0, 0), word("No,", 1.5, 1), word("never.", 1.9, 1), word("OK.", 2.4, 0))
    results = Results(
        channel_index=(0, 1),
        start=1.0,
        duration=2.0,
        is_final=True,
        speech_final=True,
        from_finalize=False,
        alternatives=(Alternative(transcript="", confidence=0.9, words=words),),
    )
    assert program["turns"](results) == [(1.0, 0, "Yes."), (1.5, 1, "No, never."), (2.4, 0, "OK.")]
    assert program["label"](0, 1) == "mic 0 speaker 1"


def test_testing_guide_runs_under_pytest(tmp_path: Path) -> None:
    """The guide's tests are collected by pytest with the installed plugin's fixtures."""
    test_file = tmp_path / "test_from_guide.py"
    test_file.write_text(_source("guides/testing.md"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_driving_by_hand_keeps_one_audio_clock() -> None:
    pipe, finals = _program("guides/by-hand.md")["two_sentences"]()
    first = len(synthesize("Hello there.")) / 32000  # seconds of audio before the minute
    offsets = [layout(text)[0].start for text in ("Hello there.", "Still here.")]
    assert finals == [
        (pytest.approx(offsets[0], abs=0.01), "Hello there."),
        (pytest.approx(first + offsets[1], abs=0.01), "Still here."),
    ]
    assert pipe.client.keepalives_sent >= 60 // 4 - 1  # KeepAlive carried the silence
    assert pipe.now > 60
    closed = pipe.events[-1]
    assert isinstance(closed, dgproto.Closed)
    assert (closed.code, closed.metadata is not None) == (1000, True)


def test_every_public_module_is_listed() -> None:
    """A new public module (no leading underscore) needs a place in the reference."""
    import dgproto.transports

    found = {"dgproto"}
    for package in (dgproto, dgproto.transports):
        found |= {
            f"{package.__name__}.{info.name}"
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        }
    # the command line is documented by --help, not as an API
    found -= {"dgproto.cli", "dgproto.transports.cli"}
    assert found <= set(PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_api_reference_covers_every_public_module(module_name: str) -> None:
    pages = "".join(page.read_text() for page in sorted((DOCS / "api").glob("*.md")))
    assert f".. automodule:: {module_name}\n" in pages


def test_api_reference_lists_public_constants() -> None:
    """autodoc's ``automodule`` skips imported constants: they need an ``autodata``."""
    pages = "".join(page.read_text() for page in sorted((DOCS / "api").glob("*.md")))
    for module_name in PUBLIC_MODULES:
        module = __import__(module_name, fromlist=["__all__"])
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, str | int | float | bytes):
                assert f".. autodata:: {module_name}.{name}\n" in pages


def test_record_replay_guide_replays_what_it_recorded(tmp_path: Path) -> None:
    program = _program("guides/record-replay.md")
    audio = synthesize("Recorded once. Replayed often.")
    path = str(tmp_path / "session.jsonl")
    with serve_in_thread() as server:
        recorded = program["record"](audio, path, url=server.url, api_key="a-secret-key")
    assert "a-secret-key" not in Path(path).read_text()
    replayed = program["replay"](audio, path)
    assert [e.transcript for e in replayed] == [e.transcript for e in recorded]
    assert [round(e.start, 3) for e in replayed] == [round(e.start, 3) for e in recorded]
    assert (
        " ".join(e.transcript for e in recorded if e.transcript) == "recorded once replayed often"
    )


def test_every_guide_is_tested() -> None:
    tested = {"voice-agent", "telephony", "meeting-recorder", "testing", "by-hand", "record-replay"}
    assert {page.stem for page in (DOCS / "guides").glob("*.md")} == tested
