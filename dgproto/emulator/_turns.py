"""Flux turn-taking on the audio clock: recognized words in, ``TurnInfo`` reports out.

Shaped like the real session in ``flux_v2_listen_session_frames_dotnet_fixture.json``:
reports come on a grid of ``tick`` seconds of audio (80 ms); an ``Update`` every third
tick (240 ms from the turn's window start), every tick once the turn may be ending (its
last word closes a sentence); ``Update``s go on through silence with the *next* turn's
index, and a turn's window starts where the previous ``EndOfTurn`` ended.

A sentence is a turn. ``StartOfTurn`` once its first word is heard; ``Update`` with the
cumulative transcript; ``EagerEndOfTurn`` (with ``eager_eot_threshold``) and
``EndOfTurn`` when the end-of-turn confidence reaches their thresholds. The confidence is
low while a sentence is open and, once its last word is heard, grows with the silence
after it (``eot_ramp`` seconds to reach 1.0, never reached: 1.0 turns the model's end of
turn off, as on Flux). Words after an ``EagerEndOfTurn`` give ``TurnResumed``.
``eot_timeout_ms`` of silence after the last word ends the turn whatever the confidence
(``trigger="timeout"``); ``force_end`` ends it now (``trigger="manual"``).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import attrs

from ._recognizer import RecognizedWord, Recognizer

__all__ = ["Turn", "TurnReport", "TurnSettings", "TurnTracker"]

_SENTENCE_END = (".", "!", "?")
#: The confidence reported while a sentence is still open (real frames: 0.002-0.06).
_OPEN_CONFIDENCE = 0.0123
_CEILING = 0.9999


@attrs.define(kw_only=True)
class TurnSettings:
    """The thresholds in force (``Configure`` changes them mid-stream)."""

    eot_threshold: float = 0.7
    eager_eot_threshold: float | None = None
    #: ``eot_timeout_ms`` in seconds.
    eot_timeout: float = 5.0
    #: Seconds of audio between reports.
    tick: float = 0.08
    #: Ticks between ``Update``s while no turn end is near.
    update_every: int = 3
    #: Seconds of silence after a sentence for the confidence to reach 1.0.
    eot_ramp: float = 0.4


@attrs.frozen(kw_only=True)
class TurnReport:
    """One ``TurnInfo`` to send."""

    event: str
    turn_index: int
    start: float
    end: float
    words: tuple[RecognizedWord, ...]
    confidence: float
    trigger: str | None = None


@attrs.define
class Turn:
    index: int
    start: float
    words: list[RecognizedWord] = attrs.field(factory=list)
    started: bool = False
    eager: bool = False


class TurnTracker:
    """One Flux stream's turns (mono): feed samples, get ``TurnReport``s."""

    def __init__(self, *, recognizer: Recognizer, sample_rate: int, settings: TurnSettings) -> None:
        self.recognizer = recognizer
        self.sample_rate = sample_rate
        self.settings = settings
        self.turn = Turn(index=0, start=0.0)
        self._tick_samples = max(1, round(settings.tick * sample_rate))
        self._samples_done = 0
        self._buffer = array("h")

    @property
    def position(self) -> float:
        """Seconds of audio processed: the audio clock reports are stamped with."""
        return round(self._samples_done / self.sample_rate, 6)

    def feed(self, samples: array[int]) -> list[TurnReport]:
        data = self._buffer + samples if self._buffer else samples
        size = self._tick_samples
        usable = len(data) - len(data) % size
        out: list[TurnReport] = []
        for index in range(0, usable, size):
            words = self.recognizer.feed(data[index : index + size])
            self._samples_done += size
            out.extend(self._step(words))
        self._buffer = data[usable:]
        return out

    def force_end(self) -> list[TurnReport]:
        """``ForceEndTurn``: end the current turn at the audio received so far."""
        return self._end(self._flush_words(), trigger="manual")

    def close(self) -> list[TurnReport]:
        """``CloseStream``: the last turn's events, if it has words."""
        reports = self._flush_words()
        if self.turn.words:
            reports.extend(self._end([], trigger="model"))
        return reports

    # ------------------------------------------------------------------ internals

    def _flush_words(self) -> list[TurnReport]:
        """Every word heard so far, the partial tick included (it shifts the tick grid)."""
        words = list(self.recognizer.feed(self._buffer)) if self._buffer else []
        self._samples_done += len(self._buffer)
        self._buffer = array("h")
        words.extend(self.recognizer.flush())
        return self._hear(words, self.position)

    def _hear(self, words: Sequence[RecognizedWord], now: float) -> list[TurnReport]:
        turn = self.turn
        if not words:
            return []
        out: list[TurnReport] = []
        turn.words.extend(words)
        if turn.eager:
            turn.eager = False
            out.append(self._report("TurnResumed", now))
        if not turn.started:
            turn.started = True
            out.append(self._report("StartOfTurn", now))
        return out

    def _confidence(self, now: float) -> float:
        words = self.turn.words
        if not words or not words[-1].punctuated_word.endswith(_SENTENCE_END):
            return _OPEN_CONFIDENCE
        silence = max(0.0, now - words[-1].end)
        return round(min(_CEILING, silence / self.settings.eot_ramp), 4)

    def _step(self, words: Sequence[RecognizedWord]) -> list[TurnReport]:
        now = self.position
        settings = self.settings
        out = self._hear(words, now)
        if out:
            return out
        turn = self.turn
        confidence = self._confidence(now)
        if turn.words:
            silence = now - turn.words[-1].end
            if confidence >= settings.eot_threshold:
                return self._end([], trigger="model")
            if silence >= settings.eot_timeout:
                return self._end([], trigger="timeout")
            eager = settings.eager_eot_threshold
            if eager is not None and not turn.eager and confidence >= eager:
                turn.eager = True
                return [self._report("EagerEndOfTurn", now)]
        near_end = confidence > _OPEN_CONFIDENCE
        elapsed = round((now - turn.start) / settings.tick)
        if near_end or elapsed % settings.update_every == 0:
            return [self._report("Update", now)]
        return []

    def _end(self, before: list[TurnReport], *, trigger: str) -> list[TurnReport]:
        now = self.position
        turn = self.turn
        before.append(self._report("EndOfTurn", now, trigger=trigger))
        self.turn = Turn(index=turn.index + 1, start=now)
        return before

    def _report(self, event: str, now: float, *, trigger: str | None = None) -> TurnReport:
        turn = self.turn
        confidence = self._confidence(now)
        if event == "EndOfTurn" and trigger == "model":
            confidence = max(confidence, self.settings.eot_threshold)
        return TurnReport(
            event=event,
            turn_index=turn.index,
            start=turn.start,
            end=now,
            words=tuple(turn.words),
            confidence=min(confidence, _CEILING),
            trigger=trigger,
        )
