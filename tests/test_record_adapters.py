"""``connect(..., record=)`` in the three adapters: record a session against the
emulator over loopback, replay the file through the emulator, and the app sees the same
session; rejected handshakes, secrets, reconnects and file handling."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from dgproto import Closed, Config, Event, HandshakeError, LiveOptions, Results
from dgproto._recording import REDACTED
from dgproto._timeline import transcript
from dgproto.emulator import EmulatorConfig, FaultPlan, ReplayConnection, synthesize
from dgproto.transports import sync as sync_adapter
from dgproto.transports._common import make_plan
from dgproto.transports._record import (
    SIDECAR_SUFFIX,
    load_recording,
    load_recordings,
    record_sink,
)
from dgproto.transports.pytest_plugin import EmulatorFactory, ReplayFactory

from .adapter_drivers import DRIVERS, Driver
from .recording_helpers import KEY, RATE
from .test_reconnect import AUDIO, CHUNK, FAST, POLICY
from .test_reconnect import emulator as reconnect_emulator

OPTIONS = LiveOptions(
    encoding="linear16", sample_rate=RATE, interim_results=True, utterance_end_ms=1000
)
SPEECH = synthesize("Hello world. This is a test.", sample_rate=RATE)
#: A KeepAlive after 0.15 s of silence: the gap in the middle of the recorded session.
CONFIG = Config(keepalive_interval=0.15)
CALLBACK = "https://hookuser:hookpass@hooks.example/dg?sig=callback-signature"


def open_files(folder: Path) -> list[str]:
    """Files under ``folder`` this process still has open (Linux; [] elsewhere)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():  # pragma: no cover - not Linux
        return []
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


