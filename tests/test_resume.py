"""``ReplayBuffer`` and friends: a reconnect that loses no audio and keeps the timestamps.

The end-to-end tests run the client core against the emulator core in memory, drop the
connection mid-speech, resume on a new pair, and compare every final word with where
``synthesize`` put it: the same words, once each, at the same stream time.
"""

from __future__ import annotations

import itertools
import json
import random
import ssl
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto._connection import ListenConnection
from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import (
    Alternative,
    Closed,
    Connected,
    Event,
    FinalizeComplete,
    HandshakeRejected,
    Metadata,
    Results,
    SpeechStarted,
    UtteranceEnd,
    Word,
)
from dgproto._messages import decode_message
from dgproto._options import Auth, LiveOptions
from dgproto._resume import ReplayBuffer, rebase, reconnect_delays, should_reconnect
from dgproto._state import State
from dgproto.emulator import EmulatorConnection, FaultPlan, synthesize
from dgproto.emulator._codec import layout

from .memory_pipe import MemoryPipe

RATE = 16000
CHUNK = 640  # 20 ms of linear16 mono
MONO = LiveOptions(encoding="linear16", sample_rate=RATE, interim_results=True)
TEXT = (
    "Hello world. This is dgproto speaking to you. Reconnects keep every timestamp "
    "continuous across sockets. Nothing is lost, nothing repeats. The end."
)
FAST = settings(max_examples=25, deadline=None)


# --------------------------------------------------------------------------- helpers


def word(text: str, start: float, end: float) -> Word:
    return Word(word=text.lower(), start=start, end=end, confidence=0.9, punctuated_word=text)


def results(
    start: float,
    duration: float,
    words: Sequence[Word] = (),
    *,
    is_final: bool = True,
    channel: tuple[int, ...] = (0, 1),
) -> Results:
    transcript = " ".join(w.punctuated_word or w.word for w in words)
    return Results(
        channel_index=channel,
        start=start,
        duration=duration,
        is_final=is_final,
        speech_final=False,
        from_finalize=False,
        alternatives=(Alternative(transcript=transcript, confidence=0.9, words=tuple(words)),),
    )


def buffer_1khz(
    max_seconds: float = 30.0, frame_bytes: int = 1, margin: float = 0.0
) -> ReplayBuffer:
    """1000 bytes a second: positions read as milliseconds. ``margin=0`` by default: the
    ring's own tests replay from the watermark (``test_replay_cut`` covers the margin)."""
    return ReplayBuffer(
        bytes_per_second=1000, frame_bytes=frame_bytes, max_seconds=max_seconds, margin=margin
    )


def ramp(size: int, start: int = 0) -> bytes:
    return bytes((start + i) % 251 for i in range(size))


class Pipe(MemoryPipe):
    """One ListenConnection <-> EmulatorConnection pair on a shared virtual clock."""

    def __init__(self, options: LiveOptions, faults: FaultPlan | None, now: float) -> None:
        server = EmulatorConnection(faults=faults, rng=random.Random(1), wall_time=0.0, now=now)
        client = ListenConnection(options=options, auth=Auth.token("k"), host="emulator")
        super().__init__(client, server, now=now)


