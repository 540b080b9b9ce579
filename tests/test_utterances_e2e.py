"""Utterances end to end: client core + emulator core in memory, one virtual clock. The
client's own ``Utterance`` events are read; the backstop is one of its timers."""

from __future__ import annotations

import itertools
import random

import pytest

from dgproto import (
    Auth,
    Closed,
    Config,
    Event,
    ListenConnection,
    LiveOptions,
    Results,
    Utterance,
    UtteranceEnd,
)
from dgproto._resume import ReplayBuffer
from dgproto._session import Tracking
from dgproto._state import State
from dgproto._utterances import UtteranceTracker
from dgproto.emulator import EmulatorConnection, FaultPlan, silence, synthesize

from .memory_pipe import MemoryPipe
from .test_resume import LEFT, RIGHT, STEREO, Resumer, stereo

RATE = 16000
CHUNK = 640
SPEECH = "Hello world. This is the end."


class TrackedSession(MemoryPipe):
    """A MemoryPipe that notes when the client emitted each event."""

    def __init__(self, *, options: LiveOptions, faults: FaultPlan | None, timeout: float) -> None:
        server = EmulatorConnection(faults=faults, rng=random.Random(1), wall_time=0.0, now=0.0)
        client = ListenConnection(
            options=options,
            auth=Auth.token("test-key"),
            host="emulator",
            config=Config(utterance_timeout=timeout),
        )
        self.times: dict[int, float] = {}  # id(event) -> when the client emitted it
        super().__init__(client, server, now=0.0)

    def pump(self) -> None:
        seen = len(self.events)
        super().pump()
        for event in self.events[seen:]:
            self.times[id(event)] = self.now

    def fire(self) -> None:
        seen = len(self.events)
        super().fire()
        for event in self.events[seen:]:
            self.times[id(event)] = self.now

    def stream(self, audio: bytes) -> None:
        for i in range(0, len(audio), CHUNK):
            self.client.send_audio(audio[i : i + CHUNK], now=self.now)
            self.pump()
            self.advance(0.02)

    def utterances(self) -> list[Utterance]:
        return [e for e in self.events if isinstance(e, Utterance)]


INTERIM = LiveOptions(
    encoding="linear16",
    sample_rate=RATE,
    interim_results=True,
    utterance_end_ms=1000,
    punctuate=True,
)


def speech_then_silence() -> bytes:
    return synthesize(SPEECH, sample_rate=RATE) + silence(2.5, sample_rate=RATE)


def test_speech_final_and_utterance_end_give_one_utterance() -> None:
    session = TrackedSession(options=INTERIM, faults=None, timeout=3.0)
    session.stream(speech_then_silence())
    utterances = session.utterances()
    assert any(isinstance(e, UtteranceEnd) for e in session.events)
    assert any(isinstance(e, Results) and e.speech_final and e.transcript for e in session.events)
    words = " ".join(u.transcript for u in utterances)
    assert words.split() == SPEECH.split()  # every word once, none twice
    assert {u.reason for u in utterances} <= {"speech_final", "utterance_end"}
    # each comes right after the last Results it was built from
    for u in utterances:
        assert session.events.index(u) > session.events.index(u.results[-1])


def test_backstop_ends_the_utterance_when_the_server_withholds_every_end_signal() -> None:
    faults = FaultPlan(withhold_end_signals=True)
    session = TrackedSession(options=INTERIM, faults=faults, timeout=1.5)
    session.stream(speech_then_silence())
    session.advance(2.0)
    results = [e for e in session.events if isinstance(e, Results)]
    assert not any(r.speech_final for r in results)
    assert not any(isinstance(e, UtteranceEnd) for e in session.events)
    utterances = session.utterances()
    assert [u.reason for u in utterances] == ["timeout"] * len(utterances)
    assert " ".join(u.transcript for u in utterances).split() == SPEECH.split()
    last = utterances[-1]
    # fired utterance_timeout after the last final with words arrived, on the virtual clock
    arrived = session.times[id(last.results[-1])]
    assert session.times[id(last)] == pytest.approx(arrived + 1.5)
    assert last.end == pytest.approx(last.results[-1].alternatives[0].words[-1].end)


def test_without_interim_results_finalize_or_close_end_what_is_left() -> None:
    faults = FaultPlan(withhold_end_signals=True)
    options = LiveOptions(encoding="linear16", sample_rate=RATE, punctuate=True)
    session = TrackedSession(options=options, faults=faults, timeout=30.0)
    session.stream(synthesize("Push to talk.", sample_rate=RATE))
    session.client.finalize(now=session.now)
    session.advance(0.5)
    assert [(u.transcript, u.reason) for u in session.utterances()] == [
        ("Push to talk.", "finalize")
    ]
    session.stream(synthesize("Cut short", sample_rate=RATE))
    session.client.close_stream(now=session.now)
    session.advance(1.0)
    assert [(u.transcript, u.reason) for u in session.utterances()][1:] == [("Cut short", "closed")]


def test_fault_spec() -> None:
    plan = FaultPlan.parse("withhold_end_signals=true")
    assert plan.withhold_end_signals
    assert plan.to_spec() == "withhold_end_signals=True"
    assert FaultPlan.parse(plan.to_spec()) == plan
    assert FaultPlan.parse("withhold_end_signals=0") == FaultPlan()
    with pytest.raises(ValueError, match="true or false"):
        FaultPlan.parse("withhold_end_signals=maybe")
    with pytest.raises(TypeError):
        FaultPlan(withhold_end_signals=1)  # type: ignore[arg-type]


