"""Pacing: the pure ``Pacer`` on a fake clock, the runtime helpers on trio's ``MockClock``
and fake clocks, and all three adapters against the emulator over loopback (time scaled
by ``speed``, so nothing sleeps long)."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto import Closed, LiveOptions, Results
from dgproto._pacing import DEEPGRAM_MAX_SPEED, Pacer, chunk_size
from dgproto.emulator import synthesize
from dgproto.transports._pacing import send_paced_asyncio, send_paced_sync, send_paced_trio

from .adapter_drivers import DRIVERS, Driver

OPTIONS = LiveOptions(encoding="linear16", sample_rate=16000)
RATE = 32000
CHUNK = 640


def test_chunk_size_from_the_options() -> None:
    assert chunk_size(OPTIONS) == CHUNK
    assert chunk_size(OPTIONS, 0.1) == 3200
    stereo = LiveOptions(encoding="linear16", sample_rate=44100, channels=2, multichannel=True)
    assert chunk_size(stereo, 0.02) == 882 * 4  # whole frames of both channels
    assert chunk_size(LiveOptions(encoding="mulaw", sample_rate=8000)) == 160
    assert chunk_size(LiveOptions(encoding="linear32", sample_rate=8000), 1e-9) == 4  # one frame
    assert chunk_size(LiveOptions(), 0.5, bytes_per_second=1000) == 500
    with pytest.raises(ValueError, match="fixed byte rate"):
        chunk_size(LiveOptions(encoding="opus", sample_rate=48000))
    with pytest.raises(ValueError, match="positive"):
        chunk_size(OPTIONS, 0)


def test_pacer_validation() -> None:
    for kwargs in ({"speed": 0}, {"speed": float("inf")}, {"max_speed": -1.0}):
        with pytest.raises(ValueError, match="positive"):
            Pacer(bytes_per_second=RATE, **kwargs)
    for rate in (0, True, 1.5):
        with pytest.raises(ValueError, match="bytes_per_second"):
            Pacer(bytes_per_second=rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fixed byte rate"):
        Pacer.for_options(LiveOptions())
    pacer = Pacer.for_options(OPTIONS, speed=2.0, max_speed=1.0)
    assert pacer.max_speed == 2.0  # never slower than speed when catching up
    assert "speed=2.0" in repr(pacer)


def test_on_time_chunks_follow_real_time_exactly() -> None:
    pacer = Pacer(bytes_per_second=RATE)
    assert pacer.due() is None
    assert pacer.delay(100.0) == 0.0
    now = 100.0
    sends = []
    for _ in range(50):
        now = max(now, pacer.due() or now)
        sends.append(now)
        pacer.sent(CHUNK, now=now)
    assert sends == pytest.approx([100.0 + 0.02 * i for i in range(50)])
    assert pacer.audio_seconds == pytest.approx(1.0)
    assert pacer.delay(100.5) == pytest.approx(0.5)


def test_a_late_chunk_is_caught_up_at_no_more_than_max_speed() -> None:
    pacer = Pacer(bytes_per_second=RATE, speed=1.0)
    now = 0.0
    sends = []
    for i in range(100):
        now = max(now, pacer.due() or now)
        if i == 10:
            now += 0.2  # a 200 ms hiccup
        sends.append(now)
        pacer.sent(CHUNK, now=now)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) == pytest.approx(0.02 / DEEPGRAM_MAX_SPEED)  # caught up, no burst
    # 200 ms behind at 1.25x: recovered 4 ms per chunk, back on schedule after 50 chunks
    assert sends[-1] == pytest.approx(0.02 * 99)
    assert sends[30] > 0.02 * 30 + 0.1


def test_at_speed_no_catch_up_and_restart_forgets_the_schedule() -> None:
    pacer = Pacer(bytes_per_second=RATE, speed=1.25)
    pacer.sent(CHUNK, now=0.0)
    pacer.sent(CHUNK, now=1.0)  # late by ~1 s
    assert pacer.due() == pytest.approx(1.0 + 0.016)  # no faster than 1.25x
    pacer.restart()
    assert pacer.due() is None
    assert pacer.audio_seconds == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.floats(0.0, 0.3)), min_size=1, max_size=60
    ),  # (chunk frames of 20 ms /20, lateness)
    st.sampled_from([0.5, 1.0, 1.25, 4.0]),
)
def test_never_early_never_a_burst(chunks: list[tuple[int, float]], speed: float) -> None:
    pacer = Pacer(bytes_per_second=RATE, speed=speed)
    now = 0.0
    sent: list[tuple[float, float]] = []  # (time, seconds of audio)
    position = 0.0
    for frames, late in chunks:
        due = pacer.due()
        if due is not None:
            assert due >= sent[0][0] + position / speed - 1e-9  # never ahead of schedule
            now = max(now, due)
        now += late
        size = frames * 32
        sent.append((now, size / RATE))
        pacer.sent(size, now=now)
        position += size / RATE
    for (t0, d0), (t1, _) in itertools.pairwise(sent):
        assert t1 - t0 >= d0 / max(speed, DEEPGRAM_MAX_SPEED) - 1e-9


# ---------------------------------------------------------------- runtime helpers, fake streams


class FakeStream:
    """Records when each chunk was sent, on the clock the test gives it."""

    def __init__(self, clock: Any, options: LiveOptions = OPTIONS) -> None:
        self.options = options
        self.clock = clock
        self.sends: list[tuple[float, int]] = []

    def record(self, chunk: bytes | bytearray | memoryview) -> None:
        self.sends.append((self.clock(), len(chunk)))


class FakeAsyncStream(FakeStream):
    async def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        self.record(chunk)


class FakeSyncStream(FakeStream):
    def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        self.record(chunk)


def times(stream: FakeStream) -> list[float]:
    start = stream.sends[0][0]
    return [t - start for t, _ in stream.sends]


AUDIO = bytes(RATE)  # one second of silence


def sources() -> Iterator[tuple[str, Any]]:
    yield "bytes", AUDIO
    yield "bytearray", bytearray(AUDIO)
    yield "file", io.BytesIO(AUDIO)
    yield "iterator", iter([AUDIO[i : i + CHUNK] for i in range(0, RATE, CHUNK)] + [b""])


@pytest.mark.parametrize(("name", "source"), list(sources()))
def test_trio_helper_on_mock_clock(name: str, source: Any) -> None:
    async def main() -> None:
        stream = FakeAsyncStream(trio.current_time)
        start = trio.current_time()
        assert await send_paced_trio(stream, source) == RATE  # type: ignore[arg-type]
        assert len(stream.sends) == 50
        assert times(stream) == pytest.approx([0.02 * i for i in range(50)])
        assert trio.current_time() - start == pytest.approx(0.98)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_trio_helper_async_iterator_at_speed() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, RATE, 3200):
            yield AUDIO[i : i + 3200]

    async def main() -> None:
        stream = FakeAsyncStream(trio.current_time)
        await send_paced_trio(stream, chunks(), speed=1.25)  # type: ignore[arg-type]
        assert times(stream) == pytest.approx([0.08 * i for i in range(10)])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_trio_helper_with_an_explicit_rate_for_a_container() -> None:
    async def main() -> None:
        stream = FakeAsyncStream(trio.current_time, LiveOptions())
        sent = await send_paced_trio(  # type: ignore[arg-type]
            stream, bytes(1000), bytes_per_second=1000, chunk_seconds=0.25
        )
        assert sent == 1000
        assert times(stream) == pytest.approx([0.0, 0.25, 0.5, 0.75])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_asyncio_helper_scaled_real_time() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, RATE, 3200):
            yield AUDIO[i : i + 3200]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stream = FakeAsyncStream(loop.time)
        start = loop.time()
        # 1 s of audio at 20x: 50 ms
        assert await send_paced_asyncio(stream, chunks(), speed=20.0) == RATE  # type: ignore[arg-type]
        elapsed = loop.time() - start
        assert 0.045 - 0.005 <= elapsed < 1.0
        gaps = [b - a for a, b in zip(times(stream), times(stream)[1:], strict=False)]
        assert all(gap >= 0.1 / 20 - 0.002 for gap in gaps)

    asyncio.run(main())


def test_sync_helper_on_a_fake_clock() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds + 0.001  # every sleep oversleeps a little

    stream = FakeSyncStream(lambda: clock[0])
    sent = send_paced_sync(  # type: ignore[arg-type]
        stream, io.BytesIO(AUDIO), clock=lambda: clock[0], sleep=sleep
    )
    assert sent == RATE
    assert len(sleeps) == 49
    # oversleeping does not accumulate: the schedule is absolute
    assert times(stream)[-1] == pytest.approx(0.98 + 0.001)
    with pytest.raises(TypeError, match="not str"):
        send_paced_sync(stream, "not audio")  # type: ignore[arg-type]


# ---------------------------------------------------------------- adapters, loopback emulator

TEXT = "hello paced world"
SPEECH = synthesize(TEXT)
SPEED = 8.0


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


HELPERS = {"asyncio": send_paced_asyncio, "trio": send_paced_trio}


def test_paced_stream_to_the_emulator(driver: Driver, deepgram_emulator: Any) -> None:
    """``stream.send_paced(...)`` on each adapter: every word comes back, the send took
    as long as the audio at ``speed``, and the stats count what it sent."""

    async def scenario(d: Driver) -> None:
        async with d.connect(
            options=LiveOptions(encoding="linear16", sample_rate=16000, interim_results=True),
            url=deepgram_emulator.url,
            api_key="test-key",
        ) as stream:
            started = time.monotonic()
            sent = await stream.send_paced(SPEECH, speed=SPEED, chunk_seconds=0.05)
            elapsed = time.monotonic() - started
            assert sent == len(SPEECH)
            seconds = len(SPEECH) / RATE
            assert elapsed >= (seconds - 0.05) / SPEED - 0.01
            await stream.close()
            events = await d.collect(stream)
            stats = stream.stats
        assert stats.audio_bytes_sent == len(SPEECH)
        assert stats.audio_seconds_sent == pytest.approx(len(SPEECH) / RATE)
        finals = [e.transcript for e in events if isinstance(e, Results) and e.is_final]
        assert " ".join(t for t in finals if t) == TEXT
        assert isinstance(events[-1], Closed)

    driver.run(scenario)
