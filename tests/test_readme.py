"""The README's programs run as written, against the emulator (documentation that can't rot)."""

from __future__ import annotations

import asyncio
import functools
import re
import types
import wave
from pathlib import Path
from typing import Any

import pytest
import trio

import dgproto
from dgproto import Closed
from dgproto.emulator import FaultPlan, silence, synthesize
from dgproto.emulator._codec import layout
from dgproto.transports.server import serve_in_thread

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
TEXT = "Read me. It runs."


def _program(after: str) -> dict[str, Any]:
    """Execute the first python block after the line starting ``after``; return its namespace."""
    match = re.search(re.escape("\n" + after) + r".*?```python\n(.*?)```", README, re.S)
    assert match, f"no python block after {after!r} in README.md"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), f"README.md ({after})", "exec"), namespace)
    return namespace


def _audio() -> bytes:
    return synthesize(TEXT, sample_rate=16000) + silence(0.2, sample_rate=16000)


def _finals(output: str) -> list[str]:
    return [line for line in output.splitlines() if line]


@pytest.mark.parametrize("runtime", ["asyncio", "trio", "Blocking sockets"])
def test_runtime_examples(runtime: str, capsys: pytest.CaptureFixture[str]) -> None:
    transcribe = _program(f"**{runtime}**")["transcribe"]
    audio = _audio()
    chunks = [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
    with serve_in_thread() as server:
        if runtime == "asyncio":
            closed = asyncio.run(transcribe(chunks, server.url, "any-key"))
        elif runtime == "trio":
            closed = trio.run(transcribe, chunks, server.url, "any-key")
        else:
            closed = transcribe(chunks, server.url, "any-key")
    assert isinstance(closed, Closed)
    assert closed.code == 1000
    assert " ".join(_finals(capsys.readouterr().out)) == TEXT


def test_by_hand_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcribe = _program("## Driving the core by hand")["transcribe"]
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(_audio())
    with serve_in_thread() as server:
        closed = transcribe(str(path), port=server.port)
    assert closed.code == 1000
    assert " ".join(_finals(capsys.readouterr().out)) == TEXT


RESUMED = "Hello world. This is dgproto speaking. Reconnects keep timestamps. The end."


@pytest.mark.parametrize("drop_after_messages", [2, 3])
def test_reconnect_example(drop_after_messages: int, capsys: pytest.CaptureFixture[str]) -> None:
    transcribe = _program("## Reconnecting without losing words or time")["transcribe"]
    audio = synthesize(RESUMED, sample_rate=16000)
    chunks = [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
    options = dgproto.LiveOptions(encoding="linear16", sample_rate=16000, punctuate=True)
    with serve_in_thread(faults=FaultPlan(drop_after_messages=drop_after_messages)) as server:
        closed = asyncio.run(transcribe(chunks, options, server.url, "any-key"))
        connections = len(server.server.connections)
    # the last session flushed everything: a clean close, or a drop after the Metadata
    assert closed.metadata is not None
    assert not dgproto.should_reconnect(closed)
    assert connections >= 2  # it did reconnect
    output = capsys.readouterr().out
    assert "# reconnected" in output
    lines = [line.split(None, 1) for line in output.splitlines() if not line.startswith("#")]
    finals = [(float(p[0]), p[1]) for p in lines if len(p) == 2]
    assert " ".join(text for _, text in finals) == RESUMED  # nothing lost, nothing twice
    # each sentence's final starts where the previous sentence's pause began: one clock
    ends = [s.end for s in layout(RESUMED) if s.punctuated_word[-1] in ".?!"]
    assert [start for start, _ in finals[1:]] == pytest.approx(ends[:-1], abs=0.02)


FLUX_TEXT = "Book a table for two. Make it at eight."


def test_flux_agent_example(capsys: pytest.CaptureFixture[str]) -> None:
    program = _program("## Flux (`/v2/listen`): turns for voice agents")
    agent, think = program["agent"], program["think"]
    drafts: list[str] = []

    async def counting_think(transcript: str) -> str:
        drafts.append(transcript)
        return await think(transcript)  # type: ignore[no-any-return]

    program["think"] = counting_think  # the agent's global: see which drafts it started
    audio = synthesize(FLUX_TEXT, sample_rate=16000) + silence(1.0, sample_rate=16000)
    chunks = [audio[i : i + 2560] for i in range(0, len(audio), 2560)]
    with serve_in_thread() as server:
        replies, closed = asyncio.run(agent(chunks, server.flux_url, "any-key"))
    assert closed.code == 1000
    turns = _finals(capsys.readouterr().out)
    assert turns == ["Book a table for two.", "Make it at eight."]
    assert replies == [f"(reply to: {t})" for t in turns]
    assert drafts == turns  # each reply was started on EagerEndOfTurn and then reused


def test_flux_agent_example_drops_a_draft_when_the_user_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pause after "Wait." looks like the end (EagerEndOfTurn), then the user goes on
    (TurnResumed): that draft is cancelled, and the reply is for the whole turn."""
    program = _program("## Flux (`/v2/listen`): turns for voice agents")
    agent = program["agent"]
    drafts: list[tuple[str, asyncio.Task[Any]]] = []
    think = program["think"]

    def create_task(coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        drafts.append((coro.cr_frame.f_locals.get("transcript"), task))
        return task

    program["asyncio"] = types.SimpleNamespace(**{**vars(asyncio), "create_task": create_task})
    program["think"] = think
    # Only the timeout ends a turn (eot_threshold=1.0), so the pause after "Wait." is
    # an EagerEndOfTurn and "There is more." a TurnResumed.
    flux = functools.partial(dgproto.FluxOptions, eot_threshold=1.0, eot_timeout_ms=1500)
    program["dgproto"] = types.SimpleNamespace(**{**vars(dgproto), "FluxOptions": flux})
    audio = synthesize("Wait. There is more.", sample_rate=16000) + silence(2.0)
    chunks = [audio[i : i + 2560] for i in range(0, len(audio), 2560)]
    with serve_in_thread() as server:
        replies, closed = asyncio.run(agent(chunks, server.flux_url, "any-key"))
    assert closed.code == 1000
    drafted = [(text, task.cancelled()) for text, task in drafts if text is not None]
    assert drafted[0] == ("Wait.", True)
    assert drafted[-1] == ("Wait. There is more.", False)
    assert replies == ["(reply to: Wait. There is more.)"]
    assert _finals(capsys.readouterr().out) == ["Wait. There is more."]


UTTERED = "Hello world. This is the end."


@pytest.mark.parametrize("withhold", [False, True])
def test_utterance_example(withhold: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """Each utterance printed once, with its reason; withholding every end signal leaves
    it to the backstop (``timeout``)."""
    turns = _program("## Knowing when the user stopped speaking")["turns"]
    audio = synthesize(UTTERED, sample_rate=16000) + silence(1.0, sample_rate=16000)
    chunks = [audio[i : i + 640] for i in range(0, len(audio), 640)]
    faults = FaultPlan(withhold_end_signals=True) if withhold else None
    with serve_in_thread(faults=faults) as server:
        closed = asyncio.run(turns(chunks, server.url, "any-key"))
    assert isinstance(closed, Closed)
    assert closed.code == 1000
    lines = _finals(capsys.readouterr().out)
    reasons = [line.split("]")[0].lstrip("[") for line in lines]
    words = " ".join(line.split("] ", 1)[1] for line in lines)
    assert words.split() == UTTERED.split()
    if withhold:  # the default 3 s backstop, or the close if the clip ends first
        assert set(reasons) <= {"timeout", "closed"}
    else:
        assert set(reasons) <= {"speech_final", "utterance_end"}


def test_metrics_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcribe_file = _program("## Metrics")["transcribe_file"]
    audio = _audio()
    path = tmp_path / "speech.raw"
    path.write_bytes(audio)
    with serve_in_thread() as server:
        stats = transcribe_file(str(path), server.url, "any-key")
    assert isinstance(stats, dgproto.StreamStats)
    assert stats.audio_bytes_sent == len(audio)
    assert stats.audio_seconds_sent == pytest.approx(len(audio) / 32000)
    assert stats.finals_received >= 1
    assert stats.result_lag_p50 is not None
    assert stats.connected_seconds >= len(audio) / 32000 / 1.25 - 0.05
    out = capsys.readouterr().out
    assert f"{stats.audio_seconds_sent:.1f} s sent" in out