class Resumer:
    """What an app does: record what it sends, observe what it gets, resume on drops."""

    def __init__(
        self,
        options: LiveOptions,
        faults: Iterable[FaultPlan | None] = (),
        *,
        max_seconds: float = 30.0,
        realtime: bool = False,
    ) -> None:
        self.options = options
        self.faults = iter(faults)
        self.buffer = ReplayBuffer.for_options(options, max_seconds=max_seconds)
        self.realtime = realtime
        self.events: list[Event] = []
        self.sessions = 0
        self.pipe = self._open(0.0)

    def _open(self, now: float) -> Pipe:
        self.sessions += 1
        pipe = Pipe(self.options, next(self.faults, None), now)
        self._collect(pipe)
        for chunk in self.buffer.resume():
            pipe.client.send_audio(chunk, now=pipe.now)
            pipe.pump()
            self._collect(pipe)
        return pipe

    def _collect(self, pipe: Pipe) -> None:
        self.events += [self.buffer.observe(e) for e in pipe.events]
        pipe.events.clear()

    def stream(self, audio: bytes, chunk: int, drops: Iterable[int] = ()) -> None:
        """Send ``audio``; the transport dies before chunk ``i`` for each ``i`` in ``drops``."""
        drops = set(drops)
        for index, start in enumerate(range(0, len(audio), chunk)):
            data = audio[start : start + chunk]
            self.buffer.record(data)
            if index in drops and self.pipe.client.state is State.OPEN:
                self.pipe.client.receive_eof(now=self.pipe.now)  # a cut network
                self.pipe.pump()
                self._collect(self.pipe)
            if self.pipe.client.state is State.CLOSED:
                closed = self.pipe.client.closed
                assert closed is not None
                assert should_reconnect(closed)
                self.pipe = self._open(self.pipe.now)  # replays this chunk too
                continue
            self.pipe.client.send_audio(data, now=self.pipe.now)
            self.pipe.pump()
            if self.realtime:
                self.pipe.advance(0.02)
            self._collect(self.pipe)

    def close(self) -> Closed:
        self.pipe.client.close_stream(now=self.pipe.now)
        self.pipe.advance(1.0)
        self._collect(self.pipe)
        closed = self.pipe.client.closed
        assert closed is not None
        return closed

    def finals(self, channel: int = 0) -> list[Results]:
        return [
            e for e in self.events if isinstance(e, Results) and e.is_final and e.channel == channel
        ]

    def words(self, channel: int = 0) -> list[Word]:
        return [w for r in self.finals(channel) for w in r.alternatives[0].words]


def assert_on_layout(words: Sequence[Word], text: str, *, tolerance: float = 0.02) -> None:
    """Every word is the synthesized one at its synthesized time (stream time)."""
    spans = layout(text)
    for w in words:
        match = [s for s in spans if s.punctuated_word == w.punctuated_word]
        assert any(
            abs(w.start - s.start) <= tolerance and abs(w.end - s.end) <= tolerance for s in match
        ), (w, match)


def assert_finals_contiguous(finals: Sequence[Results]) -> None:
    assert finals[0].start == pytest.approx(0.0)
    for before, after in itertools.pairwise(finals):
        assert after.start == pytest.approx(before.end, abs=1e-6)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bytes_per_second": 0}, "bytes_per_second must be an int >= 1"),
        ({"bytes_per_second": True}, "bytes_per_second must be an int >= 1"),
        ({"bytes_per_second": 1000.0}, "bytes_per_second must be an int >= 1"),
        ({"bytes_per_second": 1000, "frame_bytes": 0}, "frame_bytes must be an int >= 1"),
        ({"bytes_per_second": 1000, "frame_bytes": 3}, "must be a multiple of frame_bytes"),
        ({"bytes_per_second": 1000, "max_seconds": -1}, "max_seconds must be a finite"),
        ({"bytes_per_second": 1000, "max_seconds": float("inf")}, "max_seconds must be"),
        ({"bytes_per_second": 1000, "max_seconds": True}, "max_seconds must be"),
        ({"bytes_per_second": 1000, "max_seconds": "30"}, "max_seconds must be"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "rate", "frame"),
    [
        (LiveOptions(encoding="linear16", sample_rate=16000), 32000, 2),
        (LiveOptions(encoding="linear16", sample_rate=16000, channels=2), 64000, 4),
        (LiveOptions(encoding="linear32", sample_rate=48000, channels=3), 576000, 12),
        (LiveOptions(encoding="mulaw", sample_rate=8000), 8000, 1),
        (LiveOptions(encoding="alaw", sample_rate=8000, channels=2), 16000, 2),
    ],
)
def test_for_options_uses_the_audio_clock(options: LiveOptions, rate: int, frame: int) -> None:
    buffer = ReplayBuffer.for_options(options, max_seconds=2.5)
    assert (buffer.bytes_per_second, buffer.frame_bytes, buffer.max_seconds) == (rate, frame, 2.5)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (LiveOptions(), "encoding=None"),  # WAV/Ogg/WebM: the container says what it holds
        (LiveOptions(encoding="opus", sample_rate=48000), "encoding='opus'"),
        (LiveOptions(encoding="linear16"), "sample_rate=None"),
    ],
)
def test_for_options_refuses_audio_without_a_fixed_byte_rate(
    options: LiveOptions, named: str
) -> None:
    with pytest.raises(ValueError, match="fixed byte rate") as info:
        ReplayBuffer.for_options(options)
    assert named in str(info.value)
    assert "cannot be resumed mid-stream" in str(info.value)


