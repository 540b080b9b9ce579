"""How a session is shown: ``TextView`` for people, ``JsonView`` for pipes."""

from __future__ import annotations

import enum
import json
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import attrs

from dgproto._events import (
    Closed,
    Connected,
    Event,
    FinalizeComplete,
    Metadata,
    Reconnected,
    Reconnecting,
    Results,
    ServerError,
    SpeechStarted,
    UtteranceEnd,
)

from .session import Summary
from .shared import write

__all__ = ["JsonView", "RawJsonView", "TextView", "describe_event", "event_json", "final_text"]


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"[{int(minutes):02d}:{rest:04.1f}]"


def final_text(results: Results) -> str:
    """The transcript, with ``[Speaker n]`` labels when diarized and the channel when
    there are several."""
    text = results.transcript
    words = results.alternatives[0].words if results.alternatives else ()
    if any(word.speaker is not None for word in words):
        parts: list[str] = []
        speaker: int | None = None
        for word in words:
            if word.speaker != speaker or not parts:
                speaker = word.speaker
                parts.append(f"[Speaker {speaker}]")
            parts.append(word.punctuated_word or word.word)
        text = " ".join(parts)
    index = results.channel_index
    if len(index) > 1 and index[1] > 1:
        text = f"[channel {index[0]}] {text}"
    return text


def _first_word_start(results: Results) -> float:
    """Where the speech starts: the first word, else the window (which may open on silence)."""
    words = results.alternatives[0].words if results.alternatives else ()
    return words[0].start if words else results.start


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _model_names(metadata: Metadata) -> list[str]:
    """Model names from ``model_info`` (``models`` only holds UUIDs)."""
    names = []
    for uuid in metadata.models:
        info = metadata.model_info.get(uuid)
        name = info.get("name") if isinstance(info, Mapping) else None
        names.append(str(name) if name else uuid)
    return names


def describe_event(event: Event) -> str | None:
    """One human line for the events that are not Results; ``None``: not worth a line."""
    if isinstance(event, SpeechStarted):
        return f"<- SpeechStarted at {event.timestamp:.2f} s"
    if isinstance(event, UtteranceEnd):
        return f"<- UtteranceEnd (last word ended at {event.last_word_end:.2f} s)"
    if isinstance(event, FinalizeComplete):
        return f"<- FinalizeComplete ({event.reason})"
    if isinstance(event, Metadata):
        return f"<- Metadata: {event.duration} s of audio, request id {event.request_id}"
    if isinstance(event, ServerError):
        return f"<- Error from the server: {event.description or event.message or event.code}"
    if isinstance(event, Connected):
        return f"<- Connected, request id {event.request_id}"
    if isinstance(event, Reconnecting):
        lost = event.closed
        return (
            f"<- connection lost ({lost.code} {lost.reason}); reconnecting in "
            f"{event.delay:.1f} s (attempt {event.attempt})"
        )
    if isinstance(event, Reconnected):
        dropped = (
            f", {event.dropped_seconds:.2f} s could not be replayed"
            if event.dropped_seconds
            else ""
        )
        return (
            f"<- reconnected (attempt {event.attempt}, request id {event.request_id}), "
            f"{event.replayed_seconds:.2f} s of audio replayed{dropped}"
        )
    if isinstance(event, Closed):
        return None  # the summary (or the error) says it
    return f"<- {type(event).__name__}"


class TextView:
    """Human output. ``live``: a terminal, where interim results and progress share one
    status line redrawn in place; otherwise plain lines (interims only with ``interims``).
    """

    def __init__(self, out: TextIO, *, live: bool, interims: bool = False) -> None:
        self._out = out
        self._live = live
        self._interims = interims
        self._progress = ""
        self._interim = ""
        self._drawn = False
        self._last_draw = 0.0
        self._reconnects = 0
        self._sent = ""

    def _write(self, text: str) -> None:
        write(self._out, text)

    def _status(self, *, force: bool = True) -> None:
        if not self._live:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.05:
            return
        self._last_draw = now
        width = shutil.get_terminal_size().columns - 1
        line = f"{self._progress} {self._interim}".strip()
        if len(line) > width:
            line = line[: max(width - 3, 0)] + "..."
        self._write(f"\r\x1b[2K{line}")
        self._drawn = True

    def _line(self, text: str) -> None:
        if self._drawn:
            text = "\r\x1b[2K" + text
            self._drawn = False
        self._write(text + "\n")
        self._status()

    def progress(self, sent: float, total: float | None, lag: float | None) -> None:
        of = f"/{total:.1f}" if total is not None else ""
        self._sent = f"{sent:.1f}{of} s sent, lag {_seconds(lag)}"
        self._progress = self._bracket()
        self._status(force=False)

    def _bracket(self) -> str:
        parts = [self._sent] if self._sent else []
        if self._reconnects:
            parts.append(f"reconnects {self._reconnects}")
        return f"[{', '.join(parts)}]" if parts else ""

    def results(self, results: Results, lag: float | None, at: float) -> None:
        if results.is_final:
            self._interim = ""
            if results.transcript:
                suffix = f"  (lag {lag:.2f} s)" if lag is not None and not self._live else ""
                self._line(f"{_clock(_first_word_start(results))} {final_text(results)}{suffix}")
            else:
                self._status()
        elif self._live:
            self._interim = results.transcript
            self._status()
        elif self._interims and results.transcript:
            self._line(f"   ~ {results.transcript}")

    def event(self, event: Event, at: float) -> None:
        if isinstance(event, Reconnected):
            self._reconnects += 1
            self._progress = self._bracket()
        text = describe_event(event)
        if text is not None:
            self._line(text)

    def note(self, text: str) -> None:
        self._line(text)

    def summary(self, summary: Summary) -> None:
        self._interim = ""
        self._progress = ""
        if self._drawn:
            self._write("\r\x1b[2K")
            self._drawn = False
        audio = (
            f"{summary.audio_seconds:.2f} s sent"
            if summary.clocked
            else f"{summary.audio_bytes} bytes sent"
        )
        metadata = summary.metadata
        if metadata is not None:
            models = ", ".join(_model_names(metadata)) or "?"
            audio += (
                f" (the server counted {metadata.duration} s, {metadata.channels} "
                f"channel(s), model {models})"
            )
        rows = [
            ("request id", summary.request_id or "-"),
            ("audio", audio),
            ("time taken", f"{summary.elapsed_seconds:.2f} s"),
            ("finals", str(summary.finals)),
            ("lag", f"median {_seconds(summary.lag_median)}, p95 {_seconds(summary.lag_p95)}"),
        ]
        if summary.reconnects:
            rows.append(("reconnects", str(summary.reconnects)))
        if summary.interrupted:
            rows.append(("stopped", "by Ctrl-C"))
        rows.extend(("note", warning) for warning in summary.warnings)
        self._write("".join(f"{name:<11} {value}\n" for name, value in rows))


