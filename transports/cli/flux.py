"""``dgproto transcribe --model flux-*``: Flux (``/v2/listen``) in the CLI.

Everything Flux-specific lives here: its flags, building ``FluxOptions`` from them, a
``Session`` that counts each ``EndOfTurn`` as a final (with its lag), and a ``TextView``
that keeps the current turn's transcript on the status line and prints one line per
``EndOfTurn``. The runtimes and the JSON views need nothing new: a Flux stream is driven
like any other, and ``TurnInfo`` is an event like any other.
"""

from __future__ import annotations

import argparse
import bisect
import math
import statistics
from typing import Any

import attrs

from dgproto._events import Event, TurnInfo
from dgproto._flux_options import FluxOptions

from .._common import FLUX_URL
from .session import Session, Summary
from .shared import CliError
from .sources import AudioFormat
from .views import TextView, _clock

__all__ = [
    "FLUX_URL",
    "FluxSession",
    "FluxTextView",
    "add_flux_arguments",
    "check_flux_flags",
    "flux_options_from_args",
    "is_flux_model",
]

#: ``transcribe`` flags that are ``/v1/listen`` options: refused with a Flux model.
_V1_ONLY = (
    ("language", "--language"),
    ("multichannel", "--multichannel"),
    ("interim_results", "--interim-results"),
    ("punctuate", "--punctuate"),
    ("smart_format", "--smart-format"),
    ("diarize", "--diarize"),
    ("endpointing", "--endpointing"),
    ("utterance_end_ms", "--utterance-end-ms"),
    ("vad_events", "--vad-events"),
)

#: The Flux flags: (dest, flag, type, metavar, help).
_FLUX_FLAGS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("eot_threshold", "--eot-threshold", float, "P", "end-of-turn confidence, 0.5-1.0"),
    (
        "eager_eot_threshold",
        "--eager-eot-threshold",
        float,
        "P",
        "confidence for EagerEndOfTurn, 0.3-0.9",
    ),
    ("eot_timeout_ms", "--eot-timeout-ms", int, "MS", "end a turn after MS, 500-60000"),
)


def is_flux_model(model: str | None) -> bool:
    """Flux models are named ``flux-*`` (``flux-general-en``, ``flux-general-multi``)."""
    return model is not None and model.startswith("flux-")


def _typed(kind: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None

    return parse


def add_flux_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the Flux flags (used with a ``flux-*`` ``--model``) to ``transcribe``."""
    group = parser.add_argument_group("Flux options (with --model flux-*, on /v2/listen)")
    for dest, flag, kind, metavar, text in _FLUX_FLAGS:
        group.add_argument(flag, dest=dest, type=_typed(kind), metavar=metavar, help=text)


def flux_options_from_args(
    args: argparse.Namespace, audio: AudioFormat, params: dict[str, list[str]]
) -> FluxOptions:
    """``FluxOptions`` from ``transcribe``'s flags; ``CliError`` (exit 2) when they do not fit."""
    for dest, flag in _V1_ONLY:
        if getattr(args, dest, None) is not None:
            raise CliError(f"{flag} is a /v1/listen option; Flux ({args.model}) has none")
    if audio.channels is not None and audio.channels > 1:
        raise CliError("Flux transcribes one channel: give it mono audio")
    try:
        return FluxOptions(
            model=args.model,
            encoding=audio.encoding,
            sample_rate=audio.sample_rate,
            eot_threshold=args.eot_threshold,
            eager_eot_threshold=args.eager_eot_threshold,
            eot_timeout_ms=args.eot_timeout_ms,
            keyterm=args.keyterm or None,
            params=params,
        )
    except ValueError as exc:
        raise CliError(f"invalid option: {exc}") from None


def check_flux_flags(args: argparse.Namespace) -> None:
    """The Flux flags need a Flux model: ``CliError`` (exit 2) otherwise."""
    for dest, flag, *_ in _FLUX_FLAGS:
        if getattr(args, dest, None) is not None:
            raise CliError(f"{flag} is a Flux option: use it with --model flux-general-en")


class FluxSession(Session):
    """A ``Session`` whose finals are Flux's ``EndOfTurn`` s. Lag of a turn: from sending
    the audio up to its ``audio_window_end`` until the ``EndOfTurn`` arrived (timed here:
    the library's stats time ``/v1/listen`` Results)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns: list[TurnInfo] = []
        self._sent_ends: list[float] = []  # audio seconds sent after each chunk
        self._sent_times: list[float] = []  # ... and when
        self._turn_lags: list[float] = []

    def sent(self, size: int, *, now: float) -> None:
        super().sent(size, now=now)
        with self._lock:
            self._sent_ends.append(self.audio_seconds)
            self._sent_times.append(now)

    def event(self, event: Event, *, now: float) -> None:
        if isinstance(event, TurnInfo) and event.event == "EndOfTurn" and event.transcript:
            with self._lock:
                self.turns.append(event)
                if self._sent_ends and self.bytes_per_second is not None:
                    ends = self._sent_ends
                    index = bisect.bisect_left(ends, event.audio_window_end - 1e-6)
                    sent_at = self._sent_times[min(index, len(ends) - 1)]
                    self._last_lag = max(0.0, now - sent_at)
                    self._turn_lags.append(self._last_lag)
        super().event(event, now=now)

    def summary(self) -> Summary:
        lags = sorted(self._turn_lags)
        return attrs.evolve(
            super().summary(),
            finals=len(self.turns),
            lag_median=statistics.median(lags) if lags else None,
            lag_p95=lags[max(0, math.ceil(0.95 * len(lags)) - 1)] if lags else None,
        )

    def transcript(self) -> str:
        return " ".join(turn.transcript for turn in self.turns)


class FluxTextView(TextView):
    """``TextView`` for turns: the current turn on the status line (``Update`` and the
    rest), one line per ``EndOfTurn``; everything else as ``TextView`` shows it."""

    def event(self, event: Event, at: float) -> None:
        if not isinstance(event, TurnInfo):
            super().event(event, at)
            return
        if event.event == "EndOfTurn":
            self._interim = ""
            if event.transcript:
                start = event.words[0].start if event.words else None
                clock = _clock(event.audio_window_start if start is None else start)
                self._line(f"{clock} {event.transcript}")
            else:
                self._status()
        elif self._live:
            self._interim = event.transcript
            self._status()
        elif self._interims and event.transcript:
            self._line(f"   ~ {event.transcript}")