# --------------------------------------------------------------------------- the ring


def test_a_fresh_buffer_resumes_with_nothing_at_offset_zero() -> None:
    buffer = buffer_1khz()
    assert (buffer.offset, buffer.watermark, buffer.seconds_buffered) == (0.0, 0.0, 0.0)
    assert buffer.resume() == []
    assert (buffer.offset, buffer.seconds_dropped) == (0.0, 0.0)


def test_audio_recorded_before_the_first_connection_is_sent_when_it_opens() -> None:
    buffer = buffer_1khz()
    buffer.record(b"ab")
    buffer.record(bytearray(b"cd"))
    buffer.record(memoryview(b"ef"))
    buffer.record(b"")  # nothing to keep
    assert buffer.resume() == [b"ab", b"cd", b"ef"]
    assert buffer.offset == 0.0
    assert buffer.resume() == [b"ab", b"cd", b"ef"]  # kept until finalized


def test_a_final_moves_the_watermark_and_forgets_the_audio_before_it() -> None:
    buffer = buffer_1khz()
    audio = ramp(1000)
    for i in range(0, 1000, 100):
        buffer.record(audio[i : i + 100])
    buffer.observe(results(0.0, 0.25, is_final=False))  # interims move nothing
    assert buffer.seconds_buffered == 1.0
    buffer.observe(results(0.0, 0.25))
    assert buffer.watermark == 0.25
    assert buffer.seconds_buffered == 0.75
    buffer.observe(results(0.25, 0.4))
    assert b"".join(buffer.resume()) == audio[650:]
    assert buffer.resume()[0] == audio[650:700]  # chunk boundaries are kept after the cut
    assert buffer.offset == 0.65  # the new session's t=0 is the first replayed byte
    assert buffer.seconds_dropped == 0.0


def test_max_seconds_drops_the_oldest_and_the_offset_still_counts_it() -> None:
    buffer = buffer_1khz(max_seconds=0.3)
    audio = ramp(1000)
    for i in range(0, 1000, 70):
        buffer.record(audio[i : i + 70])
        assert buffer.seconds_buffered <= 0.3
    buffer.observe(results(0.0, 0.2))
    assert b"".join(buffer.resume()) == audio[700:]
    assert buffer.offset == 0.7
    assert buffer.seconds_dropped == pytest.approx(0.5)  # 0.2 .. 0.7 was never finalized
    # a second resume counts nothing twice
    assert b"".join(buffer.resume()) == audio[700:]
    assert buffer.seconds_dropped == pytest.approx(0.5)
    # the new session's words land on the stream clock
    event = buffer.observe(results(0.0, 0.1, [word("Late", 0.02, 0.08)]))
    assert event.start == 0.7
    assert event.alternatives[0].words[0].start == pytest.approx(0.72)


def test_max_seconds_zero_keeps_no_audio_but_keeps_the_timeline() -> None:
    buffer = buffer_1khz(max_seconds=0)
    buffer.record(ramp(500))
    assert buffer.resume() == []
    assert (buffer.offset, buffer.seconds_dropped) == (0.5, 0.5)


@given(
    sizes=st.lists(st.integers(1, 97), min_size=1, max_size=40),
    max_ms=st.integers(0, 400),
    finals=st.lists(st.integers(0, 2000), max_size=5),
)
@FAST
def test_cuts_fall_on_frame_boundaries_whatever_the_chunks(
    sizes: list[int], max_ms: int, finals: list[int]
) -> None:
    """Stereo linear16 at 1 kHz (4-byte frames): a replay never starts mid-frame."""
    buffer = ReplayBuffer(bytes_per_second=4000, frame_bytes=4, max_seconds=max_ms / 1000)
    audio = ramp(sum(sizes))
    position = 0
    for size, final_ms in itertools.zip_longest(sizes, finals):
        if size is not None:
            buffer.record(audio[position : position + size])
            position += size
        if final_ms is not None:
            buffer.observe(results(0.0, final_ms / 1000))
        assert buffer.seconds_buffered <= max_ms / 1000 + 4 / 4000
    replay = b"".join(buffer.resume())
    start = round(buffer.offset * 4000)
    assert start % 4 == 0
    assert replay == audio[start:]
    assert buffer.seconds_dropped >= 0