#: Fields left out of JSON events: raw payloads (the typed fields already carry them),
#: headers, bodies and Results' model metadata.
_JSON_SKIP = frozenset({"raw", "headers", "body", "metadata", "error", "entities", "model_info"})


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data: attrs instances become objects (minus ``_JSON_SKIP``)."""
    if attrs.has(type(value)):
        return {
            field.name: _plain(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if field.name not in _JSON_SKIP
        }
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def event_json(event: Event, *, at: float, lag: float | None = None) -> dict[str, Any]:
    """One event as the JSON object ``--json`` prints: its type, the time since the start,
    and its fields (a ``TurnInfo``'s own ``event`` as ``turn``)."""
    data: dict[str, Any] = {"event": type(event).__name__, "time": round(at, 3)}
    fields = _plain(event)
    if "event" in fields:  # Flux's TurnInfo.event ("EndOfTurn", ...) keeps "event" the type
        fields["turn"] = fields.pop("event")
    data.update(fields)
    if isinstance(event, Results):
        data["transcript"] = event.transcript
        if lag is not None:
            data["lag"] = round(lag, 3)
    return data


class JsonView:
    """One JSON object per line per event, then a ``Summary`` object: for pipes."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def _emit(self, data: dict[str, Any]) -> None:
        write(self._out, json.dumps(data, ensure_ascii=False) + "\n")

    def progress(self, sent: float, total: float | None, lag: float | None) -> None:
        pass

    def results(self, results: Results, lag: float | None, at: float) -> None:
        self._emit(event_json(results, at=at, lag=lag))

    def event(self, event: Event, at: float) -> None:
        self._emit(event_json(event, at=at))

    def note(self, text: str) -> None:
        print(f"dgproto: {text}", file=sys.stderr, flush=True)  # for people, not the pipe

    def summary(self, summary: Summary) -> None:
        closed = summary.closed
        self._emit(
            {
                "event": "Summary",
                "request_id": summary.request_id,
                "audio_seconds": round(summary.audio_seconds, 3) if summary.clocked else None,
                "audio_bytes": summary.audio_bytes,
                "elapsed_seconds": round(summary.elapsed_seconds, 3),
                "finals": summary.finals,
                "lag_median": _round(summary.lag_median),
                "lag_p95": _round(summary.lag_p95),
                "interrupted": summary.interrupted,
                "reconnects": summary.reconnects,
                "close_code": None if closed is None else closed.code,
                "warnings": summary.warnings,
            }
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class RawJsonView(JsonView):
    """Deepgram's own messages, one JSON object per line, as they came (``Results``,
    ``Metadata``, ``SpeechStarted``, ... and any type dgproto does not know), so ``jq``
    pipelines written for Deepgram keep working. Notes and the summary go to stderr."""

    def _raw(self, event: Event) -> None:
        raw = getattr(event, "raw", None)
        if raw:
            write(self._out, json.dumps(raw, ensure_ascii=False) + "\n")

    def results(self, results: Results, lag: float | None, at: float) -> None:
        self._raw(results)

    def event(self, event: Event, at: float) -> None:
        self._raw(event)

    def summary(self, summary: Summary) -> None:
        sent = (
            f"{summary.audio_seconds:.2f} s" if summary.clocked else f"{summary.audio_bytes} bytes"
        )
        again = f", {summary.reconnects} reconnect(s)" if summary.reconnects else ""
        self.note(f"{sent} of audio sent, {summary.finals} final(s){again}")
        for warning in summary.warnings:
            self.note(f"note from the server: {warning}")
