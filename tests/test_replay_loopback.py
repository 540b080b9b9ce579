"""Replay over real loopback sockets: a recording served by ``deepgram_replay`` (the
emulator server with ``EmulatorConfig(replay=...)``) to the unchanged adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dgproto import Event, HandshakeError, Results, State
from dgproto.emulator import EmulatorConfig, FaultPlan, ReplayConnection, synthesize
from dgproto.transports import sync as sync_adapter
from dgproto.transports.pytest_plugin import ReplayFactory
from dgproto.transports.server import _build_parser, _config_from_args

from .adapter_drivers import DRIVERS, Driver
from .recording_helpers import OPTIONS, RATE, TappedPipe, client, emulator, summary

SPEECH = synthesize("Hello world. This is a test.", sample_rate=RATE)


def _record(tmp_path: Path, config: EmulatorConfig | None = None) -> tuple[Path, TappedPipe]:
    pipe = TappedPipe(client(), emulator(config))
    if pipe.client.state is State.OPEN:
        pipe.stream(SPEECH)
        pipe.client.finalize(now=pipe.now)
        pipe.pump()
        pipe.client.close_stream(now=pipe.now)
        pipe.advance(1.0)
    path = tmp_path / "session.jsonl"
    path.write_text(pipe.file.getvalue(), encoding="utf-8")
    return path, pipe


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


def test_each_adapter_sees_the_recorded_session(
    tmp_path: Path, deepgram_replay: ReplayFactory, driver: Driver
) -> None:
    path, original = _record(tmp_path)
    server = deepgram_replay(path)

    async def scenario(d: Driver) -> tuple[Any, list[Event]]:
        async with d.connect(options=OPTIONS, api_key="any-key", url=server.url) as stream:
            for i in range(0, len(SPEECH), 3200):  # 100 ms chunks, as fast as possible
                await stream.send_audio(SPEECH[i : i + 3200])
            await stream.finalize()
            closed = await stream.close()
            return closed, await d.collect(stream)

    closed, events = driver.run(scenario)
    assert closed.code == 1000
    want = [summary(e) for e in original.events if isinstance(e, Results)]
    assert [summary(e) for e in events if isinstance(e, Results)] == want
    emulated = server.connections[0].emulator
    assert isinstance(emulated, ReplayConnection)
    assert emulated.differences == []


def test_a_recorded_429_raises_the_same_handshake_error(
    tmp_path: Path, deepgram_replay: ReplayFactory
) -> None:
    path, original = _record(tmp_path, EmulatorConfig(faults=FaultPlan(reject_status=429)))
    server = deepgram_replay(original.recording())
    with (
        pytest.raises(HandshakeError) as caught,
        sync_adapter.connect(OPTIONS, api_key="any-key", url=server.url),
    ):
        pass  # pragma: no cover
    assert caught.value.status_code == 429
    assert caught.value.request_id == original.recording().response.header("dg-request-id")  # type: ignore[union-attr]
    assert path.exists()


def test_serve_replay_flag_loads_the_file(tmp_path: Path) -> None:
    path, _ = _record(tmp_path)
    config = _config_from_args(_build_parser().parse_args(["--replay", str(path)]))
    assert config.replay is not None
    assert config.replay.accepted


def test_serve_replay_refuses_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dgproto.transports.server import main_serve

    with pytest.raises(SystemExit) as exited:
        main_serve(["--replay", str(tmp_path / "missing.jsonl")])
    assert exited.value.code == 2
    assert "missing.jsonl" in capsys.readouterr().err