def test_the_watermark_rounds_to_the_nearest_frame() -> None:
    buffer = ReplayBuffer(bytes_per_second=32000, frame_bytes=2, margin=0)  # 16 kHz linear16
    audio = ramp(32000)
    buffer.record(audio)
    buffer.observe(results(0.0, 0.1 + 0.2))  # 0.30000000000000004 s
    assert b"".join(buffer.resume()) == audio[9600:]
    buffer.observe(results(0.0, 0.000031))  # just under half a sample (62.5 us) past t=0
    assert b"".join(buffer.resume()) == audio[9600:]
    buffer.observe(results(0.0, 0.000032))  # just over
    assert b"".join(buffer.resume()) == audio[9602:]


def test_a_final_past_the_audio_recorded_empties_the_ring_on_a_frame_boundary() -> None:
    buffer = ReplayBuffer(bytes_per_second=4000, frame_bytes=4)
    buffer.record(ramp(10))  # two and a half frames
    buffer.observe(results(0.0, 5.0))
    assert buffer.resume() == [ramp(10)[8:]]  # the half frame stays, aligned
    assert buffer.offset == 8 / 4000


def test_multichannel_watermark_is_the_channel_furthest_behind() -> None:
    buffer = buffer_1khz(frame_bytes=2)
    audio = ramp(2000)
    buffer.record(audio)
    buffer.observe(results(0.0, 0.6, channel=(1, 2)))
    assert buffer.watermark == 0.0  # channel 0 has nothing final yet
    buffer.observe(results(0.0, 0.4, channel=(0, 2)))
    assert buffer.watermark == 0.4
    assert b"".join(buffer.resume()) == audio[400:]


def test_channel_index_without_a_total_counts_as_one_channel() -> None:
    buffer = buffer_1khz()
    buffer.record(ramp(100))
    buffer.observe(results(0.0, 0.05, channel=(0,)))
    assert buffer.watermark == 0.05


def test_after_a_resume_a_channel_ahead_does_not_repeat_its_words() -> None:
    """Stereo is replayed from channel 1's watermark; channel 0 had finalized more."""
    buffer = buffer_1khz(frame_bytes=2)
    buffer.record(ramp(2000))
    early = [word("Early", 0.1, 0.5), word("late.", 0.55, 0.85)]
    buffer.observe(results(0.0, 0.9, early, channel=(0, 2)))
    buffer.observe(results(0.0, 0.4, channel=(1, 2)))
    buffer.resume()
    assert buffer.offset == 0.4
    # the new session hears channel 0's "late." again (0.15-0.45 is 0.55-0.85 stream time)
    again = buffer.observe(
        results(
            0.0,
            0.7,
            [word("late.", 0.15, 0.45), word("Next", 0.52, 0.6)],
            is_final=False,
            channel=(0, 2),
        )
    )
    assert [w.punctuated_word for w in again.alternatives[0].words] == ["Next"]
    assert again.transcript == "Next"
    assert again.start == 0.9
    assert again.end == pytest.approx(1.1)
    # a window entirely before channel 0's old final end shrinks to nothing at that end
    empty = buffer.observe(results(0.0, 0.3, [word("late.", 0.15, 0.29)], channel=(0, 2)))
    assert (empty.transcript, empty.alternatives[0].words, empty.start, empty.duration) == (
        "",
        (),
        0.9,
        0.0,
    )
    # channel 1 is replayed from its own end: untouched
    other = results(0.0, 0.3, [word("Right", 0.1, 0.2)], channel=(1, 2))
    assert buffer.observe(other) == rebase(other, 0.4)
    # later windows of channel 0 are not touched either
    later = results(0.5, 0.5, [word("Fine", 0.6, 0.7)], channel=(0, 2))
    assert buffer.observe(later) == rebase(later, 0.4)


