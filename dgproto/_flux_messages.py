"""Flux (``/v2/listen``) JSON text <-> events: its message registry and control messages.

Decoding follows ``_messages``' policy (never raises; required fields missing or unusable
make a ``MalformedMessage`` naming the field; odd optional fields fall back to defaults
and stay in ``raw``; an unknown ``type`` is an ``UnknownMessage``). The shapes are
deepgram-sdk (Python) 7.17.0's ``deepgram/listen/v2/types/listen_v2*.py``, checked against
the real frames in ``tests/fixtures/deepgram/flux_v2_listen_*.json``:

- ``Connected{request_id, sequence_id}`` -> ``FluxConnected``;
- ``TurnInfo{event, turn_index, audio_window_start, audio_window_end, transcript, words,
  end_of_turn_confidence, sequence_id, request_id, trigger?, languages?,
  languages_hinted?}`` -> ``TurnInfo`` (required: the first five; each word's ``word`` and
  ``confidence``);
- ``ConfigureSuccess{thresholds, keyterms, language_hints?, numerals?, sequence_id}``
  (real frames add ``profanity_filter``) and ``ConfigureFailure{code?, description?}``;
- ``Error{code, description}`` -> ``ServerError`` (fatal: the server closes next);
- ``Warning{code, description}`` -> ``ServerWarning`` (never fatal).

Client messages: ``Configure{thresholds?, keyterms?, language_hints?, numerals?}``,
``ForceEndTurn`` (7.17 ``ListenV2ForceEndTurn``) and ``CloseStream``. Flux has no
``KeepAlive`` and no ``Finalize``: sending either ends the session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._events import (
    ConfigureSuccess,
    Event,
    FluxConnected,
    ServerWarning,
    TurnInfo,
    TurnWord,
)
from ._flux_options import FluxOptions
from ._messages import (
    Registry,
    _array,
    _Invalid,
    _number,
    _object,
    _opt_int,
    _opt_mapping,
    _opt_number,
    _opt_str,
    _present,
    _str_tuple,
    _string,
    decode_configure_failure,
    decode_error,
    decode_with,
)
from ._options import _KIND

__all__ = [
    "FLUX_REGISTRY",
    "THRESHOLD_NAMES",
    "decode_flux_message",
    "encode_flux_configure",
    "encode_force_end_turn",
]

_FORCE_END_TURN = '{"type":"ForceEndTurn"}'

#: The keys of Configure's ``thresholds``, checked with ``FluxOptions``' own ranges.
THRESHOLD_NAMES = ("eot_threshold", "eager_eot_threshold", "eot_timeout_ms")


def encode_force_end_turn() -> str:
    """``{"type":"ForceEndTurn"}``: end the current turn now (an ``EndOfTurn`` follows)."""
    return _FORCE_END_TURN


def _strings(name: str, value: object) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(
            f"{name} must be a sequence of str (e.g. a list), got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{index}] must be a str, got {type(item).__name__}")
    return list(value)


def check_thresholds(thresholds: object, *, name: str = "thresholds") -> dict[str, Any]:
    """Check a ``thresholds`` mapping with the ranges ``FluxOptions`` uses (``ValueError``)."""
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(thresholds).__name__}")
    fields = attrs.fields_dict(FluxOptions)
    checked: dict[str, Any] = {}
    for key, value in thresholds.items():
        if key not in THRESHOLD_NAMES:
            raise ValueError(f"{name} keys must be among {', '.join(THRESHOLD_NAMES)}, got {key!r}")
        fields[key].metadata[_KIND].check(f"{name}[{key!r}]", value)
        checked[key] = value
    return checked


def encode_flux_configure(
    thresholds: Mapping[str, float] | None = None,
    keyterms: Sequence[str] | None = None,
    language_hints: Sequence[str] | None = None,
    numerals: bool | None = None,
) -> str:
    """``{"type":"Configure",...}`` with the parts given; at least one is needed.

    A threshold not given keeps its current value; ``keyterms`` and ``language_hints``
    replace the whole list.
    """
    message: dict[str, Any] = {"type": "Configure"}
    if thresholds is not None:
        message["thresholds"] = check_thresholds(thresholds)
    if keyterms is not None:
        message["keyterms"] = _strings("keyterms", keyterms)
    if language_hints is not None:
        message["language_hints"] = _strings("language_hints", language_hints)
    if numerals is not None:
        if not isinstance(numerals, bool):
            raise ValueError(f"numerals must be a bool, got {type(numerals).__name__}")
        message["numerals"] = numerals
    if len(message) == 1:
        raise ValueError("Configure needs thresholds, keyterms, language_hints or numerals")
    return json.dumps(message, separators=(",", ":"))


# --------------------------------------------------------------------------- decoding


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_str_tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _str_tuple(value)


def _word(value: Any, path: str) -> TurnWord:
    w = _object(value, path)
    return TurnWord(
        word=_string(_present(w, "word", f"{path}.word"), f"{path}.word"),
        confidence=_number(_present(w, "confidence", f"{path}.confidence"), f"{path}.confidence"),
        start=_opt_number(w.get("start")),
        end=_opt_number(w.get("end")),
        raw=w,
    )


def _turn_index(value: Any) -> int:
    number = _opt_int(value)
    if number is None:
        raise _Invalid(f"TurnInfo.turn_index: expected an integer, got {type(value).__name__}")
    return number


def _decode_turn_info(d: Mapping[str, Any]) -> TurnInfo:
    words_in = d.get("words")
    words_in = () if words_in is None else _array(words_in, "TurnInfo.words")
    return TurnInfo(
        event=_string(_present(d, "event", "TurnInfo.event"), "TurnInfo.event"),
        turn_index=_turn_index(_present(d, "turn_index", "TurnInfo.turn_index")),
        audio_window_start=_number(
            _present(d, "audio_window_start", "TurnInfo.audio_window_start"),
            "TurnInfo.audio_window_start",
        ),
        audio_window_end=_number(
            _present(d, "audio_window_end", "TurnInfo.audio_window_end"),
            "TurnInfo.audio_window_end",
        ),
        transcript=_string(_present(d, "transcript", "TurnInfo.transcript"), "TurnInfo.transcript"),
        words=tuple(_word(w, f"TurnInfo.words[{i}]") for i, w in enumerate(words_in)),
        end_of_turn_confidence=_opt_number(d.get("end_of_turn_confidence")),
        sequence_id=_opt_int(d.get("sequence_id")),
        request_id=_opt_str(d.get("request_id")),
        trigger=_opt_str(d.get("trigger")),
        languages=_str_tuple(d.get("languages")),
        languages_hinted=_str_tuple(d.get("languages_hinted")),
        raw=d,
    )


def _decode_connected(d: Mapping[str, Any]) -> FluxConnected:
    return FluxConnected(
        request_id=_opt_str(d.get("request_id")), sequence_id=_opt_int(d.get("sequence_id")), raw=d
    )


def _decode_configure_success(d: Mapping[str, Any]) -> ConfigureSuccess:
    thresholds = {
        key: value
        for key, value in _opt_mapping(d.get("thresholds")).items()
        if _opt_number(value) is not None
    }
    return ConfigureSuccess(
        request_id=_opt_str(d.get("request_id")),
        thresholds=thresholds,
        keyterms=_opt_str_tuple(d.get("keyterms")),
        language_hints=_opt_str_tuple(d.get("language_hints")),
        numerals=_opt_bool(d.get("numerals")),
        profanity_filter=_opt_bool(d.get("profanity_filter")),
        sequence_id=_opt_int(d.get("sequence_id")),
        raw=d,
    )


def _decode_warning(d: Mapping[str, Any]) -> ServerWarning:
    return ServerWarning(
        code=_opt_str(d.get("code")),
        description=_opt_str(d.get("description")),
        request_id=_opt_str(d.get("request_id")),
        sequence_id=_opt_int(d.get("sequence_id")),
        raw=d,
    )


#: ``type`` -> decoder for every message Flux sends.
FLUX_REGISTRY: Registry = {
    "Connected": _decode_connected,
    "TurnInfo": _decode_turn_info,
    "ConfigureSuccess": _decode_configure_success,
    "ConfigureFailure": decode_configure_failure,
    "Error": decode_error,
    "Warning": _decode_warning,
}


def decode_flux_message(text: str, loads: Callable[[str], Any] = json.loads) -> Event:
    """Turn one complete Flux text message into an event. Never raises."""
    return decode_with(text, loads, FLUX_REGISTRY)
