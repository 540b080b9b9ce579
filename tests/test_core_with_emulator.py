"""The client core against the emulator core: both pure, joined in memory, one virtual clock.

These are the end-to-end rules with no socket: the words synthesized come back, KeepAlive
saves an idle stream from NET-0001, Finalize and CloseStream lose no tail, and timestamps
stay on the audio clock across silence.
"""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest

from dgproto import (
    Auth,
    Closed,
    Config,
    FinalizeComplete,
    HandshakeRejected,
    ListenConnection,
    LiveOptions,
    Metadata,
    Results,
    SpeechStarted,
    State,
    UnknownMessage,
    UtteranceEnd,
)
from dgproto.emulator import EmulatorConfig, EmulatorConnection, FaultPlan, silence, synthesize

from .memory_pipe import MemoryPipe

RATE = 16000
CHUNK = 640  # 20 ms of linear16 mono


class Session(MemoryPipe):
    """A session with sensible defaults and helpers to stream and read the transcript."""

    def __init__(
        self,
        *,
        options: LiveOptions | None = None,
        config: Config | None = None,
        emulator: EmulatorConfig | None = None,
        faults: FaultPlan | None = None,
        auth: Auth | None = None,
    ) -> None:
        server = EmulatorConnection(
            config=emulator, faults=faults, rng=random.Random(1), wall_time=0.0, now=0.0
        )
        client = ListenConnection(
            options=options
            or LiveOptions(encoding="linear16", sample_rate=RATE, interim_results=True),
            auth=auth or Auth.token("test-key"),
            host="emulator",
            config=config or Config(),
        )
        super().__init__(client, server, now=0.0)

    def stream(self, audio: bytes, *, realtime: bool = True) -> None:
        """Send audio in 20 ms chunks, letting 20 ms pass per chunk (real-time pacing)."""
        for i in range(0, len(audio), CHUNK):
            if self.client.state is State.CLOSED:
                return  # an app would get ConnectionClosedError from its adapter here
            self.client.send_audio(audio[i : i + CHUNK], now=self.now)
            self.pump()
            if realtime:
                self.advance(0.02)

    def finals(self) -> list[Results]:
        return [e for e in self.events if isinstance(e, Results) and e.is_final]

    def final_words(self) -> list[str]:
        return [
            w.punctuated_word or w.word
            for r in self.finals()
            for a in r.alternatives[:1]
            for w in a.words
        ]

    def closed(self) -> Closed:
        assert isinstance(self.events[-1], Closed)
        return self.events[-1]


SPEECH = "Hello world. This is dgproto speaking."


def test_streamed_words_come_back_and_close_stream_loses_no_tail() -> None:
    session = Session()
    audio = synthesize(SPEECH, sample_rate=RATE)
    session.stream(audio)
    assert session.client.audio_bytes_sent == len(audio)
    session.client.close_stream(now=session.now)
    session.advance(1.0)
    assert session.final_words() == SPEECH.split()
    assert any(isinstance(e, Results) and not e.is_final for e in session.events)
    closed = session.closed()
    assert (closed.code, closed.initiator, closed.clean) == (1000, "server", True)
    metadata = closed.metadata
    assert isinstance(metadata, Metadata)
    assert metadata.request_id == session.client.request_id
    assert metadata.duration == pytest.approx(len(audio) / (2 * RATE))
    assert metadata.sha256 == hashlib.sha256(audio).hexdigest()
    # finals are contiguous and cover every byte sent
    finals = session.finals()
    assert finals[0].start == 0
    for before, after in itertools.pairwise(finals):
        assert after.start == pytest.approx(before.end)
    assert finals[-1].end == pytest.approx(session.client.audio_seconds_sent)


def test_sent_as_fast_as_possible_gives_the_same_words() -> None:
    session = Session()
    session.stream(synthesize(SPEECH, sample_rate=RATE), realtime=False)
    session.client.close_stream(now=session.now)
    session.advance(0.5)
    assert session.final_words() == SPEECH.split()


def test_keepalive_keeps_an_idle_stream_open_and_timestamps_stay_on_the_audio_clock() -> None:
    session = Session(config=Config(keepalive_interval=4))
    first = synthesize("Before the pause.", sample_rate=RATE)
    session.stream(first + silence(0.2, sample_rate=RATE))
    session.advance(25.0)  # far past the emulator's 10 s idle timeout
    assert session.client.state is State.OPEN
    assert session.client.keepalives_sent >= 5
    keepalives = [m for m in session.server.received_text_messages if m.type == "KeepAlive"]
    assert len(keepalives) == session.client.keepalives_sent
    audio_before = session.client.audio_seconds_sent
    assert audio_before is not None
    session.stream(synthesize("After it.", sample_rate=RATE))
    session.client.close_stream(now=session.now)
    session.advance(1.0)
    assert session.final_words() == ["Before", "the", "pause.", "After", "it."]
    after = [w for r in session.finals() for w in r.alternatives[0].words if w.word == "after"]
    # 25 s of wall time passed, but the word starts right after the audio sent before it
    assert after[0].start == pytest.approx(audio_before, abs=0.05)


