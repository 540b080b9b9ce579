"""Resuming a Flux (``/v2/listen``) stream on a new connection, on one clock and one turn count.

Flux, like ``/v1/listen``, keeps nothing across sockets: a new connection's
``audio_window_start``/``audio_window_end`` and word times restart at 0, its
``turn_index`` restarts at 0, and a turn the old server had not ended is lost with it.
``FluxReplayBuffer`` is ``ReplayBuffer``'s ring with Flux's rule for what is done: an
``EndOfTurn`` settles its turn, so a resume replays from the last ``EndOfTurn`` on.
Every ``TurnInfo`` is rebased onto the stream's clock and its ``turn_index`` onto the
stream's count, so the app sees one continuous stream in which each ``EndOfTurn``
arrives exactly once (a turn cut by a drop starts again, with the same index, and ends
once).

A turn usually ends in a pause, but not always at its end: when the speaker goes on
just before Flux decides, the ``EndOfTurn``'s ``audio_window_end`` falls inside the next
turn's first word (the emulator does it with a 0.3 s pause). So the replay starts where
``ReplayBuffer``'s does, at the ended turn's last word end (at most ``margin`` before
``audio_window_end``; at it when the words carry no times), and the next turn's window
still starts at the ``audio_window_end``, as over one socket. No word of the ended turn
is heard again: the replay starts after its last word. Flux reports on an 80 ms grid
from a socket's start, so later turn ends can come up to one such frame earlier or later
than over one socket (the replay no longer starts on the old socket's grid).
"""

from __future__ import annotations

import math

import attrs

from ._audio import BYTES_PER_SAMPLE, bytes_per_second
from ._events import TurnInfo
from ._flux_options import FluxOptions
from ._resume import E, ReplayBuffer

__all__ = ["FluxReplayBuffer", "rebase_turn"]


def _later(time: float | None, offset: float) -> float | None:
    return None if time is None else time + offset


def rebase_turn(event: TurnInfo, offset: float, turns: int) -> TurnInfo:
    """A copy of ``event`` ``offset`` seconds later and ``turns`` turns on.

    Moves ``audio_window_start``/``audio_window_end``, each word's ``start``/``end`` and
    ``turn_index``; ``raw`` stays the server's JSON, on the server's clock and count.
    """
    if not offset and not turns:
        return event
    words = tuple(
        attrs.evolve(w, start=_later(w.start, offset), end=_later(w.end, offset))
        for w in event.words
    )
    return attrs.evolve(
        event,
        turn_index=event.turn_index + turns,
        audio_window_start=event.audio_window_start + offset,
        audio_window_end=event.audio_window_end + offset,
        words=words,
    )


class FluxReplayBuffer(ReplayBuffer):
    """The Flux audio not yet covered by an ``EndOfTurn``, and the current session's offset.

    Use it like ``ReplayBuffer``: ``record`` what you send, pass every event through
    ``observe``, and send ``resume()`` first on each new connection. Not thread-safe.
    """

    def __init__(
        self, *, bytes_per_second: int, frame_bytes: int = 1, max_seconds: float = 30.0
    ) -> None:
        super().__init__(
            bytes_per_second=bytes_per_second, frame_bytes=frame_bytes, max_seconds=max_seconds
        )
        self._turns = 0  # turns ended before the current session: its turn_index base
        self._next_turn = 0  # the stream's turn_index after the last EndOfTurn
        self._window_from = -math.inf  # the current session's turns start no earlier

    @classmethod
    def for_flux(cls, options: FluxOptions, max_seconds: float = 30.0) -> FluxReplayBuffer:
        """A buffer for the stream ``options`` describe: raw audio with a fixed byte rate."""
        rate = bytes_per_second(options.encoding, options.sample_rate, 1)
        if rate is None or options.encoding is None:
            raise ValueError(
                f"FluxReplayBuffer needs raw audio with a fixed byte rate (encoding one of "
                f"{', '.join(BYTES_PER_SAMPLE)}, and a sample_rate); got "
                f"encoding={options.encoding!r}, sample_rate={options.sample_rate!r}. "
                "Containerized audio cannot be resumed mid-stream."
            )
        frame = BYTES_PER_SAMPLE[options.encoding]
        return cls(bytes_per_second=rate, frame_bytes=frame, max_seconds=max_seconds)

    @property
    def turns(self) -> int:
        """The stream's ``turn_index`` of the next turn to begin after the last ``EndOfTurn``."""
        return self._next_turn

    @property
    def view(self) -> None:
        """Always ``None``: a Flux core applies no view; ``settle`` rebases each event."""
        return None

    def settle(self, event: E) -> E:
        """``observe``: Flux events reach it as the socket sent them (``view`` is ``None``)."""
        return self.observe(event)

    def observe(self, event: E) -> E:
        """Return ``event`` on the stream's clock and turn count; ``EndOfTurn`` settles audio."""
        if not isinstance(event, TurnInfo):
            return event
        turn = rebase_turn(event, self.offset, self._turns)
        start = self._window_from
        if turn.audio_window_start < start:  # replayed audio the last EndOfTurn had settled
            end = max(turn.audio_window_end, start)
            turn = attrs.evolve(turn, audio_window_start=start, audio_window_end=end)
        if turn.event == "EndOfTurn":
            window_end = turn.audio_window_end
            self._final_end[0] = max(self._final_end.get(0, 0.0), window_end)
            ends = [w.end for w in turn.words if w.end is not None]
            # without word times, the replay starts at the window's end (as it always did)
            last = min(max(ends), window_end) if ends else window_end
            self._word_end[0] = max(self._word_end.get(0, -math.inf), last)
            self._next_turn = max(self._next_turn, turn.turn_index + 1)
            self._forget(self._position(self.replay_from))
        return turn  # type: ignore[return-value]  # E is TurnInfo here

    def resume(self) -> list[bytes]:
        """The chunks to send first on a new connection: everything after the last
        ``EndOfTurn``; that connection's turns count on from the stream's."""
        chunks = super().resume()
        self._turns = self._next_turn
        self._window_from = self._final_end.get(0, -math.inf)
        return chunks
