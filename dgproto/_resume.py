"""Resuming a live stream on a new connection, with timestamps that carry on.

Deepgram keeps no state across sockets: a new connection's timestamps restart at 0, and
audio the old server had received but not yet finalized is lost with it. ``ReplayBuffer``
fixes both around any adapter, without touching the connection:

* ``record(chunk)`` every chunk of audio you send (and any you capture while disconnected);
* ``event = buffer.observe(event)`` for every event received: it adds ``offset`` to the
  event's timestamps, and a final ``Results`` moves the *watermark*, the stream time up to
  which every channel is finalized, and ``replay_from``, where the next replay starts;
  audio before that is forgotten;
* when a connection opens (the first one too), send ``buffer.resume()`` first, then go on.
  The new session's t=0 is the first replayed byte, so its timestamps plus the new
  ``offset`` continue the old ones.

Why ``replay_from`` is not the watermark: Deepgram puts a word that straddles a final
window's end into the *next* window, so the watermark can fall inside a word. A replay
from there would give the new session only the word's tail, and the word would be lost
or misheard. The replay starts at the end of the last final word instead, but no more
than ``margin`` seconds before the watermark (so a long silence is not replayed whole):
``max(last final word end, watermark - margin)`` per channel. The replayed finals repeat
words already final; ``observe`` removes them (see ``view``), so each word is reported
once, at its stream time.

Only audio with a fixed byte rate can be resumed mid-stream: a WAV/Ogg/WebM stream has its
header at the start only (deepgram-js-sdk#301). The ring is bounded (``max_seconds``,
drop-oldest). Audio pushed out of it before a reconnect cannot be replayed; it is lost for
transcription but still counted in the timeline, so later timestamps stay right
(``seconds_dropped`` says how much).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator
from typing import TypeVar

import attrs

from ._audio import BYTES_PER_SAMPLE, bytes_per_second
from ._errors import ConnectionClosedError, HandshakeError
from ._events import (
    Alternative,
    Closed,
    Event,
    HandshakeRejected,
    Results,
    SpeechStarted,
    UtteranceEnd,
    Word,
)
from ._options import LiveOptions
from ._utterances import TOLERANCE

__all__ = ["ReplayBuffer", "rebase", "reconnect_delays", "should_reconnect"]

E = TypeVar("E", bound=Event)
R = TypeVar("R", bound=Results)

#: A channel finalized past the replay start by more than this (seconds; float noise
#: aside, any amount: a window of 1 ms must not be repeated) will hear audio again.
_AHEAD = 1e-6

#: Seconds before a channel's final end that a replay starts at most, when its last final
#: word ended earlier: longer than any word, so a word the window end cut is replayed whole.
REPLAY_MARGIN = 2.0


def rebase(event: E, offset: float) -> E:
    """A copy of ``event`` with every timestamp moved ``offset`` seconds later.

    Moves ``Results.start`` (not ``duration``), each word's ``start``/``end``,
    ``UtteranceEnd.last_word_end`` and ``SpeechStarted.timestamp``; other events come back
    as they are. ``raw`` stays the server's JSON, on the server's clock.
    """
    if not offset:
        return event
    if isinstance(event, Results):
        alternatives = tuple(
            attrs.evolve(
                a,
                words=tuple(_shift_word(w, offset) for w in a.words),
            )
            for a in event.alternatives
        )
        return attrs.evolve(event, start=event.start + offset, alternatives=alternatives)
    if isinstance(event, UtteranceEnd):
        return attrs.evolve(event, last_word_end=event.last_word_end + offset)
    if isinstance(event, SpeechStarted):
        return attrs.evolve(event, timestamp=event.timestamp + offset)
    return event


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"ReplayBuffer: {name} must be an int >= 1, got {value!r}")
    return value


def _seconds(name: str, value: object, *, low: float = 0.0, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
    return float(value)


@attrs.frozen
class StreamView:
    """One connection's way onto the stream: the ``offset`` and the words already final.

    ``view(event)`` is ``event`` on the stream's clock (``rebase``), and for a channel in
    ``cuts`` (``channel -> (words_from, window_from)``: that channel's last final word
    end and final window end before the replay) a ``Results`` without the words already
    final: a word centred before ``words_from``, or ending within ``TOLERANCE`` of it,
    is a repeat. The window then starts no earlier than ``window_from``; a kept word may
    start before it, as a straddling word does in Deepgram's own windows.

    Immutable: a new connection gets a new view (``ReplayBuffer.resume``), so a core may
    apply it on a reader thread while the app records audio on another.
    """

    offset: float = 0.0
    cuts: tuple[tuple[int, float, float], ...] = ()

    def __call__(self, event: E) -> E:
        """``event`` on the stream's clock, without the words already final."""
        event = rebase(event, self.offset)
        if self.cuts and isinstance(event, Results):
            channel = event.channel
            for cut_channel, words_from, window_from in self.cuts:
                if cut_channel == channel:
                    return _after(event, words_from, window_from)
        return event