def test_a_window_with_no_word_before_the_old_end_keeps_its_alternative() -> None:
    buffer = buffer_1khz(frame_bytes=2)
    buffer.record(ramp(2000))
    buffer.observe(results(0.0, 0.9, channel=(0, 2)))
    buffer.observe(results(0.0, 0.4, channel=(1, 2)))
    buffer.resume()
    event = buffer.observe(results(0.0, 0.8, [word("New", 0.55, 0.7)], channel=(0, 2)))
    assert event.alternatives[0].transcript == "New"
    assert event.start == 0.9


def test_observe_rebases_other_events_and_passes_the_rest_through() -> None:
    buffer = buffer_1khz()
    buffer.record(ramp(1000))
    buffer.observe(results(0.0, 0.5))
    buffer.resume()
    started = SpeechStarted(channel=(0, 1), timestamp=0.1)
    assert buffer.observe(started) == SpeechStarted(channel=(0, 1), timestamp=0.6)
    closed = Closed(code=1006, initiator="transport", retryable=True)
    assert buffer.observe(closed) is closed


# --------------------------------------------------------------------------- rebasing


RESULTS_JSON = json.dumps(
    {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 1.5,
        "start": 2.25,
        "is_final": True,
        "speech_final": True,
        "from_finalize": False,
        "channel": {
            "alternatives": [
                {
                    "transcript": "Hello there.",
                    "confidence": 0.99,
                    "words": [
                        {
                            "word": "hello",
                            "start": 2.5,
                            "end": 2.75,
                            "confidence": 0.98,
                            "punctuated_word": "Hello",
                            "speaker": 0,
                        },
                        {"word": "there", "start": 3.0, "end": 3.5, "confidence": 0.97},
                    ],
                }
            ]
        },
        "metadata": {"request_id": "r"},
    }
)


def expected_results(offset: float) -> Results:
    return Results(
        channel_index=(0, 1),
        start=2.25 + offset,
        duration=1.5,
        is_final=True,
        speech_final=True,
        from_finalize=False,
        alternatives=(
            Alternative(
                transcript="Hello there.",
                confidence=0.99,
                words=(
                    Word(
                        word="hello",
                        start=2.5 + offset,
                        end=2.75 + offset,
                        confidence=0.98,
                        punctuated_word="Hello",
                        speaker=0,
                    ),
                    Word(word="there", start=3.0 + offset, end=3.5 + offset, confidence=0.97),
                ),
            ),
        ),
    )


def test_rebase_results_from_the_fast_decoder() -> None:
    decoded = decode_message(RESULTS_JSON)
    assert decoded == expected_results(0.0)
    moved = rebase(decoded, 10.0)
    assert moved == expected_results(10.0)
    assert hash(moved) == hash(expected_results(10.0))
    assert (moved.end, moved.transcript) == (13.75, "Hello there.")
    # raw stays the server's JSON on the server's clock; the other fields are shared
    assert moved.raw is decoded.raw
    assert moved.raw["start"] == 2.25
    assert moved.alternatives[0].words[0].raw["start"] == 2.5
    assert moved.metadata is decoded.metadata
    assert decoded == expected_results(0.0)  # the original is untouched
    assert rebase(moved, -10.0) == decoded


def test_rebase_the_other_timed_events() -> None:
    end = UtteranceEnd(channel=(1, 2), last_word_end=4.5, raw={"last_word_end": 4.5})
    moved = rebase(end, 1.5)
    assert moved == UtteranceEnd(channel=(1, 2), last_word_end=6.0)
    assert moved.raw == {"last_word_end": 4.5}
    started = SpeechStarted(channel=(0, 1), timestamp=0.25)
    assert rebase(started, 1.5) == SpeechStarted(channel=(0, 1), timestamp=1.75)


@pytest.mark.parametrize(
    "event",
    [
        Connected(request_id="r"),
        Metadata(request_id="r", duration=3.0),
        FinalizeComplete(channel=None, reason="covered"),
        Closed(code=1000, initiator="server"),
    ],
)
def test_rebase_leaves_untimed_events_alone(event: Event) -> None:
    assert rebase(event, 5.0) is event