def test_multichannel_backstop_per_channel() -> None:
    options = LiveOptions(
        encoding="linear16",
        sample_rate=RATE,
        channels=2,
        multichannel=True,
        interim_results=True,
        punctuate=True,
    )
    faults = FaultPlan(withhold_end_signals=True)
    session = TrackedSession(options=options, faults=faults, timeout=1.0)
    session.stream(stereo(LEFT, RIGHT) + bytes(4 * RATE * 2))  # then 2 s of silence
    utterances = session.utterances()
    assert {u.reason for u in utterances} == {"timeout"}
    for channel, text in ((0, LEFT), (1, RIGHT)):
        mine = [u for u in utterances if u.channel == channel]
        assert " ".join(u.transcript for u in mine).split() == text.split()


def test_reconnects_with_rebased_times_report_every_word_once() -> None:
    """The resilience recipe (``ReplayBuffer``) in stereo with a drop mid-stream: channel 0
    had finalized further than channel 1, so the new session hears some of it again."""
    run = Resumer(STEREO, [FaultPlan(drop_after_messages=7)], realtime=True)
    run.stream(stereo(LEFT, RIGHT), 2 * 640)
    run.close()
    assert run.sessions == 2
    tracker = UtteranceTracker(timeout=None)
    events = [e for e in run.events if not isinstance(e, Closed)] + [run.events[-1]]
    utterances = [u for i, e in enumerate(events) for u in tracker.handle_event(e, now=i)]
    for channel, text in ((0, LEFT), (1, RIGHT)):
        mine = [u for u in utterances if u.channel == channel]
        spoken = [w.strip(".").lower() for w in text.split()]
        assert " ".join(u.transcript for u in mine).split() == spoken
        assert all(a.end <= b.start for a, b in itertools.pairwise(mine))


class TimedPipe(MemoryPipe):
    """A MemoryPipe that notes when the client emitted each event."""

    def __init__(self, client: ListenConnection, server: EmulatorConnection, now: float) -> None:
        self.times: dict[int, float] = {}
        super().__init__(client, server, now=now)

    def pump(self) -> None:
        seen = len(self.events)
        super().pump()
        for event in self.events[seen:]:
            self.times[id(event)] = self.now


def test_core_sockets_sharing_tracking_carry_an_utterance_over_a_drop() -> None:
    """What ``reconnect=True`` does, on the virtual clock: two connections share one
    ``Tracking``; the drop ends no utterance, the second socket's backstop ends it
    (``utterance_timeout`` after its last final, exactly), and the stats add up."""
    tracking = Tracking()
    buffer = ReplayBuffer.for_options(INTERIM)
    config = Config(utterance_timeout=1.0)
    now = 0.0

    def open_pipe(faults: FaultPlan) -> TimedPipe:
        server = EmulatorConnection(faults=faults, rng=random.Random(1), wall_time=0.0, now=now)
        client = ListenConnection(
            options=INTERIM,
            auth=Auth.token("k"),
            host="emulator",
            config=config,
            tracking=tracking,
        )
        return TimedPipe(client, server, now=now)

    events: list[Event] = []
    times: dict[int, float] = {}

    def collect(p: TimedPipe) -> None:
        for e in p.events:
            event = buffer.settle(e)  # the core applied the buffer's view
            times[id(event)] = p.times[id(e)]
            events.append(event)
        p.events.clear()

    pipe = open_pipe(FaultPlan(withhold_end_signals=True, drop_after_messages=1))
    audio = speech_then_silence()
    drops = resent = 0
    for i in range(0, len(audio), CHUNK):
        chunk = audio[i : i + CHUNK]
        buffer.record(chunk)
        if pipe.client.state is State.CLOSED:
            collect(pipe)
            now = pipe.now
            drops += 1
            pipe = open_pipe(FaultPlan(withhold_end_signals=True))
            replay = buffer.resume()
            resent = sum(map(len, replay)) - len(chunk)  # audio the old socket had taken
            tracking.offset, tracking.view = buffer.offset, buffer.view
            assert tracking.stats is not None
            tracking.stats.on_reconnect()
            for part in replay:  # this chunk too
                pipe.client.send_audio(part, now=pipe.now)
            pipe.pump()
            collect(pipe)
            continue
        pipe.client.send_audio(chunk, now=pipe.now)
        pipe.pump()
        pipe.advance(0.02)
        collect(pipe)
    pipe.advance(2.0)
    collect(pipe)
    assert drops == 1
    found = [e for e in events if isinstance(e, Utterance)]
    assert [u.reason for u in found] == ["timeout"] * len(found)  # none "closed" at the drop
    assert " ".join(u.transcript for u in found).split() == SPEECH.split()
    connected = [i for i, e in enumerate(events) if type(e).__name__ == "Connected"]
    assert len(connected) == 2
    straddle = [u for u in found if events.index(u.results[0]) < connected[1]]
    assert straddle  # the utterance in progress at the drop went on on the new socket
    last = found[-1]
    # the backstop: exactly utterance_timeout after the last final with words arrived
    final_at = next(times[id(e)] for e in events if e == last.results[-1])
    assert times[id(last)] == pytest.approx(final_at + 1.0)
    stats = pipe.client.stats
    assert stats.reconnects == 1
    assert stats.audio_bytes_sent == len(audio) + resent  # a replay counts again
    assert stats.finals_received == sum(isinstance(e, Results) and e.is_final for e in events)
    assert stats.result_lag_max is not None