class ReplayBuffer:
    """The audio sent but not yet finalized, and the offset of the current session.

    Positions are counted in bytes of the whole stream (every session, and the gaps
    between them); cuts fall on frame boundaries (``frame_bytes``: sample width times
    channels) so interleaved channels stay aligned whatever the chunk sizes. Not
    thread-safe: where one thread sends and another reads, hold a lock around its calls.
    """

    def __init__(
        self,
        *,
        bytes_per_second: int,
        frame_bytes: int = 1,
        max_seconds: float = 30.0,
        margin: float = REPLAY_MARGIN,
    ) -> None:
        self.bytes_per_second = _positive_int("bytes_per_second", bytes_per_second)
        self.frame_bytes = _positive_int("frame_bytes", frame_bytes)
        if bytes_per_second % frame_bytes:
            raise ValueError(
                f"ReplayBuffer: bytes_per_second ({bytes_per_second}) must be a multiple of "
                f"frame_bytes ({frame_bytes}), the bytes of one sample on every channel"
            )
        self.max_seconds = _seconds("ReplayBuffer: max_seconds", max_seconds)
        self._frames_per_second = bytes_per_second // frame_bytes
        self._max_bytes = int(self.max_seconds * self._frames_per_second) * frame_bytes
        self._chunks: deque[bytes] = deque()
        self._start = 0  # stream position of the first byte held
        self._end = 0  # stream position after the last byte recorded
        self._base = 0  # stream position of the current session's t=0
        self._dropped = 0  # bytes that were never replayable when a resume needed them
        self._channels = 1
        self._final_end: dict[int, float] = {}  # channel -> stream seconds finalized
        self._word_end: dict[int, float] = {}  # channel -> end of its last final word
        self._view = StreamView()
        #: Seconds before the watermark a replay starts at most (``REPLAY_MARGIN``, 2 s:
        #: longer than any word); it starts at the last final word's end if that is later.
        #: 0 replays from the watermark, which can cut a word.
        self.margin = _seconds("ReplayBuffer: margin", margin)

    @classmethod
    def for_options(cls, options: LiveOptions, max_seconds: float = 30.0) -> ReplayBuffer:
        """A buffer for the stream ``options`` describe: raw audio with a fixed byte rate."""
        channels = options.channels or 1
        rate = bytes_per_second(options.encoding, options.sample_rate, channels)
        if rate is None or options.encoding is None:
            raise ValueError(
                f"ReplayBuffer needs raw audio with a fixed byte rate (encoding one of "
                f"{', '.join(BYTES_PER_SAMPLE)}, and a sample_rate); got "
                f"encoding={options.encoding!r}, sample_rate={options.sample_rate!r}. "
                "Containerized or compressed audio cannot be resumed mid-stream."
            )
        frame = BYTES_PER_SAMPLE[options.encoding] * channels
        return cls(bytes_per_second=rate, frame_bytes=frame, max_seconds=max_seconds)

    @property
    def offset(self) -> float:
        """Seconds to add to the current session's timestamps to get stream time."""
        return self._base / self.bytes_per_second

    @property
    def watermark(self) -> float:
        """Stream time up to which every channel is finalized (or was given up)."""
        finals = min(self._final_end.get(c, 0.0) for c in range(self._channels))
        return max(finals, self.offset)

    @property
    def replay_from(self) -> float:
        """Stream time the next ``resume()`` replays from: no word is cut there.

        Per channel, the end of its last final word, or ``margin`` seconds before its
        final end if that is later (never past its final end); the earliest channel's.
        """
        margin = self.margin
        points = []
        for c in range(self._channels):
            final = self._final_end.get(c, 0.0)
            points.append(min(final, max(self._word_end.get(c, -math.inf), final - margin)))
        return max(min(points), self.offset)

    @property
    def view(self) -> StreamView | None:
        """What the current connection's events need to be on the stream (``None``: nothing).

        ``observe`` applies it; a core that shares a reconnecting stream's trackers
        applies it itself, so the app, the utterances and the stats see the same events
        (then pass them to ``settle``, not ``observe``).
        """
        view = self._view
        return view if view.offset or view.cuts else None

    @property
    def seconds_buffered(self) -> float:
        """Audio held for a replay: recorded and not yet finalized."""
        return (self._end - self._start) / self.bytes_per_second

    @property
    def seconds_dropped(self) -> float:
        """Audio a resume could not replay because ``max_seconds`` had pushed it out."""
        return self._dropped / self.bytes_per_second

    def record(self, chunk: bytes | bytearray | memoryview) -> None:
        """Keep a chunk of audio as sent (or captured while disconnected)."""
        data = bytes(chunk)
        if not data:
            return
        self._chunks.append(data)
        self._end += len(data)
        excess = self._end - self._start - self._max_bytes
        if excess > 0:
            self._forget(self._start - (-excess // self.frame_bytes) * self.frame_bytes)

    def observe(self, event: E) -> E:
        """Return ``event`` on the stream's clock; a final moves the watermark.

        After a resume, words a channel had already finalized (a multichannel stream is
        replayed from the channel furthest behind) are removed from that channel's
        ``Results``, whose ``transcript`` is then rebuilt from the remaining words.
        """
        return self.settle(self._view(event))

    def settle(self, event: E) -> E:
        """``observe`` for an event already on the stream (through ``view``): a final
        moves the watermark and ``replay_from``; returns ``event``."""
        if isinstance(event, Results) and event.is_final:
            channel = event.channel
            index = event.channel_index
            self._channels = max(self._channels, index[1] if len(index) > 1 else 1)
            self._final_end[channel] = max(self._final_end.get(channel, 0.0), event.end)
            words = event.alternatives[0].words if event.alternatives else ()
            if words:
                self._word_end[channel] = max(self._word_end.get(channel, -math.inf), words[-1].end)
            self._forget(self._position(self.replay_from))
        return event

    def resume(self) -> list[bytes]:
        """The chunks to send first on a new connection; its t=0 is their first byte.

        Call it once every event of the previous connection went through ``observe``.
        The buffer keeps the chunks (do not ``record`` them again): if this connection
        drops too, the next ``resume()`` replays them once more, minus what got finalized.
        """
        self._dropped += max(0, self._start - self._position(self.watermark))
        self._base = self._start
        offset = self.offset
        cuts = tuple(
            (c, self._word_end.get(c, -math.inf), t)
            for c, t in sorted(self._final_end.items())
            if t > offset + _AHEAD
        )
        self._view = StreamView(offset=offset, cuts=cuts)
        return list(self._chunks)

    def _position(self, seconds: float) -> int:
        """The frame boundary nearest to ``seconds`` of stream time, in bytes."""
        return round(seconds * self._frames_per_second) * self.frame_bytes

    def _forget(self, position: int) -> None:
        """Drop the audio before ``position`` (a frame boundary), as far as it is held."""
        position = min(position, self._end - self._end % self.frame_bytes)
        chunks = self._chunks
        while position > self._start:
            head = chunks[0]
            cut = position - self._start
            if cut >= len(head):
                chunks.popleft()
                self._start += len(head)
            else:
                chunks[0] = head[cut:]
                self._start = position


def _after(results: R, words_from: float, window_from: float) -> R:
    """``results`` without the words already final, its window starting at ``window_from``
    at the earliest (see ``StreamView``)."""
    fresh = words_from + TOLERANCE
    if results.start >= window_from and all(
        not a.words or a.words[0].start > fresh for a in results.alternatives
    ):
        return results  # the common case once the replay is past: words come in order
    start = max(results.start, window_from)
    end = max(results.end, start)
    alternatives = tuple(_words_after(a, words_from) for a in results.alternatives)
    return attrs.evolve(results, start=start, duration=end - start, alternatives=alternatives)


def _words_after(alternative: Alternative, time: float) -> Alternative:
    """Without the words already final at ``time`` (the last final word's end)."""
    fresh = time + TOLERANCE
    words = tuple(w for w in alternative.words if w.end > fresh and w.start + w.end >= 2 * time)
    if len(words) == len(alternative.words):
        return alternative
    transcript = " ".join(w.punctuated_word or w.word for w in words)
    return attrs.evolve(alternative, words=words, transcript=transcript)


def reconnect_delays(
    *,
    initial: float = 0.5,
    factor: float = 2.0,
    maximum: float = 10.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Seconds to wait before each reconnect: exponential, capped, jittered; never sleeps.

    The n-th delay is ``min(maximum, initial * factor**n)`` times a random factor in
    ``[1 - jitter, 1]``, so clients dropped together (a server restart) do not all come
    back together. Endless: give up with ``itertools.islice`` or your own rule, and start
    a fresh generator once a connection has lasted.
    """
    _seconds("reconnect_delays: initial", initial)
    _seconds("reconnect_delays: factor", factor, low=1.0)
    _seconds("reconnect_delays: maximum", maximum)
    _seconds("reconnect_delays: jitter", jitter, high=1.0)
    return _delays(min(initial, maximum), factor, maximum, jitter, rng or random.Random())


def _delays(
    delay: float, factor: float, maximum: float, jitter: float, rng: random.Random
) -> Iterator[float]:
    while True:
        yield delay * (1.0 - jitter * rng.random())
        delay = min(maximum, delay * factor)


def should_reconnect(reason: Closed | HandshakeRejected | BaseException) -> bool:
    """Whether opening a new connection and resuming can help after this ending.

    Takes a ``Closed`` or ``HandshakeRejected`` event, or what an adapter raised:
    ``ConnectionClosedError`` and ``HandshakeError`` carry the core's verdict (drops,
    1011/1012/1013, 429/408/5xx: yes; 1000, DATA-0000, 400/401/403: no). Unlike
    ``Closed.retryable``, a connection lost after CloseStream but before the Metadata
    counts too: Deepgram had not flushed yet, and a resume delivers the tail.
    ``TimeoutError`` and network ``OSError`` s (refused, reset, DNS) are worth another
    try; a TLS certificate failure (an ``OSError`` that is also a ``ValueError``) is not.
    """
    if isinstance(reason, ConnectionClosedError):
        reason = reason.closed
    if isinstance(reason, Closed):
        return reason.retryable or (reason.initiator == "transport" and reason.metadata is None)
    if isinstance(reason, (HandshakeRejected, HandshakeError)):
        return reason.retryable
    return isinstance(reason, OSError) and not isinstance(reason, ValueError)


def _shift_word(word: Word, offset: float) -> Word:
    # attrs.evolve works on a Word at run time, but mypy's attrs plugin cannot see it
    return Word(
        word=word.word,
        start=word.start + offset,
        end=word.end + offset,
        confidence=word.confidence,
        punctuated_word=word.punctuated_word,
        speaker=word.speaker,
        language=word.language,
        raw=word.raw,
    )