def test_rebase_by_zero_is_the_same_object() -> None:
    decoded = decode_message(RESULTS_JSON)
    assert rebase(decoded, 0.0) is decoded


# --------------------------------------------------------------------------- backoff


def test_delays_grow_exponentially_to_the_cap_without_jitter() -> None:
    delays = reconnect_delays(initial=0.5, factor=2.0, maximum=3.0, jitter=0.0)
    assert list(itertools.islice(delays, 6)) == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@given(seed=st.integers(0, 2**32), jitter=st.floats(0.0, 1.0))
@FAST
def test_jittered_delays_stay_within_bounds(seed: int, jitter: float) -> None:
    delays = reconnect_delays(initial=0.25, maximum=4.0, jitter=jitter, rng=random.Random(seed))
    for n, delay in enumerate(itertools.islice(delays, 10)):
        ceiling = min(4.0, 0.25 * 2.0**n)
        assert ceiling * (1 - jitter) - 1e-12 <= delay <= ceiling


def test_delays_are_reproducible_with_a_seeded_rng_and_vary_without_one() -> None:
    first = list(itertools.islice(reconnect_delays(rng=random.Random(7)), 5))
    second = list(itertools.islice(reconnect_delays(rng=random.Random(7)), 5))
    assert first == second
    assert len(set(first)) == 5
    assert 0.25 <= next(reconnect_delays()) <= 0.5  # the default rng


