"""The audio clock: how many seconds of audio a number of bytes is, per encoding.

Deepgram's timestamps count audio received, not wall time, so dgproto measures what it
sent in the same unit. That is what lets a Finalize complete as soon as final results
cover everything sent, and what a reconnect needs to keep timestamps continuous.
"""

from __future__ import annotations

__all__ = ["BYTES_PER_SAMPLE", "bytes_per_second"]

#: Fixed-size sample encodings. Compressed or containerized audio has no fixed byte rate.
BYTES_PER_SAMPLE: dict[str, int] = {
    "linear16": 2,
    "linear32": 4,
    "mulaw": 1,
    "alaw": 1,
}


def bytes_per_second(encoding: str | None, sample_rate: int | None, channels: int) -> int | None:
    """Bytes of audio per second, or ``None`` when the encoding has no fixed byte rate."""
    if encoding is None or sample_rate is None:
        return None
    width = BYTES_PER_SAMPLE.get(encoding)
    if width is None:
        return None
    return width * sample_rate * max(channels, 1)
