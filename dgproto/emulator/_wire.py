"""The JSON the emulator writes, shaped (and key-ordered) like Deepgram's wire format.

Key order follows real captures (research/protocol.md §3): a client that works against
the emulator byte for byte sees what api.deepgram.com sends. Times are rounded to
microseconds so they print like Deepgram's (``12.08``, not ``12.080000000000002``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._recognizer import RecognizedWord

__all__ = [
    "configure_failure",
    "configure_success",
    "dumps",
    "http_error_body",
    "metadata",
    "results",
    "schema_error",
    "closing_error",
    "speech_started",
    "utterance_end",
]

#: Deepgram's ``err_code``/``err_msg`` for each handshake refusal (DOCS errors.mdx).
HTTP_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("Bad Request", "Bad Request"),
    401: ("INVALID_AUTH", "Invalid credentials."),
    402: (
        "ASR_PAYMENT_REQUIRED",
        "Project does not have enough credits for an ASR request and does not have an "
        "overage agreement.",
    ),
    403: ("INSUFFICIENT_PERMISSIONS", "Project does not have access to the requested model."),
    404: ("NOT_FOUND", "Not Found"),
    405: ("METHOD_NOT_ALLOWED", "Method Not Allowed"),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later"),
    500: ("INTERNAL_SERVER_ERROR", "Internal Server Error"),
    502: ("Bad Gateway", "Please try again later"),
    503: ("Service Unavailable", "Please try again later"),
    504: ("Gateway Timeout", "Please try again later"),
}


def dumps(message: Mapping[str, Any]) -> str:
    """Compact JSON like Deepgram's (no spaces), non-ASCII kept as UTF-8."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def seconds(value: float) -> float:
    """A time on the audio clock as written on the wire."""
    return round(value, 6)


def http_error_body(status: int, request_id: str, err_code: str | None, err_msg: str | None) -> str:
    """The JSON body of a refused handshake: ``{"err_code","err_msg","request_id"}``.

    A 503 says ``error_code`` instead of ``err_code``, as Deepgram's docs show it does.
    """
    default_code, default_msg = HTTP_ERRORS.get(status, ("Error", "Error"))
    code_key = "error_code" if status == 503 else "err_code"
    return dumps(
        {
            code_key: default_code if err_code is None else err_code,
            "err_msg": default_msg if err_msg is None else err_msg,
            "request_id": request_id,
        }
    )


def _model_info(model: Mapping[str, str]) -> dict[str, str]:
    return {"name": model["name"], "version": model["version"], "arch": model["arch"]}


def results(
    *,
    channel: int,
    total: int,
    start: float,
    end: float,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    words: Sequence[RecognizedWord],
    punctuate: bool,
    request_id: str,
    model: Mapping[str, str],
    model_uuid: str,
    extra: Mapping[str, str] | None,
) -> dict[str, Any]:
    """A ``Results`` message for the window ``[start, end)`` of one channel.

    The transcript joins ``punctuated_word`` when punctuation is on (``punctuate`` or
    ``smart_format``), else the lower-case ``word``; every word carries both, as in
    captures. The alternative's confidence is the mean of its words' (0.0 when empty).
    """
    start = seconds(start)
    transcript = " ".join(w.punctuated_word if punctuate else w.word for w in words)
    confidence = round(sum(w.confidence for w in words) / len(words), 7) if words else 0.0
    meta: dict[str, Any] = {
        "request_id": request_id,
        "model_info": _model_info(model),
        "model_uuid": model_uuid,
    }
    if extra:
        meta["extra"] = dict(extra)
    return {
        "type": "Results",
        "channel_index": [channel, total],
        "duration": seconds(end - start),
        "start": start,
        "is_final": is_final,
        "speech_final": speech_final,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript,
                    "confidence": confidence,
                    "words": [
                        {
                            "word": w.word,
                            "start": seconds(w.start),
                            "end": seconds(w.end),
                            "confidence": w.confidence,
                            "punctuated_word": w.punctuated_word,
                        }
                        for w in words
                    ],
                }
            ]
        },
        "metadata": meta,
        "from_finalize": from_finalize,
    }


def metadata(
    *,
    request_id: str,
    sha256: str,
    created: str,
    duration: float,
    channels: int,
    model: Mapping[str, str],
    model_uuid: str,
    extra: Mapping[str, str] | None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The one ``Metadata`` that ends a session. ``models``/``model_info`` only appear once
    audio was processed, as in Deepgram's captures of audio-less sessions. ``warnings``
    uses the ``[{type, parameter, message}]`` shape of Deepgram's published spec (never
    seen live): how the emulator says what it could not do."""
    message: dict[str, Any] = {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": created,
        "duration": seconds(duration),
        "channels": channels,
    }
    if duration > 0:
        message["models"] = [model_uuid]
        message["model_info"] = {model_uuid: _model_info(model)}
    if extra:
        message["extra"] = dict(extra)
    if warnings:
        message["warnings"] = [
            {"type": "dgproto_emulator", "parameter": "audio", "message": text} for text in warnings
        ]
    return message


def utterance_end(*, channel: int, total: int, last_word_end: float) -> dict[str, Any]:
    """``UtteranceEnd``: note ``channel`` is a ``[index, total]`` list here."""
    return {
        "type": "UtteranceEnd",
        "channel": [channel, total],
        "last_word_end": seconds(last_word_end),
    }


def speech_started(*, channel: int, total: int, timestamp: float) -> dict[str, Any]:
    """``SpeechStarted`` (with ``vad_events=true``)."""
    return {"type": "SpeechStarted", "channel": [channel, total], "timestamp": seconds(timestamp)}


def schema_error(description: str, message: str) -> dict[str, Any]:
    """Deepgram's ``SchemaError``: the client's message was bad, the session goes on."""
    return {
        "type": "Error",
        "variant": "SchemaError",
        "description": description,
        "message": message,
    }


def closing_error(code: str, description: str) -> dict[str, Any]:
    """Deepgram's ``Closing`` error, sent before a close frame when ``debug=true``."""
    return {"type": "Error", "variant": "Closing", "code": code, "description": description}


def configure_success(
    *, request_id: str, features: Mapping[str, Any], keyterms: Sequence[str] | None
) -> dict[str, Any]:
    """``ConfigureSuccess`` echoing what was applied (the v2 shape, with ``features``)."""
    message: dict[str, Any] = {"type": "ConfigureSuccess", "request_id": request_id}
    message["features"] = dict(features)
    if keyterms is not None:
        message["keyterms"] = list(keyterms)
    return message


def configure_failure(*, request_id: str, code: str, description: str) -> dict[str, Any]:
    """``ConfigureFailure``: nothing was applied; the session goes on unchanged."""
    return {
        "type": "ConfigureFailure",
        "request_id": request_id,
        "code": code,
        "description": description,
    }