def test_an_initial_delay_above_the_cap_is_capped() -> None:
    assert next(reconnect_delays(initial=30.0, maximum=10.0, jitter=0.0)) == 10.0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"initial": -1.0}, "initial"),
        ({"factor": 0.5}, "factor"),
        ({"maximum": float("nan")}, "maximum"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_bad_backoff_arguments_are_named_at_once(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=f"reconnect_delays: {named} must be"):
        reconnect_delays(**kwargs)  # type: ignore[arg-type]  # raised by the call, not by the first next()


# --------------------------------------------------------------------------- triage


def rejected(status: int) -> HandshakeRejected:
    return HandshakeRejected(status_code=status)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Closed(code=1006, initiator="transport", retryable=True), True),
        (Closed(code=1011, initiator="server", error_code="NET-0001", retryable=True), True),
        (Closed(code=1000, initiator="server", clean=True), False),
        (Closed(code=1006, initiator="transport"), True),  # lost during the CloseStream drain
        (Closed(code=1006, initiator="transport", metadata=Metadata(request_id="r")), False),
        (Closed(code=1000, initiator="client"), False),  # abort()
        (Closed(code=1006, initiator="timeout"), False),  # no close within close_timeout
        (Closed(code=1011, initiator="server", error_code="DATA-0000"), False),
        (rejected(429), True),
        (rejected(503), True),
        (rejected(401), False),
        (HandshakeError(rejected(502)), True),
        (HandshakeError(rejected(400)), False),
        (ConnectionClosedError(Closed(code=1006, initiator="transport", retryable=True)), True),
        (ConnectionClosedError(Closed(code=1000, initiator="client")), False),
        (TimeoutError("open_timeout"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), False),
        (ValueError("bad options"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_should_reconnect(
    reason: Closed | HandshakeRejected | BaseException, expected: bool
) -> None:
    assert should_reconnect(reason) is expected


# --------------------------------------------------------------------------- end to end


def test_a_drop_mid_speech_resumes_with_no_loss_no_repeat_and_one_timeline() -> None:
    audio = synthesize(TEXT, sample_rate=RATE)
    run = Resumer(MONO, [FaultPlan(drop_after_messages=4)], realtime=True)
    run.stream(audio, CHUNK)
    closed = run.close()
    assert (closed.code, closed.clean) == (1000, True)
    assert run.sessions == 2
    assert run.buffer.offset > 0  # the second session started mid-stream ...
    assert run.buffer.seconds_dropped == 0.0
    # ... yet (a) every word came back exactly once and (b) where it was synthesized
    words = run.words()
    assert [w.punctuated_word for w in words] == TEXT.split()
    for w, span in zip(words, layout(TEXT), strict=True):
        assert w.start == pytest.approx(span.start, abs=0.02)
        assert w.end == pytest.approx(span.end, abs=0.02)
    assert_finals_contiguous(run.finals())
    assert run.finals()[-1].end == pytest.approx(len(audio) / (2 * RATE))
    # the drop lost audio the server had not finalized: what the replay recovered (from
    # the last final word's end: the final window's end may cut a word)
    first_session = list(run.events[: run.events.index(next_closed(run.events))])
    finalized_before = [e for e in first_session if isinstance(e, Results) and e.is_final]
    assert run.buffer.offset == pytest.approx(replay_point(finalized_before), abs=1e-4)
    assert run.buffer.offset <= finalized_before[-1].end
    interims = [e for e in first_session if isinstance(e, Results) and not e.is_final]
    assert interims[-1].end > run.buffer.offset + 0.5  # the server had heard more


def next_closed(events: Sequence[Event]) -> Closed:
    return next(e for e in events if isinstance(e, Closed))


def replay_point(finals: Sequence[Results], margin: float = 2.0) -> float:
    """Where ``ReplayBuffer`` replays from after these finals of one channel."""
    ends = [w.end for r in finals for w in r.alternatives[0].words]
    final_end = max(r.end for r in finals)
    return min(final_end, max(max(ends, default=-1e9), final_end - margin))


def test_without_the_buffer_a_reconnect_loses_words_and_restarts_the_clock() -> None:
    """The failure ReplayBuffer exists for, on the same drop: the test above would see it."""
    audio = synthesize(TEXT, sample_rate=RATE)
    pipe = Pipe(MONO, FaultPlan(drop_after_messages=4), 0.0)
    events: list[Event] = []
    for i in range(0, len(audio), CHUNK):
        if pipe.client.state is State.CLOSED:
            events += pipe.events
            pipe = Pipe(MONO, None, pipe.now)
        pipe.client.send_audio(audio[i : i + CHUNK], now=pipe.now)
        pipe.pump()
        pipe.advance(0.02)
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    events += pipe.events
    finals = [e for e in events if isinstance(e, Results) and e.is_final]
    words = [w for r in finals for w in r.alternatives[0].words]
    assert len(words) < len(TEXT.split())
    assert [r.start for r in finals].count(0.0) == 2


def test_a_tiny_ring_loses_audio_but_not_the_timeline() -> None:
    audio = synthesize(TEXT, sample_rate=RATE)
    run = Resumer(MONO, [FaultPlan(drop_after_messages=4)], max_seconds=0.1, realtime=True)
    run.stream(audio, CHUNK)
    run.close()
    assert run.sessions == 2
    replay_start = run.buffer.offset
    lost_from = replay_start - run.buffer.seconds_dropped  # the watermark at the drop
    assert run.buffer.seconds_dropped > 0.5
    # the words finalized before the drop, then those wholly in the replayed audio on:
    # nothing from the gap (a word cut by the replay start fails its checksum), ...
    expected = [s for s in layout(TEXT) if s.end <= lost_from or s.start >= replay_start]
    words = run.words()
    assert [w.punctuated_word for w in words] == [s.punctuated_word for s in expected]
    assert len(expected) < len(TEXT.split())
    # ... and every word at the time it was spoken: the lost audio still counts
    for w, span in zip(words, expected, strict=True):
        assert w.start == pytest.approx(span.start, abs=0.001)
        assert w.end == pytest.approx(span.end, abs=0.001)


def test_drops_on_the_first_chunk_twice_in_a_row_and_on_the_last() -> None:
    """A drop before the first chunk, two in a row, and one on the last chunk."""
    audio = synthesize(TEXT, sample_rate=RATE)
    chunks = -(-len(audio) // CHUNK)
    run = Resumer(MONO)
    run.stream(audio, CHUNK, drops=[0, 1, 150, 151, chunks - 1])
    run.close()
    assert run.sessions == 6  # 1 and 151 drop a pipe that was just opened
    assert [w.punctuated_word for w in run.words()] == TEXT.split()
    assert_on_layout(run.words(), TEXT, tolerance=0.001)


@given(
    drops=st.lists(st.integers(0, 430), max_size=3, unique=True),
    chunk=st.sampled_from([320, 640, 1666]),
)
@FAST
def test_random_drop_points_lose_and_repeat_nothing(drops: list[int], chunk: int) -> None:
    audio = synthesize(TEXT, sample_rate=RATE)
    drops = [d * CHUNK // chunk for d in drops]  # in 20 ms units whatever the chunk size
    run = Resumer(MONO)
    run.stream(audio, chunk, drops=drops)
    assert run.close().code == 1000
    words = run.words()
    assert [w.punctuated_word for w in words] == TEXT.split()
    assert_on_layout(words, TEXT, tolerance=0.001)
    assert_finals_contiguous(run.finals())


STEREO = LiveOptions(
    encoding="linear16", sample_rate=RATE, channels=2, multichannel=True, interim_results=True
)
LEFT = "Left side talks first. Then a pause. More."
RIGHT = "Right now is a longer sentence that keeps going. Done."


def stereo(left_text: str, right_text: str) -> bytes:
    left = synthesize(left_text, sample_rate=RATE)
    right = synthesize(right_text, sample_rate=RATE)
    size = max(len(left), len(right))
    left, right = left.ljust(size, b"\0"), right.ljust(size, b"\0")
    return b"".join(left[i : i + 2] + right[i : i + 2] for i in range(0, size, 2))


def assert_stereo_whole(run: Resumer) -> None:
    for channel, text in ((0, LEFT), (1, RIGHT)):
        words = run.words(channel)
        assert [w.punctuated_word for w in words] == text.split()
        assert_on_layout(words, text, tolerance=0.001)
        assert_finals_contiguous(run.finals(channel))


def test_multichannel_resume_keeps_each_channel_whole() -> None:
    run = Resumer(STEREO, [FaultPlan(drop_after_messages=7)])
    run.stream(stereo(LEFT, RIGHT), 2 * CHUNK)
    run.close()
    assert run.sessions == 2
    # the replay started where channel 1 was final (its last final word's end); channel 0
    # had finalized further, so the new session heard some of channel 0's words again,
    # and they were removed
    before = run.events[: run.events.index(next_closed(run.events))]
    finals = [r for r in before if isinstance(r, Results) and r.is_final]
    points = [replay_point([r for r in finals if r.channel == c]) for c in (0, 1)]
    assert points[1] == pytest.approx(run.buffer.offset, abs=1e-4)
    assert points[0] > run.buffer.offset + 0.5
    assert_stereo_whole(run)


@given(
    drops=st.lists(st.integers(0, 165), max_size=2, unique=True),
    chunk=st.sampled_from([1280, 1666]),  # 1666 bytes split stereo frames
)
@settings(max_examples=10, deadline=None)
def test_random_drop_points_in_stereo(drops: list[int], chunk: int) -> None:
    run = Resumer(STEREO)
    run.stream(stereo(LEFT, RIGHT), chunk, drops=[d * 1280 // chunk for d in drops])
    assert run.close().code == 1000
    assert_stereo_whole(run)


def test_a_drop_during_the_close_drain_is_resumed_too() -> None:
    """The core calls a drop after CloseStream final (the app was ending the stream), but
    the tail's audio is still in the buffer, so should_reconnect says yes."""
    audio = synthesize("Almost done here", sample_rate=RATE)  # no pause: nothing final yet
    run = Resumer(MONO)
    run.stream(audio, CHUNK)
    client = run.pipe.client
    client.close_stream(now=run.pipe.now)
    client.receive_eof(now=run.pipe.now)  # cut before the server could flush
    run.pipe.pump()
    run._collect(run.pipe)
    closed = client.closed
    assert closed is not None
    assert (closed.code, closed.initiator, closed.retryable) == (1006, "transport", False)
    assert should_reconnect(closed)
    assert run.finals() == []
    assert run.buffer.seconds_buffered == pytest.approx(len(audio) / (2 * RATE))
    run.pipe = run._open(run.pipe.now)
    assert run.close().code == 1000
    assert [w.punctuated_word for w in run.words()] == ["Almost", "done", "here"]
    assert run.buffer.seconds_buffered == 0.0
