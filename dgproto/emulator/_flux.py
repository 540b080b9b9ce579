"""The emulator's Flux (``/v2/listen``) endpoint: what it says, not how it is carried.

``EmulatorConnection`` carries every session (handshake, frames, faults, timers, the
outbox); for a Flux session it hands audio and client messages to a ``FluxEndpoint``,
which answers with message dicts shaped (and key-ordered) like the real frames in
``flux_v2_listen_session_frames_dotnet_fixture.json``, or with a fatal error. The
connection adds ``sequence_id`` to every message as it queues it.

Client messages, as Flux treats them (research/protocol.md §5.1; deepgram-sdk 7.17):
``Configure`` -> ``ConfigureSuccess`` echoing the settings now in force, or
``ConfigureFailure`` (nothing applied); ``ForceEndTurn`` -> ``EndOfTurn`` now;
``CloseStream`` -> the last turn's events, then close 1000; ``KeepAlive``, ``Finalize``,
anything else or not JSON -> ``Error`` ``UNPARSABLE_CLIENT_MESSAGE``, then close
(the close code, 1008, is inferred: no capture shows it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from dgproto._flux_messages import THRESHOLD_NAMES, check_thresholds
from dgproto._flux_options import FluxOptions

from . import _wire as wire
from ._control import numeral
from ._recognizer import RecognizedWord, Recognizer
from ._turns import TurnReport, TurnSettings, TurnTracker

__all__ = ["FATAL_CLOSE_CODE", "FluxEndpoint", "Fatal"]

#: The close code after a fatal Flux ``Error`` (inferred).
FATAL_CLOSE_CODE = 1008
_UNPARSABLE = "UNPARSABLE_CLIENT_MESSAGE"


@attrs.frozen
class Fatal:
    """End the session: send ``Error{code, description}``, then close."""

    code: str
    description: str


def _turn_info(
    report: TurnReport, request_id: str, numerals: bool, hints: Sequence[str] | None
) -> dict[str, Any]:
    words = [numeral(w) for w in report.words] if numerals else list(report.words)
    message: dict[str, Any] = {
        "type": "TurnInfo",
        "request_id": request_id,
        "event": report.event,
        "turn_index": report.turn_index,
        "audio_window_start": wire.seconds(report.start),
        "audio_window_end": wire.seconds(report.end),
        "transcript": " ".join(w.punctuated_word for w in words),
        "words": [_word(w) for w in words],
        "end_of_turn_confidence": report.confidence,
    }
    if report.trigger is not None:
        message["trigger"] = report.trigger
    if hints is not None:  # deepgram-sdk 7.17: present only when hints are configured
        message["languages_hinted"] = list(hints)
    return message


def _word(word: RecognizedWord) -> dict[str, Any]:
    return {
        "word": word.punctuated_word,
        "confidence": word.confidence,
        "start": wire.seconds(word.start),
        "end": wire.seconds(word.end),
    }


class FluxEndpoint:
    """One Flux session's turn state and settings (see the module docstring)."""

    def __init__(
        self, *, options: FluxOptions, recognizer: Recognizer, sample_rate: int, request_id: str
    ) -> None:
        self.request_id = request_id
        timeout = options.eot_timeout_ms
        self.settings = TurnSettings(
            eot_threshold=0.7 if options.eot_threshold is None else options.eot_threshold,
            eager_eot_threshold=options.eager_eot_threshold,
            eot_timeout=5.0 if timeout is None else timeout / 1000,
        )
        self.tracker = TurnTracker(
            recognizer=recognizer, sample_rate=sample_rate, settings=self.settings
        )
        self.keyterms: tuple[str, ...] = options.keyterm or ()
        self.language_hints: tuple[str, ...] | None = options.language_hint
        self.numerals = bool(options.numerals)
        self.profanity_filter = bool(options.profanity_filter)

    def connected(self) -> dict[str, Any]:
        return {"type": "Connected", "request_id": self.request_id}

    def audio(self, samples: Any) -> list[dict[str, Any]]:
        return self._infos(self.tracker.feed(samples))

    def close_stream(self) -> list[dict[str, Any]]:
        return self._infos(self.tracker.close())

    def control(self, kind: str | None, message: Any) -> list[dict[str, Any]] | Fatal:
        """Answer one decoded client text message (``kind`` is its ``type``)."""
        if kind == "ForceEndTurn":
            return self._infos(self.tracker.force_end())
        if kind == "Configure":
            return [self._configure(message)]
        if kind in ("KeepAlive", "Finalize"):
            detail = f"{kind} is not a Flux message"
        elif kind is None:
            detail = "Client message must be a JSON object with a string 'type' field"
        else:
            detail = f"Unknown message type {kind!r}"
        return Fatal(_UNPARSABLE, f"{detail}; expected Configure, ForceEndTurn or CloseStream.")

    def not_json(self) -> Fatal:
        return Fatal(_UNPARSABLE, "Client message is not valid JSON.")

    def _infos(self, reports: Sequence[TurnReport]) -> list[dict[str, Any]]:
        return [_turn_info(r, self.request_id, self.numerals, self.language_hints) for r in reports]

    def _configure(self, message: Mapping[str, Any]) -> dict[str, Any]:
        problem = _check(message)
        if problem is not None:
            return {
                "type": "ConfigureFailure",
                "request_id": self.request_id,
                "code": "INVALID_CONFIGURE",
                "description": problem,
            }
        settings = self.settings
        thresholds = message.get("thresholds") or {}
        if "eot_threshold" in thresholds:
            settings.eot_threshold = float(thresholds["eot_threshold"])
        if "eager_eot_threshold" in thresholds:
            settings.eager_eot_threshold = float(thresholds["eager_eot_threshold"])
        if "eot_timeout_ms" in thresholds:
            settings.eot_timeout = thresholds["eot_timeout_ms"] / 1000
        if "keyterms" in message:
            self.keyterms = tuple(message["keyterms"])
        if "language_hints" in message:
            self.language_hints = tuple(message["language_hints"])
        if "numerals" in message:
            self.numerals = message["numerals"]
        return self._configure_success()

    def _configure_success(self) -> dict[str, Any]:
        settings = self.settings
        in_force: dict[str, Any] = {"eot_threshold": settings.eot_threshold}
        if settings.eager_eot_threshold is not None:
            in_force["eager_eot_threshold"] = settings.eager_eot_threshold
        in_force["eot_timeout_ms"] = round(settings.eot_timeout * 1000)
        message: dict[str, Any] = {
            "type": "ConfigureSuccess",
            "request_id": self.request_id,
            "thresholds": in_force,
            "keyterms": list(self.keyterms),
        }
        if self.language_hints is not None:
            message["language_hints"] = list(self.language_hints)
        message["numerals"] = self.numerals
        message["profanity_filter"] = self.profanity_filter
        return message


def _check(message: Mapping[str, Any]) -> str | None:
    """Why a Flux ``Configure`` cannot be applied, or ``None``."""
    known = {"type", "thresholds", "keyterms", "language_hints", "numerals"}
    unknown = sorted(set(message) - known)
    if unknown:
        return f"Configure accepts {', '.join(sorted(known - {'type'}))}; unknown: {unknown}."
    try:
        if "thresholds" in message:
            check_thresholds(message["thresholds"])
    except ValueError as exc:
        return f"{exc} (thresholds: {', '.join(THRESHOLD_NAMES)})."
    for name in ("keyterms", "language_hints"):
        value = message.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return f"{name} must be a list of strings."
    if not isinstance(message.get("numerals", False), bool):
        return "numerals must be true or false."
    return None
