"""``ReconnectPolicy``: when and how a stream heals itself after a dropped socket.

Pure data plus the delay schedule; the adapters' ``connect(..., reconnect=...)`` acts on
it (``dgproto.transports._reconnect``), and ``should_reconnect`` decides which endings
are worth another socket.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import attrs

from ._resume import reconnect_delays

__all__ = ["ReconnectPolicy", "reconnect_policy"]


def _count(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"ReconnectPolicy.{attribute.name} must be an int >= 0, got {value!r}")


def _number(low: float, high: float) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            raise ValueError(
                f"ReconnectPolicy.{attribute.name} must be a number in [{low}, {high}],"
                f" got {value!r}"
            )

    return check


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """How a stream opened with ``connect(..., reconnect=policy)`` survives outages.

    After a retryable end (a dropped socket, a ping timeout, 1011 NET-0000/NET-0001,
    1001, 1012-1014) a new socket is opened, the audio not yet covered by final results
    is replayed on it, and its events are moved onto the stream's audio clock. While
    reconnecting, connection errors and handshake 429/5xx are retried; 4xx (a bad key,
    bad options) and DATA-0000 end the stream at once. ``True`` means ``ReconnectPolicy()``.
    """

    max_attempts: int = attrs.field(default=5, validator=_count)
    """Sockets tried per outage before giving up (the stream then ends with the last
    ``Closed``). The count starts again once a socket opened. Also bounds the retries of
    the first ``connect``."""

    initial_delay: float = attrs.field(default=0.5, validator=_number(0.0, 3600.0))
    """Seconds before the first attempt of an outage."""

    max_delay: float = attrs.field(default=10.0, validator=_number(0.0, 3600.0))
    """Cap of the exponential backoff, in seconds."""

    factor: float = attrs.field(default=2.0, validator=_number(1.0, 100.0))
    """Each attempt waits ``factor`` times longer than the previous one (up to the cap)."""

    jitter: float = attrs.field(default=0.5, validator=_number(0.0, 1.0))
    """Each delay is shortened by a random fraction up to this, so clients dropped
    together (a server restart) do not all come back together."""

    replay_seconds: float = attrs.field(default=30.0, validator=_number(0.0, 86400.0))
    """Audio kept for replay: what was sent and is not yet finalized, plus what the app
    sends during an outage. Beyond it the oldest audio is dropped from the replay (it
    stays in the timeline) and ``Reconnected.dropped_seconds`` says how much."""

    retry_first_connect: bool = True
    """Also retry the first ``connect`` on connection errors and handshake 429/5xx."""

    seed: int | None = None
    """Seed of the jitter's random numbers, for reproducible tests; ``None``: random."""

    def delays(self) -> Iterator[float]:
        """A fresh backoff schedule for one outage (``reconnect_delays``)."""
        return reconnect_delays(
            initial=self.initial_delay,
            factor=self.factor,
            maximum=self.max_delay,
            jitter=self.jitter,
            rng=random.Random(self.seed),
        )


def reconnect_policy(value: ReconnectPolicy | bool) -> ReconnectPolicy | None:
    """``connect``'s ``reconnect=`` argument as a policy, or ``None`` for off."""
    if isinstance(value, ReconnectPolicy):
        return value
    if isinstance(value, bool):
        return ReconnectPolicy() if value else None
    raise ValueError(f"reconnect must be a ReconnectPolicy or a bool, got {type(value).__name__}")
