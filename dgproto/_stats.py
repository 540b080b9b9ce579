"""``StreamStats``: how a stream is doing, from the ``now`` values the connection is given.

Voice apps need the same numbers (audio sent and what it will cost, time to the first
result, how far results lag behind the audio, how long a Finalize takes) and today rebuild
them from logs. ``StatsTracker`` is fed by the connection (``on_audio_sent``,
``on_text_sent``, ``on_event``, ``on_open``/``on_close``, ``on_reconnect``) and never reads
a clock, so every figure is exact on a virtual clock.

Memory is bounded over a 24-hour stream: percentiles come from a fixed array of
log-spaced buckets (``LogHistogram``, relative error at most 1 %), and the send times kept
to measure result lag are pruned as finals arrive and capped at ``MAX_MARKS``.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from itertools import accumulate

import attrs

from ._events import Event, FinalizeComplete, Results

__all__ = ["MAX_MARKS", "LogHistogram", "StatsTracker", "StreamStats"]

#: Send times remembered to measure result lag: ~2.7 minutes of 20 ms chunks. A final
#: later than that behind the audio is not measured (the oldest marks are dropped first).
#: Two ``array('d')`` of at most twice this (compaction slack): 256 KiB per stream at
#: worst, when no final comes for minutes, against 12 MiB with lists of floats.
MAX_MARKS = 1 << 13

#: Audio-clock slack when matching a final's end to the audio sent (float sums: 12.08 + 4.7700005).
_TOLERANCE = 0.001


@attrs.frozen(kw_only=True)
class StreamStats:
    """A snapshot of one stream's figures. Times are seconds; ``None`` means "no data yet".

    Lags and latencies are wall time on the caller's clock (the ``now`` values).
    """

    #: Seconds of audio sent (per channel), counting audio resent after a reconnect;
    #: ``None`` for encodings without a fixed byte rate.
    audio_seconds_sent: float | None = None
    audio_bytes_sent: int = 0
    keepalives_sent: int = 0
    finalizes_sent: int = 0
    #: Every ``Results`` (interim and final), and the finals among them.
    results_received: int = 0
    finals_received: int = 0
    #: From the first audio sent to the first ``Results``.
    first_result_latency: float | None = None
    #: From sending the audio up to time T to receiving the final that ends at T.
    result_lag_p50: float | None = None
    result_lag_p95: float | None = None
    result_lag_max: float | None = None
    #: The latest timed final's lag: for a live display.
    result_lag_last: float | None = None
    #: From ``finalize()`` to its ``FinalizeComplete`` (those the close cut short excluded).
    finalize_latency_p50: float | None = None
    finalize_latency_max: float | None = None
    #: Socket lifetime, summed over connections: what Deepgram bills.
    connected_seconds: float = 0.0
    reconnects: int = 0


class LogHistogram:
    """Percentiles of positive durations in a fixed-size array of log-spaced buckets.

    Bucket ``i`` holds values in ``(low * g**(i-1), low * g**i]`` with
    ``g = (1 + error) / (1 - error)`` and reports ``2 * low * g**i / (g + 1)``, which is
    within ``error`` (relative) of every value in it. Values at or below ``low`` count as
    0 (absolute error at most ``low``); values above ``high`` share the last bucket. The
    maximum is kept exactly. Memory: a counter per bucket in use, at most
    ``log(high / low) / log(g)`` (1,400 with the defaults) whatever the number of values,
    and none while empty (an idle stream has two: they cost nothing until used).
    """

    def __init__(self, *, error: float = 0.01, low: float = 1e-6, high: float = 1e6) -> None:
        if not 0 < error < 1 or not 0 < low < high:
            raise ValueError("LogHistogram needs 0 < error < 1 and 0 < low < high")
        self.error = error
        self.low = low
        self._gamma = (1 + error) / (1 - error)
        self._log_gamma = math.log(self._gamma)
        #: the bucket of ``high``: the last one
        self._last = max(1, math.ceil(math.log(high / low) / self._log_gamma))
        #: bucket -> count, only for the buckets in use
        self._counts: dict[int, int] = {}
        self.count = 0
        self.max: float | None = None

    def add(self, value: float) -> None:
        # one call per timed final: the bucket computed inline, clamped to the last one
        if value <= self.low:
            index = 0
        else:
            index = max(1, math.ceil(math.log(value / self.low) / self._log_gamma))
            if index > self._last:
                index = self._last
        counts = self._counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        if self.max is None or value > self.max:
            self.max = value

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (``0 < q <= 1``), or ``None`` when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        indexes = sorted(self._counts)
        counts = [self._counts[i] for i in indexes]
        index = indexes[bisect_left(list(accumulate(counts)), rank)]
        if index == 0:
            return 0.0
        estimate = 2 * self.low * self._gamma**index / (self._gamma + 1)
        assert self.max is not None
        return min(estimate, self.max)


class StatsTracker:
    """Collects a stream's figures; ``snapshot()`` returns them as ``StreamStats``.

    ``bytes_per_second`` turns bytes into seconds (``None``: the encoding has none);
    ``channels`` is how many channels get their own finals (``multichannel``), so send
    times are forgotten only once every channel's finals are past them.
    ``audio_end_seconds`` passed to ``on_audio_sent`` and the times in the events must be
    on the same audio clock: after a reconnect, the rebased stream clock.
    """

    def __init__(self, *, bytes_per_second: int | None, channels: int = 1) -> None:
        self._bytes_per_second = bytes_per_second
        self._channels = range(max(channels, 1))
        self._single = len(self._channels) == 1
        self._audio_bytes = 0
        self._keepalives = 0
        self._finalizes = 0
        self._results = 0
        self._finals = 0
        self._first_audio_at: float | None = None
        self._first_result_latency: float | None = None
        self._lag = LogHistogram()
        self._last_lag: float | None = None
        self._finalize = LogHistogram()
        self._finalizes_pending: list[float] = []  # a few at most: no deque
        # (audio end, wall time) of each send, oldest first, from ``_head`` on
        self._ends: array[float] = array("d")
        self._times: array[float] = array("d")
        self._head = 0
        #: audio up to here had its mark dropped (MAX_MARKS): its lag cannot be measured
        self._floor = -math.inf
        self._covered: dict[int, float] = {}
        self._connected = 0.0
        self._open_at: float | None = None
        self._reconnects = 0
        self._last_now = -math.inf

    def __repr__(self) -> str:
        return f"<StatsTracker results={self._results} reconnects={self._reconnects}>"

    # ------------------------------------------------------------------ inputs

    def on_open(self, now: float) -> None:
        """The WebSocket opened (``Connected``): the billed time starts."""
        self._tick(now)
        self._open_at = now

    def on_close(self, now: float) -> None:
        """The socket closed (``Closed``)."""
        self._tick(now)
        if self._open_at is not None:
            self._connected += now - self._open_at
            self._open_at = None

    def on_reconnect(self) -> None:
        """A new connection replaces a lost one: audio times may repeat from here."""
        self._reconnects += 1
        del self._ends[:]
        del self._times[:]
        self._head = 0
        self._floor = -math.inf
        self._covered.clear()
        self._finalizes_pending.clear()

    def on_audio_sent(self, size: int, audio_end_seconds: float | None, now: float) -> None:
        """``size`` bytes of audio went out; the audio clock now reads ``audio_end_seconds``."""
        # the audio hot path: one call per chunk, so no helper calls in the common case
        if now > self._last_now:
            self._last_now = now
        self._audio_bytes += size
        if self._first_audio_at is None:
            self._first_audio_at = now
        if audio_end_seconds is None:
            return
        ends = self._ends
        ends.append(audio_end_seconds)
        self._times.append(now)
        if len(ends) - self._head > MAX_MARKS:
            self._floor = ends[self._head]
            self._head += 1
            self._compact()

    def on_text_sent(self, kind: str, now: float) -> None:
        """A control message went out: ``"KeepAlive"``, ``"Finalize"``, ``"CloseStream"``..."""
        self._tick(now)
        if kind == "KeepAlive":
            self._keepalives += 1
        elif kind == "Finalize":
            self._finalizes += 1
            self._finalizes_pending.append(now)

    def on_event(self, event: Event, now: float) -> None:
        """An event the connection emitted."""
        if isinstance(event, Results):
            self.on_results(event, now)
            return
        self._tick(now)
        if isinstance(event, FinalizeComplete) and self._finalizes_pending:
            sent = self._finalizes_pending.pop(0)
            if event.reason != "closed":
                self._finalize.add(now - sent)

    # ------------------------------------------------------------------ output

    def snapshot(self, now: float | None = None) -> StreamStats:
        """The figures now (``None``: as of the latest ``now`` the tracker was given)."""
        at = self._last_now if now is None else now
        connected = self._connected
        if self._open_at is not None:
            connected += max(at - self._open_at, 0.0)
        bps = self._bytes_per_second
        return StreamStats(
            audio_seconds_sent=None if bps is None else self._audio_bytes / bps,
            audio_bytes_sent=self._audio_bytes,
            keepalives_sent=self._keepalives,
            finalizes_sent=self._finalizes,
            results_received=self._results,
            finals_received=self._finals,
            first_result_latency=self._first_result_latency,
            result_lag_p50=self._lag.quantile(0.5),
            result_lag_p95=self._lag.quantile(0.95),
            result_lag_max=self._lag.max,
            result_lag_last=self._last_lag,
            finalize_latency_p50=self._finalize.quantile(0.5),
            finalize_latency_max=self._finalize.max,
            connected_seconds=connected,
            reconnects=self._reconnects,
        )

    # ------------------------------------------------------------------ internals

    def _tick(self, now: float) -> None:
        if now > self._last_now:
            self._last_now = now

    def on_results(self, results: Results, now: float) -> None:
        """A ``Results`` the connection emitted (``on_event``'s hot case, without dispatch)."""
        if now > self._last_now:
            self._last_now = now
        self._results += 1
        if self._first_result_latency is None and self._first_audio_at is not None:
            self._first_result_latency = now - self._first_audio_at
        if not results.is_final:
            return
        self._finals += 1
        end = results.start + results.duration  # ``results.end``, inline
        ends = self._ends
        head = self._head
        index = bisect_left(ends, end - _TOLERANCE, lo=head)
        if index < len(ends) and end - _TOLERANCE > self._floor:
            lag = self._last_lag = max(now - self._times[index], 0.0)
            self._lag.add(lag)
        channel_index = results.channel_index
        channel = channel_index[0] if channel_index else 0
        covered_by_channel = self._covered
        if end > covered_by_channel.get(channel, 0.0):
            covered_by_channel[channel] = end
            # every channel is final up to the least covered one: older marks are done
            if self._single and channel == 0:
                covered = end
            else:
                covered = min(covered_by_channel.get(c, 0.0) for c in self._channels)
            done = bisect_left(ends, covered - _TOLERANCE, lo=head)
            if done > head:
                self._head = done
                self._compact()

    def _compact(self) -> None:
        if self._head > 1024 and self._head * 2 > len(self._ends):
            del self._ends[: self._head]
            del self._times[: self._head]
            self._head = 0
