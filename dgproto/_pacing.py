"""Pacing: when to send each chunk of a recorded source so it streams at real time.

Deepgram transcribes a live stream as it arrives and throttles one sent faster than
1.25x real time; a file sent at full speed also makes every lag and endpointing figure
meaningless. ``Pacer`` is the schedule, with no clock and no sleeping (the adapters'
``send_paced`` sleep until ``due()``): chunk *i* is due when the audio before it has
played at ``speed``, counted from the first chunk. A chunk sent late (a slow disk, a
busy loop) does not push the rest back: the following ones catch up, but never faster
than ``max_speed`` (Deepgram's 1.25x), so a hiccup never turns into a burst.
"""

from __future__ import annotations

import math

from ._audio import BYTES_PER_SAMPLE, bytes_per_second
from ._options import LiveOptions

__all__ = [
    "DEEPGRAM_MAX_SPEED",
    "DEFAULT_CHUNK_SECONDS",
    "Pacer",
    "chunk_size",
]

#: Deepgram throttles streams sent faster than this multiple of real time.
DEEPGRAM_MAX_SPEED = 1.25
#: 20 ms: a telephony frame, within the 20-100 ms Deepgram's docs suggest per message.
DEFAULT_CHUNK_SECONDS = 0.02


def _rate(options: LiveOptions) -> int:
    rate = bytes_per_second(options.encoding, options.sample_rate, options.channels or 1)
    if rate is None:
        raise ValueError(
            "pacing needs raw audio with a fixed byte rate (LiveOptions.encoding one of "
            f"{', '.join(BYTES_PER_SAMPLE)}, and sample_rate); for WAV or compressed audio "
            "pass bytes_per_second= yourself"
        )
    return rate


def chunk_size(
    options: LiveOptions,
    seconds: float = DEFAULT_CHUNK_SECONDS,
    *,
    bytes_per_second: int | None = None,
) -> int:
    """Bytes in ``seconds`` of the options' audio, in whole frames (every channel's sample).

    ``bytes_per_second`` overrides the rate derived from ``encoding``/``sample_rate``/
    ``channels`` (for containers, whose rate the options do not say).
    """
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"chunk seconds must be a positive number, got {seconds!r}")
    if bytes_per_second is None:
        rate = _rate(options)
        frame = BYTES_PER_SAMPLE[options.encoding or ""] * (options.channels or 1)
    else:
        rate, frame = bytes_per_second, 1
    return max(1, round(rate * seconds / frame)) * frame


class Pacer:
    """The due time of each next chunk, on the caller's clock.

    Call ``due()`` before sending a chunk (``None``: send now) and ``sent(size, now=)``
    after. ``restart()`` forgets the schedule (after a deliberate pause).
    """

    def __init__(
        self,
        *,
        bytes_per_second: int,
        speed: float = 1.0,
        max_speed: float = DEEPGRAM_MAX_SPEED,
    ) -> None:
        if isinstance(bytes_per_second, bool) or not isinstance(bytes_per_second, int):
            raise ValueError(f"bytes_per_second must be an int, got {bytes_per_second!r}")
        for name, value in (
            ("bytes_per_second", bytes_per_second),
            ("speed", speed),
            ("max_speed", max_speed),
        ):
            if not value > 0 or not math.isfinite(value):
                raise ValueError(f"Pacer: {name} must be a positive number, got {value!r}")
        self.bytes_per_second = bytes_per_second
        self.speed = float(speed)
        #: catching up never goes faster than this (nor slower than ``speed``)
        self.max_speed = max(float(max_speed), self.speed)
        self._anchor: float | None = None  # when the first chunk since (re)start went out
        self._position = 0.0  # audio seconds sent since then
        self._earliest = -math.inf  # the rate limit: previous send + its audio / max_speed

    @classmethod
    def for_options(
        cls, options: LiveOptions, *, speed: float = 1.0, max_speed: float = DEEPGRAM_MAX_SPEED
    ) -> Pacer:
        """A pacer at the byte rate of ``options`` (raw encodings only)."""
        return cls(bytes_per_second=_rate(options), speed=speed, max_speed=max_speed)

    def __repr__(self) -> str:
        return f"<Pacer speed={self.speed} audio_seconds={self._position:.3f}>"

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio sent since the (re)start."""
        return self._position

    def due(self) -> float | None:
        """When the next chunk may go out (``None``: now, nothing is scheduled yet)."""
        if self._anchor is None:
            return None
        return max(self._anchor + self._position / self.speed, self._earliest)

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before sending the next chunk (0: go)."""
        due = self.due()
        return 0.0 if due is None else max(due - now, 0.0)

    def sent(self, size: int, *, now: float) -> None:
        """A chunk of ``size`` bytes went out at ``now``."""
        if self._anchor is None:
            self._anchor = now
        seconds = size / self.bytes_per_second
        self._position += seconds
        self._earliest = now + seconds / self.max_speed

    def restart(self) -> None:
        """Start a new schedule with the next chunk (after a pause that is meant)."""
        self._anchor = None
        self._position = 0.0
        self._earliest = -math.inf
