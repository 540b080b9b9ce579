"""``StatsTracker`` and ``LogHistogram``: exact figures on a virtual clock, bounded memory."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto import Closed, FinalizeComplete, Metadata, Results, StreamStats, _stats
from dgproto._stats import LogHistogram, StatsTracker

RATE = 32000  # linear16, 16 kHz, mono: bytes per second
CHUNK = 640  # 20 ms


def results(start: float, duration: float, *, is_final: bool = True, channel: int = 0) -> Results:
    return Results(
        channel_index=(channel, 2),
        start=start,
        duration=duration,
        is_final=is_final,
        speech_final=False,
        from_finalize=False,
        alternatives=(),
    )


def stream_realtime(tracker: StatsTracker, seconds: float, *, start: float = 0.0) -> float:
    """Send ``seconds`` of audio in 20 ms chunks, one chunk per 20 ms from ``start``."""
    now = start
    for i in range(round(seconds / 0.02)):
        now = start + i * 0.02
        tracker.on_audio_sent(CHUNK, (i + 1) * 0.02, now)
    return now


def test_nothing_yet() -> None:
    stats = StatsTracker(bytes_per_second=None).snapshot()
    assert stats == StreamStats()
    # without a fixed byte rate (Opus, WAV) bytes count, times cannot
    tracker = StatsTracker(bytes_per_second=None)
    tracker.on_audio_sent(100, None, 1.0)
    tracker.on_event(results(0.0, 1.0), 2.0)
    later = tracker.snapshot()
    assert (later.audio_bytes_sent, later.audio_seconds_sent) == (100, None)
    assert (later.first_result_latency, later.result_lag_max) == (1.0, None)
    assert stats.audio_seconds_sent is None
    assert stats.result_lag_p50 is None
    assert stats.connected_seconds == 0.0


def test_counts_and_exact_lags_on_a_virtual_clock() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    tracker.on_open(0.0)
    # 2 s of audio, chunk i (ending at (i+1)*0.02 s of audio) sent at 1.0 + i*0.02 s
    stream_realtime(tracker, 2.0, start=1.0)
    tracker.on_text_sent("KeepAlive", 3.0)
    tracker.on_event(results(0.0, 0.5, is_final=False), 1.6)
    # final ending at audio 1.0 s: its last chunk (i=49) went out at 1.98 s, received at 2.23
    tracker.on_event(results(0.0, 1.0), 2.23)
    tracker.on_event(results(1.0, 1.0), 3.5)  # audio 2.0 s: sent at 2.98
    tracker.on_event(Metadata(request_id="r"), 3.6)
    tracker.on_close(4.0)
    stats = tracker.snapshot()
    assert stats.audio_bytes_sent == 100 * CHUNK
    assert stats.audio_seconds_sent == pytest.approx(2.0)
    assert (stats.keepalives_sent, stats.finalizes_sent) == (1, 0)
    assert (stats.results_received, stats.finals_received) == (3, 2)
    assert stats.first_result_latency == pytest.approx(0.6)
    assert stats.result_lag_max == pytest.approx(0.52)
    assert stats.result_lag_p50 == pytest.approx(0.25, rel=0.01)
    assert stats.result_lag_p95 == pytest.approx(0.52, rel=0.01)
    assert stats.connected_seconds == 4.0
    assert stats.reconnects == 0
    assert "results=3" in repr(tracker)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.reconnects = 1  # type: ignore[misc]


def test_a_final_within_a_chunk_is_timed_by_the_chunk_that_carried_its_end() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    tracker.on_audio_sent(CHUNK * 10, 0.2, 5.0)
    tracker.on_audio_sent(CHUNK * 10, 0.4, 5.2)
    tracker.on_audio_sent(0, 0.4, 5.2)  # same instant (and a clock that stood still)
    tracker.on_event(results(0.0, 0.3), 5.5)  # audio 0.3 s left with the second chunk
    assert tracker.snapshot().result_lag_max == pytest.approx(0.3)
    # a repeated final is timed again but moves nothing
    tracker.on_event(results(0.0, 0.3), 5.6)
    assert tracker.snapshot().result_lag_max == pytest.approx(0.4)
    # a final past all audio sent (a server bug) is counted but not timed
    tracker.on_event(results(0.3, 5.0), 6.0)
    assert tracker.snapshot().finals_received == 3
    assert tracker.snapshot().result_lag_max == pytest.approx(0.4)


def test_finalize_latency_excludes_those_the_close_cut_short() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    tracker.on_text_sent("Finalize", 1.0)
    tracker.on_text_sent("Finalize", 2.0)
    tracker.on_text_sent("Configure", 2.0)
    tracker.on_event(FinalizeComplete(channel=None, reason="from_finalize"), 1.3)
    tracker.on_event(FinalizeComplete(channel=None, reason="timeout"), 5.0)
    tracker.on_text_sent("Finalize", 6.0)
    tracker.on_event(FinalizeComplete(channel=None, reason="closed"), 6.1)
    # a FinalizeComplete with no Finalize on record (after a reconnect) is ignored
    tracker.on_event(FinalizeComplete(channel=None, reason="covered"), 6.2)
    stats = tracker.snapshot()
    assert stats.finalizes_sent == 3
    assert stats.finalize_latency_max == 3.0
    assert stats.finalize_latency_p50 == pytest.approx(0.3, rel=0.01)


def test_connected_seconds_sums_connections_and_counts_the_open_one() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    tracker.on_open(10.0)
    tracker.on_close(12.0)
    tracker.on_close(13.0)  # a second close (the transport after Closed) adds nothing
    tracker.on_reconnect()
    tracker.on_open(14.0)
    tracker.on_event(Closed(code=1000, initiator="server"), 15.5)
    assert tracker.snapshot().connected_seconds == 3.5  # as of the latest now
    assert tracker.snapshot(now=20.0).connected_seconds == 8.0
    assert tracker.snapshot().reconnects == 1


def test_after_a_reconnect_replayed_audio_is_timed_from_its_resend() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    tracker.on_audio_sent(CHUNK * 50, 1.0, 0.0)
    tracker.on_audio_sent(CHUNK * 50, 2.0, 1.0)
    tracker.on_event(results(0.0, 1.0), 1.2)  # lag 1.2
    tracker.on_reconnect()
    # the new session replays from the watermark (1.0 s), rebased onto the stream clock
    tracker.on_audio_sent(CHUNK * 50, 2.0, 10.0)
    tracker.on_event(results(1.0, 1.0), 10.4)
    stats = tracker.snapshot()
    assert stats.result_lag_max == pytest.approx(1.2)
    assert stats.result_lag_p50 == pytest.approx(0.4, rel=0.01)
    assert stats.audio_seconds_sent == pytest.approx(3.0)  # resent audio is billed again


def test_multichannel_marks_wait_for_the_slowest_channel() -> None:
    tracker = StatsTracker(bytes_per_second=RATE * 2, channels=2)
    stream_realtime(tracker, 4.0)
    tracker.on_event(results(0.0, 4.0, channel=0), 4.5)  # channel 0 done up to 4.0
    tracker.on_event(results(0.0, 1.0, channel=1), 4.6)  # channel 1's audio 1.0: sent 0.98
    assert tracker.snapshot().result_lag_max == pytest.approx(4.6 - 0.98)


def test_memory_stays_bounded_when_finals_never_come(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stats, "MAX_MARKS", 100)
    tracker = StatsTracker(bytes_per_second=RATE)
    stream_realtime(tracker, 60.0)  # 3000 chunks
    assert len(tracker._ends) - tracker._head == 100
    assert len(tracker._ends) <= 2 * 100 + 1024
    # audio whose mark was dropped is not timed (it would look faster than it was) ...
    tracker.on_event(results(0.0, 10.0), 61.0)
    assert tracker.snapshot().result_lag_max is None
    # ... audio still remembered is
    tracker.on_event(results(10.0, 49.98), 61.0)
    assert tracker.snapshot().result_lag_max == pytest.approx(61.0 - 59.96)


def test_a_day_of_finals_keeps_a_constant_footprint() -> None:
    tracker = StatsTracker(bytes_per_second=RATE)
    now = 0.0
    for second in range(1, 24 * 3600, 60):  # one minute per step, 1 s audio, final 0.3 s later
        now = float(second)
        tracker.on_audio_sent(CHUNK * 50, float(second), now)
        tracker.on_event(results(second - 1.0, 1.0), now + 0.3)
    assert len(tracker._ends) - tracker._head <= 1
    assert len(tracker._ends) <= 1025
    stats = tracker.snapshot()
    assert stats.finals_received == 1440
    assert stats.result_lag_p95 == pytest.approx(0.3, rel=0.01)
    assert len(tracker._lag._counts) < 1500


def test_log_histogram_buckets_cost_nothing_until_used() -> None:
    # an idle stream's two histograms hold no counters (bench_memory's per-stream figure)
    tracker = StatsTracker(bytes_per_second=RATE)
    assert tracker._lag._counts == {}
    assert tracker._finalize._counts == {}
    histogram = LogHistogram()
    for value in (0.2, 0.2, 0.3, 5.0, 0.0):
        histogram.add(value)
    assert len(histogram._counts) == 4
    assert histogram.quantile(0.2) == 0.0
    assert histogram.quantile(0.6) == pytest.approx(0.2, rel=0.01)
    assert histogram.quantile(0.8) == pytest.approx(0.3, rel=0.01)
    assert histogram.quantile(1.0) == 5.0


def test_log_histogram_edges() -> None:
    histogram = LogHistogram()
    assert histogram.quantile(0.5) is None
    histogram.add(0.0)
    histogram.add(5e-7)
    assert histogram.quantile(1.0) == 0.0
    histogram.add(1e9)  # past ``high``: shares the last bucket, the max stays exact
    assert histogram.max == 1e9
    assert histogram.quantile(1.0) == pytest.approx(1e6, rel=0.01)
    with pytest.raises(ValueError, match="error"):
        LogHistogram(error=0.0)
    with pytest.raises(ValueError, match="low"):
        LogHistogram(low=2.0, high=1.0)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1e5, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.95, 0.99, 1.0]),
)
def test_log_histogram_error_bound(values: list[float], q: float) -> None:
    """Documented bound: within 1 % of the exact nearest-rank percentile, or 1e-6 s."""
    histogram = LogHistogram()
    for value in values:
        histogram.add(value)
    exact = nearest_rank(values, q)
    estimate = histogram.quantile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= 0.01 * exact + 1e-6
    assert histogram.max == max(values)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 40), st.floats(0.0, 0.5)), min_size=1, max_size=80),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 2.0)), max_size=30),
    st.integers(1, 3),
)
def test_lag_matches_a_brute_force_reading(
    sends: list[tuple[int, float]], finals: list[tuple[float, float]], channels: int
) -> None:
    """Sends of random sizes at random times; finals (per channel, in order) at random
    points of the audio sent so far. Every lag is the receive time minus the send time
    of the first chunk that reached the final's end."""
    tracker = StatsTracker(bytes_per_second=RATE, channels=channels)
    marks: list[tuple[float, float]] = []  # (audio end, sent at)
    now = audio = 0.0
    for frames, gap in sends:
        now += gap
        audio += frames * 0.01
        tracker.on_audio_sent(frames * 320, audio, now)
        marks.append((audio, now))
    covered = [0.0] * channels
    lags = []
    for index, (fraction, delay) in enumerate(finals):
        channel = index % channels
        end = covered[channel] + fraction * (audio - covered[channel])
        now += delay
        tracker.on_event(results(covered[channel], end - covered[channel], channel=channel), now)
        covered[channel] = end
        lags.append(now - next(t for e, t in marks if e >= end - 0.001))
    stats = tracker.snapshot()
    assert stats.finals_received == len(finals)
    if lags:
        assert stats.result_lag_max == pytest.approx(max(lags))
        assert stats.result_lag_p50 == pytest.approx(nearest_rank(lags, 0.5), rel=0.01, abs=1e-6)
    else:
        assert stats.result_lag_max is None


def test_the_marks_of_an_hour_without_finals_fit_in_256_kib() -> None:
    """The real cap, no monkeypatching: an hour of 20 ms chunks that no final ever
    covers (a server far behind) keeps at most 256 KiB of send marks per stream."""
    tracker = StatsTracker(bytes_per_second=RATE)
    stream_realtime(tracker, 3600.0)
    held = tracker._ends.itemsize * len(tracker._ends) + tracker._times.itemsize * len(
        tracker._times
    )
    assert len(tracker._ends) - tracker._head == _stats.MAX_MARKS
    assert held <= 256 * 1024