def test_without_keepalive_the_emulator_closes_with_net0001_after_metadata() -> None:
    session = Session(config=Config(keepalive_interval=None))
    session.stream(synthesize("Then silence.", sample_rate=RATE))
    session.advance(15.0)
    kinds = [type(e).__name__ for e in session.events]
    assert kinds[-2:] == ["Metadata", "Closed"]
    closed = session.closed()
    assert closed.code == 1011
    assert closed.error_code == "NET-0001"
    assert closed.retryable
    assert session.final_words() == ["Then", "silence."]


def test_finalize_flushes_the_words_sent_so_far() -> None:
    session = Session()
    session.stream(synthesize("Push to talk", sample_rate=RATE))  # no pause: not final yet
    session.client.finalize(now=session.now)
    session.advance(0.1)
    completions = [e for e in session.events if isinstance(e, FinalizeComplete)]
    assert completions == [FinalizeComplete(channel=None, reason="from_finalize")]
    index = session.events.index(completions[0])
    flushed = [e for e in session.events[:index] if isinstance(e, Results) and e.is_final]
    assert [w.word for r in flushed for w in r.alternatives[0].words] == ["push", "to", "talk"]
    assert flushed[-1].from_finalize
    assert session.client.state is State.OPEN


def test_finalize_with_nothing_new_completes_without_a_server_reply() -> None:
    session = Session()
    session.stream(synthesize("Done.", sample_rate=RATE) + silence(0.6, sample_rate=RATE))
    session.client.finalize(now=session.now)  # flushes the trailing silence
    session.advance(0.1)
    session.client.finalize(now=session.now)  # finals already cover every byte sent
    replies = len(session.finals())
    session.advance(5.0)
    reasons = [e.reason for e in session.events if isinstance(e, FinalizeComplete)]
    assert reasons == ["from_finalize", "covered"]
    assert len(session.finals()) == replies  # Deepgram-like: no reply to an empty flush


def test_vad_events_and_utterance_end() -> None:
    options = LiveOptions(
        encoding="linear16",
        sample_rate=RATE,
        interim_results=True,
        vad_events=True,
        utterance_end_ms=1000,
    )
    session = Session(options=options)
    session.stream(synthesize("One two.", sample_rate=RATE) + silence(1.5, sample_rate=RATE))
    started = [e for e in session.events if isinstance(e, SpeechStarted)]
    ended = [e for e in session.events if isinstance(e, UtteranceEnd)]
    assert started
    assert started[0].timestamp == pytest.approx(0.0, abs=0.05)
    assert len(ended) == 1
    last_word = session.finals()[-1].alternatives[0].words[-1]
    assert ended[0].last_word_end == pytest.approx(last_word.end)


def test_multichannel_results_per_channel() -> None:
    options = LiveOptions(encoding="linear16", sample_rate=RATE, channels=2, multichannel=True)
    session = Session(options=options)
    left = synthesize("Left side.", sample_rate=RATE)
    right = synthesize("Right now.", sample_rate=RATE)
    size = max(len(left), len(right))
    left, right = left.ljust(size, b"\0"), right.ljust(size, b"\0")
    stereo = b"".join(left[i : i + 2] + right[i : i + 2] for i in range(0, size, 2))
    session.stream(stereo, realtime=False)
    session.client.close_stream(now=session.now)
    session.advance(0.5)
    by_channel: dict[int, list[str]] = {0: [], 1: []}
    for r in session.finals():
        assert r.channel_index[1] == 2
        by_channel[r.channel] += [w.word for w in r.alternatives[0].words]
    assert by_channel == {0: ["left", "side"], 1: ["right", "now"]}


def test_wrong_key_is_rejected_with_deepgram_shaped_401() -> None:
    session = Session(emulator=EmulatorConfig(accepted_keys=frozenset({"right-key"})))
    rejected, closed = session.events
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 401
    assert rejected.err_code == "INVALID_AUTH"
    assert rejected.request_id
    assert isinstance(closed, Closed)
    assert not closed.retryable
    assert "test-key" not in repr(session.events)


def test_faults_fragmented_and_unknown_messages_do_not_disturb_the_transcript() -> None:
    session = Session(faults=FaultPlan(fragment=7, unknown_every=2))
    session.stream(synthesize(SPEECH, sample_rate=RATE))
    session.client.close_stream(now=session.now)
    session.advance(1.0)
    assert any(isinstance(e, UnknownMessage) for e in session.events)
    assert session.final_words() == SPEECH.split()
    assert session.closed().code == 1000


def test_dropped_connection_is_retryable() -> None:
    session = Session(faults=FaultPlan(drop_after_messages=2))
    session.stream(synthesize(SPEECH, sample_rate=RATE))
    closed = session.closed()
    assert closed.code == 1006
    assert closed.initiator == "transport"
    assert closed.retryable