def app_view(events: list[Event]) -> list[tuple[Any, ...]]:
    """What an app acts on, audio-clock positions included, in order."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, Results):
            alt = event.alternatives[0] if event.alternatives else None
            out.append(
                (
                    "Results",
                    event.is_final,
                    event.speech_final,
                    event.from_finalize,
                    round(event.start, 3),
                    round(event.duration, 3),
                    alt.transcript if alt else None,
                )
            )
        elif isinstance(event, Closed):
            out.append(("Closed", event.code, event.reason))
        elif type(event).__name__ in ("UtteranceEnd", "SpeechStarted", "FinalizeComplete"):
            out.append((type(event).__name__,))
    return out


async def session(
    d: Driver, url: str, *, chunk: int, gap: float, record: Any = None, **connect: Any
) -> list[Event]:
    """Half the audio, a silent gap (KeepAlive), the rest, Finalize, CloseStream."""
    half = len(SPEECH) // 2 // chunk * chunk
    async with d.connect(
        options=OPTIONS, url=url, config=CONFIG, record=record, **connect
    ) as stream:
        for i in range(0, half, chunk):
            await stream.send_audio(SPEECH[i : i + chunk])
        await d.sleep(gap)
        for i in range(half, len(SPEECH), chunk):
            await stream.send_audio(SPEECH[i : i + chunk])
        await stream.finalize()
        await stream.close()
        return await d.collect(stream)


def test_record_then_replay_gives_the_app_the_same_session(
    tmp_path: Path,
    driver: Driver,
    deepgram_emulator_factory: EmulatorFactory,
    deepgram_replay: ReplayFactory,
) -> None:
    live = deepgram_emulator_factory()
    path = tmp_path / "session.jsonl"
    recorded = driver.run(
        lambda d: session(d, live.url, chunk=640, gap=0.4, record=path, api_key=KEY)
    )
    assert not open_files(tmp_path)  # the recorder closed its files with the stream
    recording = load_recording(path)
    sent = [f.message_type for f in recording.frames if f.direction == "send"]
    assert "KeepAlive" in sent
    assert "Finalize" in sent
    assert sent[-2:] == ["CloseStream", None]
    assert any(f.kind == "close" and f.direction == "recv" for f in recording.frames)
    audio = [f for f in recording.frames if f.direction == "send" and f.kind == "binary"]
    assert b"".join(f.data for f in audio) == SPEECH
    assert audio[-1].audio == pytest.approx(len(SPEECH) / (2 * RATE))
    assert (tmp_path / ("session.jsonl" + SIDECAR_SUFFIX)).stat().st_size > len(SPEECH)
    assert any(isinstance(e, Results) and e.is_final for e in recorded)

    # Replay: another chunk size, no gap (so no KeepAlive), as fast as it goes.
    server = deepgram_replay(path)
    replayed = driver.run(lambda d: session(d, server.url, chunk=3200, gap=0.0, api_key="x"))
    assert app_view(replayed) == app_view(recorded)
    emulated = server.connections[0].emulator
    assert isinstance(emulated, ReplayConnection)
    assert emulated.differences == []


@pytest.mark.parametrize("status", [401, 429])
def test_a_recorded_rejection_replays_as_the_same_handshake_error(
    tmp_path: Path,
    driver: Driver,
    status: int,
    deepgram_emulator_factory: EmulatorFactory,
    deepgram_replay: ReplayFactory,
) -> None:
    live = deepgram_emulator_factory(config=EmulatorConfig(faults=FaultPlan(reject_status=status)))
    path = tmp_path / "rejected.jsonl"

    async def attempt(d: Driver, url: str, record: Path | None) -> HandshakeError:
        with pytest.raises(HandshakeError) as caught:
            async with d.connect(options=OPTIONS, url=url, api_key=KEY, record=record):
                pass  # pragma: no cover
        return caught.value

    original = driver.run(lambda d: attempt(d, live.url, path))
    recording = load_recording(path)
    assert recording.response is not None
    assert recording.response.status == status
    server = deepgram_replay(path)
    again = driver.run(lambda d: attempt(d, server.url, None))
    assert (again.status_code, again.err_code, again.err_msg, again.request_id) == (
        original.status_code,
        original.err_code,
        original.err_msg,
        original.request_id,
    )


def test_no_credential_reaches_the_files(
    tmp_path: Path, deepgram_emulator_factory: EmulatorFactory
) -> None:
    live = deepgram_emulator_factory()
    options = LiveOptions(encoding="linear16", sample_rate=RATE, callback=CALLBACK)
    secrets = {
        "token": {"api_key": KEY},
        "bearer": {"access_token": "eyJhbGciOiJIUzI1NiJ9.payload-bearer.sig"},
    }
    for name, credential in secrets.items():
        path = tmp_path / f"{name}.jsonl"
        with sync_adapter.connect(
            options, url=live.url, record=path, proxy=None, **credential
        ) as stream:
            stream.send_audio(SPEECH[:3200])
            stream.close()
        blob = path.read_bytes() + Path(str(path) + SIDECAR_SUFFIX).read_bytes()
        for secret in (*credential.values(), "hookuser", "hookpass", "callback-signature"):
            assert secret.encode() not in blob
        request = load_recording(path).request
        assert request.header("authorization") == f"{name.capitalize()} {REDACTED}"
    # The proxy's credentials: the recorder is told them, and scrubs them anywhere.
    plan = make_plan(
        options,
        api_key=KEY,
        access_token=None,
        auth=None,
        url="wss://api.example/v1/listen",
        config=None,
        ssl_context=None,
        extra_headers=[("X-Echo", "proxyuser:proxypass cHJveHl1c2VyOnByb3h5cGFzcw==")],
        proxy="http://proxyuser:proxypass@127.0.0.1:3128",
        record=record_sink(tmp_path / "proxy.jsonl"),
    )
    assert plan.recorder is not None
    plan.conn.connect(now=0.0)
    plan.recorder.sent(plan.conn.data_to_send(), 0.0)
    plan.recorder.close(0.0)
    text = (tmp_path / "proxy.jsonl").read_text()
    assert "cHJveHl1c2VyOnByb3h5cGFzcw==" not in text
    assert KEY not in text


def test_a_reconnecting_stream_records_each_socket_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "reconnect.jsonl"
    with (
        reconnect_emulator([FaultPlan(drop_after_messages=1)]) as srv,
        sync_adapter.connect(
            OPTIONS, url=srv.url, config=FAST, reconnect=POLICY, record=path
        ) as stream,
    ):
        for i in range(0, len(AUDIO), CHUNK):
            stream.send_audio(AUDIO[i : i + CHUNK])
        stream.finalize()
        stream.close()
        reconnects = stream.reconnects
    assert reconnects >= 1
    assert not open_files(tmp_path)
    sockets = load_recordings(path)
    assert len(sockets) == reconnects + 1
    for recording in sockets:
        assert recording.accepted
        audio = [f for f in recording.frames if f.kind == "binary" and f.direction == "send"]
        assert audio
        assert audio[0].audio == pytest.approx(len(audio[0].data) / (2 * RATE))
    ids = [r.response.header("dg-request-id") for r in sockets if r.response is not None]
    assert len(set(ids)) == len(sockets)
    assert load_recording(path, socket=1) == sockets[1]
    with pytest.raises(ValueError, match="socket"):
        load_recording(path, socket=len(sockets))


def test_a_recorded_reconnect_replays_as_a_reconnect(
    tmp_path: Path, driver: Driver, deepgram_replay: ReplayFactory
) -> None:
    """Each socket of the file is served to one connection in turn, and the socket the
    server dropped is dropped again where it ended: the app reconnects as it did."""
    path = tmp_path / "reconnect.jsonl"

    async def run(d: Driver, url: str, record: Path | None) -> tuple[int, list[Event]]:
        async with d.connect(
            options=OPTIONS, url=url, config=FAST, reconnect=POLICY, record=record
        ) as stream:
            for i in range(0, len(AUDIO), CHUNK):
                await stream.send_audio(AUDIO[i : i + CHUNK])
            await stream.close()
            events = await d.collect(stream)
            return stream.reconnects, events

    with reconnect_emulator([FaultPlan(drop_after_messages=2)]) as live:
        reconnects, recorded = driver.run(lambda d: run(d, live.url, path))
    assert reconnects == 1
    sockets = load_recordings(path)
    assert len(sockets) == 2
    assert not any(f.kind == "close" and f.direction == "recv" for f in sockets[0].frames)

    server = deepgram_replay(path)
    again, replayed = driver.run(lambda d: run(d, server.url, None))
    assert again == 1
    assert [type(e).__name__ for e in replayed if type(e).__name__.startswith("Reconnect")] == [
        "Reconnecting",
        "Reconnected",
    ]
    assert app_view(replayed) == app_view(recorded)
    served = [record.emulator for record in server.connections]
    assert [type(e) for e in served] == [ReplayConnection, ReplayConnection]
    assert [e.recording for e in served] == sockets  # type: ignore[attr-defined]


def test_a_text_file_object_gets_everything_inline_and_stays_open(
    deepgram_emulator_factory: EmulatorFactory,
) -> None:
    live = deepgram_emulator_factory()
    buffer = io.StringIO()
    with sync_adapter.connect(OPTIONS, url=live.url, api_key=KEY, record=buffer) as stream:
        stream.send_audio(SPEECH[:6400])
        stream.close()
    assert not buffer.closed
    from dgproto._recording import read_recording

    recording = read_recording(buffer.getvalue().splitlines())
    audio = b"".join(f.data for f in recording.frames if f.kind == "binary")
    assert audio == SPEECH[:6400]


def test_record_refuses_a_binary_file_before_any_network() -> None:
    with (
        pytest.raises(TypeError, match="text file"),
        sync_adapter.connect(OPTIONS, url="ws://127.0.0.1:9", record=io.BytesIO()),
    ):
        pass  # pragma: no cover


def test_a_failing_write_stops_recording_not_the_session(
    deepgram_emulator_factory: EmulatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    live = deepgram_emulator_factory()
    with sync_adapter.connect(OPTIONS, url=live.url, api_key=KEY, record=Full()) as stream:
        stream.send_audio(SPEECH[:6400])
        closed = stream.close()
    assert closed.code == 1000
    assert "recording stopped" in caplog.text


def test_an_exception_in_the_block_still_leaves_a_whole_file(
    tmp_path: Path, driver: Driver, deepgram_emulator_factory: EmulatorFactory
) -> None:
    live = deepgram_emulator_factory()
    path = tmp_path / "crashed.jsonl"

    async def crash(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=live.url, api_key=KEY, record=path) as stream:
            await stream.send_audio(SPEECH[:6400])
            raise LookupError("the app broke")

    with pytest.raises(BaseException) as caught:  # which one: checked below
        driver.run(crash)
    error: Any = caught.value
    while not isinstance(error, LookupError):  # trio's driver hands it over in a group
        (error,) = error.exceptions
    assert not open_files(tmp_path)
    recording = load_recording(path)
    assert recording.accepted
    audio = b"".join(f.data for f in recording.frames if f.kind == "binary")
    assert audio == SPEECH[:6400]


def test_frames_pending_in_the_batch_are_written_when_the_block_raises(
    tmp_path: Path, driver: Driver, deepgram_emulator_factory: EmulatorFactory
) -> None:
    live = deepgram_emulator_factory()
    path = tmp_path / "pending.jsonl"

    async def crash(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=live.url, api_key=KEY, record=path) as stream:
            for i in range(0, 6400, 640):  # the first through the tap, 9 left pending
                await stream.send_audio(SPEECH[i : i + 640])
            raise LookupError("the app broke")

    with pytest.raises(BaseException):  # noqa: B017 (trio wraps it in a group)
        driver.run(crash)
    assert not open_files(tmp_path)
    recording = load_recording(path)
    audio = [f for f in recording.frames if f.kind == "binary"]
    assert b"".join(f.data for f in audio) == SPEECH[:6400]
    assert [f.audio for f in audio] == pytest.approx(
        [(n + 1) * 640 / (2 * RATE) for n in range(10)]
    )


def test_a_version_2_recording_still_replays(
    driver: Driver, deepgram_replay: ReplayFactory
) -> None:
    """The checked-in version 2 file (tests/fixtures/recordings/README.md) serves the
    same session to an app in every adapter: its finals, in order, and no difference."""
    fixture = Path(__file__).parent / "fixtures" / "recordings" / "v2_session.jsonl"
    recording = load_recording(fixture)
    assert recording.version == 2
    speech = synthesize("Hello world. This is a test.", sample_rate=RATE)
    server = deepgram_replay(fixture)

    async def replay(d: Driver) -> list[Event]:
        async with d.connect(options=OPTIONS, url=server.url, api_key="x") as stream:
            for i in range(0, len(speech), 3200):
                await stream.send_audio(speech[i : i + 3200])
            await stream.finalize()
            await stream.close()
            return await d.collect(stream)

    events = driver.run(replay)
    finals = [e.alternatives[0].transcript for e in events if isinstance(e, Results) and e.is_final]
    recorded = [
        f.json()["channel"]["alternatives"][0]["transcript"]
        for f in recording.frames
        if f.message_type == "Results" and f.json()["is_final"]
    ]
    assert finals == recorded
    assert " ".join(filter(None, finals)) == transcript(recording) == "hello world this is a test"
    assert isinstance(events[-1], Closed)
    emulated = server.connections[0].emulator
    assert isinstance(emulated, ReplayConnection)
    assert emulated.differences == []
