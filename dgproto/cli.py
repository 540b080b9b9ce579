"""The ``dgproto`` command line: ``transcribe``, ``serve``, ``synth`` and ``demo``.

``transcribe`` streams a WAV file, raw audio or stdin to Deepgram (or any compatible
server, such as the emulator) and shows what comes back; ``demo`` does the same against
an in-process emulator with a script that shows every part of a live session.

One session, three runtimes. What is sent when is decided by one generator
(``_requests``), which yields requests (sleep, send this chunk, Finalize, CloseStream);
what arrives is handled by one ``_Session``. The runtimes only interpret the requests:
``_drive_async`` for asyncio and trio (each behind a three-method ``_AsyncRuntime``),
``_drive_sync`` for the blocking adapter (receiving in a second thread, as that adapter
allows). Ctrl-C only sets a flag the generator reads between sleeps of at most
``_POLL`` seconds, so it works the same everywhere: CloseStream, drain, summary.

Like ``__main__``, this module may import I/O: it is exempt from the purity rule.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import enum
import errno
import importlib
import json
import logging
import math
import os
import queue
import shutil
import signal
import ssl
import statistics
import sys
import threading
import time
import urllib.parse
import wave
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import IO, Any, Protocol, TextIO

import attrs

from dgproto._audio import BYTES_PER_SAMPLE
from dgproto._config import Config
from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import (
    Closed,
    Connected,
    Event,
    FinalizeComplete,
    Metadata,
    Results,
    ServerError,
    SpeechStarted,
    UtteranceEnd,
)
from dgproto._options import LiveOptions

__all__ = [
    "AudioFormat",
    "AudioSource",
    "CliError",
    "JsonView",
    "OutputClosed",
    "Summary",
    "TextView",
    "build_parser",
    "event_json",
    "main",
    "open_source",
]

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
API_KEY_ENV = "DEEPGRAM_API_KEY"
TRANSPORTS = ("asyncio", "trio", "sync")

EXIT_OK = 0
EXIT_FAILURE = 1  # the server or the network failed us
EXIT_USAGE = 2  # bad input: what argparse uses too
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it

#: Deepgram throttles streams sent faster than this multiple of real time.
DEEPGRAM_MAX_SPEED = 1.25
#: Longest sleep between two looks at the Ctrl-C flag and at a pipe with no data yet.
_POLL = 0.05
#: Encodings whose byte rate is fixed, so audio can be paced and timed.
RAW_ENCODINGS = tuple(BYTES_PER_SAMPLE)
#: The adapters' wire trace message for bytes written (see ``transports._common``).
_WIRE_SENT = "-> %d bytes"


class CliError(Exception):
    """A problem reported as one line on stderr, then the exit status ``status``."""

    def __init__(self, message: str, *, status: int = EXIT_USAGE, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


# --------------------------------------------------------------------------- audio in


@attrs.frozen(kw_only=True)
class AudioFormat:
    """Raw PCM as sent on the wire: what ``encoding``/``sample_rate``/``channels`` say."""

    encoding: str
    sample_rate: int
    channels: int = 1

    @property
    def frame_size(self) -> int:
        return BYTES_PER_SAMPLE[self.encoding] * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.frame_size * self.sample_rate

    def describe(self) -> str:
        channels = "mono" if self.channels == 1 else f"{self.channels} channels"
        return f"{self.encoding}, {self.sample_rate} Hz, {channels}"


class AudioSource:
    """Chunks of audio to stream: ``read()`` gives bytes, ``None`` when a pipe has nothing
    yet, and ``b""`` at the end."""

    def __init__(
        self,
        name: str,
        audio: AudioFormat,
        read: Callable[[], bytes | None],
        *,
        total_seconds: float | None,
        live: bool = False,
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.format = audio
        self.total_seconds = total_seconds
        #: True for stdin: it arrives at its own pace, so by default it is not paced.
        self.live = live
        self._read = read
        self._close = close

    def read(self) -> bytes | None:
        try:
            return self._read()
        except (OSError, EOFError, wave.Error) as exc:
            raise CliError(f"cannot read {self.name}: {_reason(exc)}") from None

    def close(self) -> None:
        self._close()


class _Prefetcher:
    """Reads a blocking file (stdin) in a daemon thread, so no runtime ever blocks on it.

    The thread reads through ``os.read`` on the descriptor, never ``sys.stdin.buffer``:
    a daemon thread holding a buffered reader's lock at exit aborts the interpreter. It
    is never joined; it ends with the input or with the process. At most ``depth``
    chunks wait (then the thread waits: backpressure).
    """

    def __init__(self, read: Callable[[], bytes], depth: int = 64) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self._thread = threading.Thread(
            target=self._run, args=(read,), name="dgproto-cli-stdin", daemon=True
        )
        self._thread.start()

    def _run(self, read: Callable[[], bytes]) -> None:
        while True:
            try:
                chunk = read()
            except BaseException as exc:  # handed to the reading side, which reports it
                self._queue.put(exc)
                return
            self._queue.put(chunk)
            if not chunk:
                return

    def read(self) -> bytes | None:
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item


class _FdReader:
    """A file object over a descriptor, reading with ``os.read`` (see ``_Prefetcher``)."""

    def __init__(self, fd: int, prefix: bytes = b"") -> None:
        self._fd = fd
        self._prefix = prefix

    def read(self, size: int = -1) -> bytes:
        parts = [self._prefix]
        self._prefix = b""
        have = len(parts[0])
        while size < 0 or have < size:
            chunk = os.read(self._fd, 65536 if size < 0 else size - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)


def _u8_to_linear16(data: bytes) -> bytes:
    """8-bit WAV is unsigned: flip the sign bit and make it the high byte of an int16."""
    out = bytearray(2 * len(data))
    out[1::2] = data.translate(_FLIP_SIGN)
    return bytes(out)


def _s24_to_linear32(data: bytes) -> bytes:
    """24-bit little-endian samples become the top three bytes of 32-bit ones."""
    out = bytearray(4 * (len(data) // 3))
    for offset in range(3):
        out[offset + 1 :: 4] = data[offset::3]
    return bytes(out)


_FLIP_SIGN = bytes(b ^ 0x80 for b in range(256))
#: WAV sample width -> (the encoding sent, a converter to it or None).
_WAV_WIDTHS: dict[int, tuple[str, Callable[[bytes], bytes] | None]] = {
    1: ("linear16", _u8_to_linear16),
    2: ("linear16", None),
    3: ("linear32", _s24_to_linear32),
    4: ("linear32", None),
}


def _reason(exc: BaseException) -> str:
    """An OS error's words without its errno and path (``No such file or directory``)."""
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        # From the errno first: asyncio's "Connect call failed (...)" hides the words.
        if exc.errno is not None and exc.errno in errno.errorcode:
            return os.strerror(exc.errno)
        if exc.strerror:
            return exc.strerror
    return str(exc) or type(exc).__name__


def _chunk_frames(rate: int, chunk_ms: float) -> int:
    return max(1, round(rate * chunk_ms / 1000))


def _open_wav(
    name: str, file: IO[bytes] | _FdReader, chunk_ms: float, *, live: bool
) -> tuple[AudioFormat, Callable[[], bytes], float | None, Callable[[], None]]:
    try:
        reader = wave.open(file, "rb")  # type: ignore[arg-type]  # noqa: SIM115
    except (wave.Error, EOFError) as exc:
        raise CliError(
            f"{name} is not a PCM WAV file ({exc or 'truncated header'}); dgproto reads "
            "16-, 24- and 32-bit integer and 8-bit unsigned PCM WAV"
        ) from None
    width = reader.getsampwidth()
    if width not in _WAV_WIDTHS:  # pragma: no cover - wave itself refuses other widths
        raise CliError(f"{name}: {8 * width}-bit WAV is not supported")
    encoding, convert = _WAV_WIDTHS[width]
    audio = AudioFormat(
        encoding=encoding, sample_rate=reader.getframerate(), channels=reader.getnchannels()
    )
    frames = _chunk_frames(audio.sample_rate, chunk_ms)

    def read() -> bytes:
        data = reader.readframes(frames)
        return convert(data) if convert is not None and data else data

    total = None if live else reader.getnframes() / audio.sample_rate
    return audio, read, total, reader.close


def open_source(
    path: str,
    *,
    raw: AudioFormat | None,
    chunk_ms: float,
) -> AudioSource:
    """``path`` (``-`` for stdin) as an ``AudioSource``: a WAV file unless ``raw`` says
    what raw audio it holds. WAV on stdin is recognized by its ``RIFF`` header."""
    live = path == "-"
    name = "stdin" if live else path
    file: IO[bytes] | _FdReader
    if live:
        fd = sys.stdin.fileno()
        head = b"" if raw is not None else _FdReader(fd).read(4)
        file = _FdReader(fd, head)
        close: Callable[[], None] = lambda: None  # noqa: E731
        total: float | None = None
    else:
        try:
            opened = open(path, "rb")  # noqa: SIM115 - closed by the source
            size = os.fstat(opened.fileno()).st_size
            head = b"" if raw is not None else opened.read(4)
            opened.seek(0)
        except OSError as exc:
            raise CliError(f"cannot read {path}: {_reason(exc)}") from None
        file, close = opened, opened.close
        total = None if raw is None else size / raw.bytes_per_second
    try:
        if raw is not None:
            size_bytes = raw.frame_size * _chunk_frames(raw.sample_rate, chunk_ms)
            audio, read = raw, (lambda: file.read(size_bytes))
        elif head != b"RIFF":
            raise CliError(
                f"{name} is not a WAV file; for raw audio give --encoding and --sample-rate"
            )
        else:
            audio, read, total, close_wav = _open_wav(name, file, chunk_ms, live=live)
            close = _chain(close_wav, close)
    except BaseException:
        close()
        raise
    if live:
        return AudioSource(name, audio, _Prefetcher(read).read, total_seconds=None, live=True)
    return AudioSource(name, audio, read, total_seconds=total, close=close)


def _chain(*closers: Callable[[], None]) -> Callable[[], None]:
    def close() -> None:
        for closer in closers:
            closer()

    return close


# --------------------------------------------------------------------------- the script


@attrs.frozen
class Pause:
    """Send nothing for ``seconds`` (KeepAlive keeps the stream open meanwhile)."""

    seconds: float
    note: str = ""


@attrs.frozen
class FinalizeStep:
    """Ask the server to flush what it holds (``{"type": "Finalize"}``)."""

    note: str = ""


@attrs.frozen
class Note:
    """A line of narration."""

    text: str


#: One step of what to send: audio, ``None`` (a pipe has no data yet), or a command.
Step = bytes | None | Pause | FinalizeStep | Note


def audio_steps(source: AudioSource) -> Iterator[Step]:
    """The source's chunks as steps, until its end."""
    while True:
        chunk = source.read()
        if chunk == b"":
            return
        yield chunk


@attrs.frozen
class _Sleep:
    seconds: float


@attrs.frozen
class _Send:
    chunk: bytes


class _Command(enum.Enum):
    FINALIZE = "finalize"
    CLOSE = "close"


_Request = _Sleep | _Send | _Command


def _requests(session: _Session, steps: Iterable[Step], speed: float | None) -> Iterator[_Request]:
    """What to do, in order: the whole sending side of a session, with no I/O in it.

    Audio is paced at ``speed`` times real time (``None``: as fast as it comes); a
    ``Pause`` restarts the pacing clock. Stops early on Ctrl-C or once the stream
    closed; always ends with CloseStream.
    """
    anchor: tuple[float, float] | None = None  # (wall time, audio seconds) pacing starts
    for step in steps:
        if session.should_stop():
            break
        if step is None:
            yield _Sleep(_POLL / 5)
        elif isinstance(step, bytes):
            if speed is not None:
                if anchor is None:
                    anchor = (time.monotonic(), session.audio_seconds)
                yield from _sleep_until(
                    session, anchor[0] + (session.audio_seconds - anchor[1]) / speed
                )
                if session.should_stop():
                    break
            yield _Send(step)
            session.sent(len(step), now=time.monotonic())
        elif isinstance(step, Pause):
            session.pause(step)
            yield from _sleep_until(session, time.monotonic() + step.seconds)
            session.resume()
            anchor = None
        elif isinstance(step, FinalizeStep):
            session.note(step.note)
            yield _Command.FINALIZE
        else:
            session.note(step.text)
    if session.interrupted:
        session.note(
            "interrupted: sending CloseStream and waiting for the last results "
            "(Ctrl-C again quits at once)"
        )
    session.closing()
    yield _Command.CLOSE


def _sleep_until(session: _Session, deadline: float) -> Iterator[_Sleep]:
    while not session.should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        yield _Sleep(min(left, _POLL))


# --------------------------------------------------------------------------- what arrives


@attrs.frozen(kw_only=True)
class Summary:
    """The end-of-stream report."""

    request_id: str | None
    audio_seconds: float
    elapsed_seconds: float
    finals: int
    lag_median: float | None
    lag_p95: float | None
    interrupted: bool
    closed: Closed | None
    metadata: Metadata | None


class _View(Protocol):
    """How a session is shown: a live terminal, plain lines, or JSON lines."""

    def progress(self, sent: float, total: float | None, lag: float | None) -> None: ...
    def results(self, results: Results, lag: float | None, at: float) -> None: ...
    def event(self, event: Event, at: float) -> None: ...
    def note(self, text: str) -> None: ...
    def summary(self, summary: Summary) -> None: ...


class _Session:
    """Everything one run knows: what was sent when, what arrived, and the lag between.

    Lag of a final result = when it arrived - when the audio up to its end had been
    sent (both ``time.monotonic()``). Safe to call from two threads (the blocking
    adapter receives in its own).
    """

    def __init__(self, view: _View, audio: AudioFormat, total_seconds: float | None) -> None:
        self.view = view
        self.total_seconds = total_seconds
        self.started = time.monotonic()
        self._bytes_per_second = audio.bytes_per_second
        self._bytes_sent = 0
        self._sent_ends: list[float] = []  # audio seconds sent after each chunk
        self._sent_times: list[float] = []  # ... and when
        self._lags: list[float] = []
        self._last_lag: float | None = None
        self._lock = threading.Lock()
        self.finals: list[Results] = []
        self.request_id: str | None = None
        self.closed: Closed | None = None
        self.metadata: Metadata | None = None
        self.interrupted = False
        self.close_sent = False
        self.pausing: Pause | None = None
        self._paused_at = 0.0
        self.keepalives = 0

    @property
    def audio_seconds(self) -> float:
        return self._bytes_sent / self._bytes_per_second

    def should_stop(self) -> bool:
        """True once the sender should stop: Ctrl-C, or the stream is over."""
        return self.interrupted or self.closed is not None

    def interrupt(self) -> None:
        """Called by the SIGINT handler: only sets a flag (printing there could reenter)."""
        self.interrupted = True

    def sent(self, size: int, *, now: float) -> None:
        with self._lock:
            self._bytes_sent += size
            self._sent_ends.append(self.audio_seconds)
            self._sent_times.append(now)
            self.view.progress(self.audio_seconds, self.total_seconds, self._last_lag)

    def pause(self, step: Pause) -> None:
        with self._lock:
            self.pausing = step
            self._paused_at = time.monotonic()
        self.note(step.note)

    def resume(self) -> None:
        with self._lock:
            self.pausing = None

    def closing(self) -> None:
        self.close_sent = True

    def keepalive_sent(self, now: float) -> None:
        """The wire trace saw bytes leave while we send nothing: a KeepAlive."""
        with self._lock:
            if self.pausing is None:
                return
            self.keepalives += 1
            into = now - self._paused_at
            self.view.note(f"-> KeepAlive, {into:.1f} s into the silence")

    def note(self, text: str) -> None:
        if text:
            with self._lock:
                self.view.note(text)

    def _lag(self, end: float, now: float) -> float | None:
        """Seconds from sending the audio up to ``end`` until ``now``."""
        if not self._sent_ends:
            return None
        index = min(bisect.bisect_left(self._sent_ends, end - 1e-6), len(self._sent_ends) - 1)
        return max(0.0, now - self._sent_times[index])

    def event(self, event: Event, *, now: float) -> None:
        at = now - self.started
        with self._lock:
            if isinstance(event, Results):
                lag = None
                if event.is_final and event.transcript:
                    lag = self._lag(event.end, now)
                    self.finals.append(event)
                    if lag is not None:
                        self._lags.append(lag)
                        self._last_lag = lag
                self.view.results(event, lag, at)
                return
            if isinstance(event, Connected):
                self.request_id = event.request_id
            elif isinstance(event, Metadata):
                self.metadata = event
            elif isinstance(event, Closed):
                self.closed = event
            self.view.event(event, at)

    def summary(self) -> Summary:
        lags = sorted(self._lags)
        p95 = lags[max(0, math.ceil(0.95 * len(lags)) - 1)] if lags else None
        return Summary(
            request_id=self.request_id,
            audio_seconds=self.audio_seconds,
            elapsed_seconds=time.monotonic() - self.started,
            finals=len(self.finals),
            lag_median=statistics.median(lags) if lags else None,
            lag_p95=p95,
            interrupted=self.interrupted,
            closed=self.closed,
            metadata=self.metadata,
        )

    def transcript(self) -> str:
        return " ".join(r.transcript for r in self.finals)


# --------------------------------------------------------------------------- views


class OutputClosed(Exception):
    """Whoever read our output went away (``| head``). Not an ``OSError`` on purpose, so
    it is never mistaken for a network failure; ``main`` exits quietly."""


def _write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"[{int(minutes):02d}:{rest:04.1f}]"


def _final_text(results: Results) -> str:
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


def _describe_event(event: Event) -> str | None:
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

    def _write(self, text: str) -> None:
        _write(self._out, text)

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
        self._progress = f"[{sent:.1f}{of} s sent, lag {_seconds(lag)}]"
        self._status(force=False)

    def results(self, results: Results, lag: float | None, at: float) -> None:
        if results.is_final:
            self._interim = ""
            if results.transcript:
                suffix = f"  (lag {lag:.2f} s)" if lag is not None and not self._live else ""
                self._line(f"{_clock(_first_word_start(results))} {_final_text(results)}{suffix}")
            else:
                self._status()
        elif self._live:
            self._interim = results.transcript
            self._status()
        elif self._interims and results.transcript:
            self._line(f"   ~ {results.transcript}")

    def event(self, event: Event, at: float) -> None:
        text = _describe_event(event)
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
        audio = f"{summary.audio_seconds:.2f} s sent"
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
        if summary.interrupted:
            rows.append(("stopped", "by Ctrl-C"))
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
    and its fields."""
    data: dict[str, Any] = {"event": type(event).__name__, "time": round(at, 3)}
    data.update(_plain(event))
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
        _write(self._out, json.dumps(data, ensure_ascii=False) + "\n")

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
                "audio_seconds": round(summary.audio_seconds, 3),
                "elapsed_seconds": round(summary.elapsed_seconds, 3),
                "finals": summary.finals,
                "lag_median": _round(summary.lag_median),
                "lag_p95": _round(summary.lag_p95),
                "interrupted": summary.interrupted,
                "close_code": None if closed is None else closed.code,
            }
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --------------------------------------------------------------------------- runtimes


class _AsyncStream(Protocol):
    """What the CLI uses of ``dgproto.transports.asyncio``/``.trio``'s ``ListenStream``."""

    async def send_audio(self, chunk: bytes) -> None: ...
    async def finalize(self, channel: int | None = None) -> FinalizeComplete: ...
    async def close(self) -> Closed: ...
    def __aiter__(self) -> AsyncIterator[Event]: ...


class _SyncStream(Protocol):
    """What the CLI uses of ``dgproto.transports.sync``'s ``ListenStream``."""

    def send_audio(self, chunk: bytes) -> None: ...
    def finalize(self, channel: int | None = None) -> FinalizeComplete: ...
    def close(self) -> Closed: ...
    def abort(self) -> Closed: ...
    def __iter__(self) -> Iterator[Event]: ...


_Connect = Callable[..., AbstractAsyncContextManager[_AsyncStream]]


def _transport(name: str) -> Any:
    """``dgproto.transports.<name>``, imported when first needed (trio is optional).

    Through ``importlib`` because mypy cannot map the ``transports/`` folder to the name
    it is installed under; the ``_AsyncStream``/``_SyncStream`` protocols type the use.
    """
    return importlib.import_module(f"dgproto.transports.{name}")


class _AsyncRuntime(Protocol):
    def connect(self, job: _Job) -> AbstractAsyncContextManager[_AsyncStream]: ...
    async def sleep(self, seconds: float) -> None: ...
    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None: ...


@attrs.frozen(kw_only=True)
class _Job:
    """One stream to run: where, how, and what to send."""

    options: LiveOptions
    url: str
    api_key: str | None
    config: Config
    session: _Session
    steps: Iterable[Step]
    speed: float | None

    def requests(self) -> Iterator[_Request]:
        return _requests(self.session, self.steps, self.speed)

    def connect_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "url": self.url, "config": self.config}


async def _drive_async(runtime: _AsyncRuntime, job: _Job) -> None:
    """Run ``job`` on an async adapter: the sender interprets requests, the receiver
    hands every event to the session."""
    async with runtime.connect(job) as stream:

        async def send() -> None:
            with contextlib.suppress(ConnectionClosedError):  # Closed tells the story
                for request in job.requests():
                    if isinstance(request, _Sleep):
                        await runtime.sleep(request.seconds)
                    elif isinstance(request, _Send):
                        await stream.send_audio(request.chunk)
                    elif request is _Command.FINALIZE:
                        await stream.finalize()
            await stream.close()

        async def receive() -> None:
            async for event in stream:
                job.session.event(event, now=time.monotonic())

        await runtime.both(send, receive)


class _Asyncio:
    def connect(self, job: _Job) -> AbstractAsyncContextManager[_AsyncStream]:
        connect: _Connect = _transport("asyncio").connect
        return connect(job.options, **job.connect_kwargs())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None:
        tasks = [asyncio.ensure_future(first()), asyncio.ensure_future(second())]
        try:
            await asyncio.gather(*tasks)  # the first failure propagates as itself
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _Trio:
    def __init__(self) -> None:
        import trio

        self._trio = trio

    def connect(self, job: _Job) -> AbstractAsyncContextManager[_AsyncStream]:
        connect: _Connect = _transport("trio").connect
        return connect(job.options, **job.connect_kwargs())

    async def sleep(self, seconds: float) -> None:
        await self._trio.sleep(seconds)

    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None:
        errors: list[Exception] = []
        async with self._trio.open_nursery() as nursery:

            async def guarded(function: Callable[[], Awaitable[None]]) -> None:
                try:
                    await function()
                except Exception as exc:  # re-raised below as itself, not in a group
                    errors.append(exc)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(guarded, first)
            nursery.start_soon(guarded, second)
        if errors:
            raise errors[0]


def _drive_sync(job: _Job) -> None:
    """Run ``job`` on the blocking adapter: send here, receive in a second thread."""
    connect: Callable[..., AbstractContextManager[_SyncStream]] = _transport("sync").connect
    failures: list[BaseException] = []
    with connect(job.options, **job.connect_kwargs()) as stream:

        def receive() -> None:
            try:
                for event in stream:
                    job.session.event(event, now=time.monotonic())
            except BaseException as exc:  # re-raised in the main thread
                failures.append(exc)

        receiver = threading.Thread(target=receive, name="dgproto-cli-receiver", daemon=True)
        receiver.start()
        try:
            with contextlib.suppress(ConnectionClosedError):
                for request in job.requests():
                    if failures:
                        break
                    if isinstance(request, _Sleep):
                        time.sleep(request.seconds)
                    elif isinstance(request, _Send):
                        stream.send_audio(request.chunk)
                    elif request is _Command.FINALIZE:
                        stream.finalize()
            if not failures:
                stream.close()
        finally:
            stream.abort()  # a no-op after close(); otherwise it ends the receiver's loop
            receiver.join()
    if failures:
        raise failures[0]


def _run_job(transport: str, job: _Job) -> None:
    if transport == "sync":
        _drive_sync(job)
    elif transport == "trio":
        try:
            runtime = _Trio()
        except ImportError:
            raise CliError("--transport trio needs trio: pip install 'dgproto[trio]'") from None
        runtime._trio.run(_drive_async, runtime, job)
    else:
        asyncio.run(_drive_async(_Asyncio(), job))


@contextlib.contextmanager
def _graceful_interrupt(session: _Session) -> Iterator[None]:
    """First Ctrl-C: stop sending, CloseStream, drain, summary. Second: quit at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        session.interrupt()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _WireWatcher(logging.Handler):
    """Sees the adapters' DEBUG wire trace: bytes written while the script pauses are
    KeepAlive frames (nothing else is sent then: pings are off)."""

    def __init__(self, session: _Session) -> None:
        super().__init__(logging.DEBUG)
        self._session = session

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _WIRE_SENT:
            self._session.keepalive_sent(time.monotonic())


@contextlib.contextmanager
def _watch_keepalives(session: _Session) -> Iterator[None]:
    logger = logging.getLogger("dgproto.transports")
    handler = _WireWatcher(session)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _stream(transport: str, job: _Job, *, watch_keepalives: bool = False) -> int:
    """Run ``job``, report the summary, and turn every failure into a ``CliError``."""
    session = job.session
    endpoint = _where(job.url)
    try:
        with _graceful_interrupt(session), contextlib.ExitStack() as stack:
            if watch_keepalives:
                stack.enter_context(_watch_keepalives(session))
            _run_job(transport, job)
    except HandshakeError as exc:
        hint = ""
        if exc.status_code == 401 and job.api_key is None and job.url.startswith("ws://"):
            hint = (
                "the dgproto emulator accepts any key: pass --api-key anything "
                "(or start it with --no-auth)"
            )
        raise CliError(
            f"{endpoint} refused the stream: {_describe_rejection(exc)}",
            status=EXIT_FAILURE,
            hint=hint,
        ) from None
    except ConnectionClosedError as exc:  # during the opening handshake
        raise CliError(
            f"connection lost during the handshake with {endpoint}: {_describe_close(exc.closed)}",
            status=EXIT_FAILURE,
        ) from None
    except TimeoutError as exc:
        raise CliError(f"timed out connecting to {endpoint}: {exc}", status=EXIT_FAILURE) from None
    except OSError as exc:
        raise CliError(
            f"cannot connect to {endpoint}: {_reason(exc)}", status=EXIT_FAILURE
        ) from None
    session.view.summary(session.summary())
    closed = session.closed
    if session.interrupted:
        return EXIT_INTERRUPTED
    if closed is None or not session.close_sent or closed.code != 1000 or not closed.clean:
        raise CliError(
            f"connection lost: {_describe_close(closed)}, after {session.audio_seconds:.2f} s "
            "of audio",
            status=EXIT_FAILURE,
        )
    return EXIT_OK


def _describe_rejection(exc: HandshakeError) -> str:
    """``HTTP 401, err_code=..., err_msg='...', request_id=...``: what support asks for."""
    parts = [f"HTTP {exc.status_code}"]
    if exc.err_code:
        parts.append(f"err_code={exc.err_code}")
    message = exc.err_msg or exc.dg_error
    if message:
        parts.append(f"err_msg={message!r}")
    if exc.request_id:
        parts.append(f"request_id={exc.request_id}")
    return ", ".join(parts)


def _describe_close(closed: Closed | None) -> str:
    if closed is None:  # pragma: no cover - every stream ends with a Closed
        return "no close reported"
    text = f"close code {closed.code}"
    if closed.error_code:
        text += f" {closed.error_code}"
    if closed.reason:
        text += f" ({closed.reason})"
    if closed.initiator == "timeout":
        text += ", timed out"
    return text


def _where(url: str) -> str:
    """The host and port of ``url``, for messages (never its query: it may hold a token)."""
    parts = urllib.parse.urlsplit(url)
    return parts.netloc or url


# --------------------------------------------------------------------------- transcribe


def _needs_key(url: str) -> bool:
    """Deepgram's own servers want a key; self-hosted ones and the emulator may not."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return host == "deepgram.com" or host.endswith(".deepgram.com")


_EMULATOR_HINT = """\
No key? Try dgproto against its local Deepgram emulator (no account, no network):
  dgproto demo                                   # everything below, in one command
  dgproto serve --port 8765 &                    # a local /v1/listen server
  dgproto synth "Hello from dgproto." -o hello.wav
  dgproto transcribe hello.wav --url ws://127.0.0.1:8765/v1/listen --api-key anything"""


def _options_from_args(args: argparse.Namespace, audio: AudioFormat) -> LiveOptions:
    params: dict[str, list[str]] = {}
    for item in args.param:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise CliError(f"--param wants KEY=VALUE, got {item!r}")
        params.setdefault(key, []).append(value)
    try:
        return LiveOptions(
            model=args.model,
            language=args.language,
            encoding=audio.encoding,
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            multichannel=args.multichannel,
            interim_results=args.interim_results,
            punctuate=args.punctuate,
            smart_format=args.smart_format,
            diarize=args.diarize,
            endpointing=args.endpointing,
            utterance_end_ms=args.utterance_end_ms,
            vad_events=args.vad_events,
            keyterm=args.keyterm or None,
            params=params,
        )
    except ValueError as exc:
        raise CliError(f"invalid option: {exc}") from None


def _raw_format(args: argparse.Namespace) -> AudioFormat | None:
    if args.encoding is None:
        if args.sample_rate is not None or args.channels is not None:
            raise CliError(
                "--sample-rate and --channels describe raw audio and need --encoding; "
                "a WAV file's header already says them"
            )
        return None
    if args.sample_rate is None:
        raise CliError(f"raw {args.encoding} audio needs --sample-rate")
    return AudioFormat(
        encoding=args.encoding, sample_rate=args.sample_rate, channels=args.channels or 1
    )


def _speed(args: argparse.Namespace, source: AudioSource) -> float | None:
    if args.realtime:
        return 1.0
    if args.speed is not None:
        return args.speed or None
    return None if source.live else DEEPGRAM_MAX_SPEED


def _make_view(args: argparse.Namespace, out: TextIO) -> _View:
    if args.json or not out.isatty():
        return JsonView(out)
    return TextView(out, live=True)


def cmd_transcribe(args: argparse.Namespace) -> int:
    url = args.url or DEFAULT_URL
    key = args.api_key or (os.environ.get(API_KEY_ENV) if url.startswith("wss://") else None)
    if not key and _needs_key(url):
        raise CliError(
            f"no Deepgram API key: pass --api-key KEY or set {API_KEY_ENV}",
            hint="" if args.url else _EMULATOR_HINT,
        )
    source = open_source(args.source, raw=_raw_format(args), chunk_ms=args.chunk_ms)
    try:
        options = _options_from_args(args, source.format)
        view = _make_view(args, sys.stdout)
        session = _Session(view, source.format, source.total_seconds)
        job = _Job(
            options=options,
            url=url,
            api_key=args.api_key,
            config=Config(),
            session=session,
            steps=audio_steps(source),
            speed=_speed(args, source),
        )
        return _stream(args.transport, job)
    finally:
        source.close()


# --------------------------------------------------------------------------- synth


def cmd_synth(args: argparse.Namespace) -> int:
    from dgproto.emulator import synthesize

    audio = AudioFormat(
        encoding=args.encoding, sample_rate=args.sample_rate, channels=args.channels
    )
    try:
        data = synthesize(
            args.text,
            sample_rate=audio.sample_rate,
            encoding=audio.encoding,
            channels=audio.channels,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    wav = args.output.lower().endswith(".wav")
    if wav and audio.encoding not in ("linear16", "linear32"):
        raise CliError(
            f"a WAV file holds linear16 or linear32 here, not {audio.encoding}; "
            "write raw audio instead (an output name not ending in .wav)"
        )
    seconds = len(data) / audio.bytes_per_second
    try:
        if args.output == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return EXIT_OK
        if wav:
            with wave.open(args.output, "wb") as writer:
                writer.setnchannels(audio.channels)
                writer.setsampwidth(BYTES_PER_SAMPLE[audio.encoding])
                writer.setframerate(audio.sample_rate)
                writer.writeframes(data)
        else:
            with open(args.output, "wb") as file:
                file.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {_reason(exc)}") from None
    raw = "" if wav else f" --encoding {audio.encoding} --sample-rate {audio.sample_rate}"
    if not wav and audio.channels > 1:
        raw += f" --channels {audio.channels}"
    print(
        f"wrote {args.output}: {seconds:.2f} s of tone-codec audio ({audio.describe()})\n"
        f"transcribe it with the emulator:\n"
        f"  dgproto serve --port 8765 &\n"
        f"  dgproto transcribe {args.output}{raw} --url ws://127.0.0.1:8765/v1/listen "
        "--api-key anything"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- demo

DEMO_PART_ONE = "Hello from dgproto. This audio carries its own transcript."
DEMO_PART_TWO = "The stream survived the silence. Goodbye!"
#: Real-time values; ``--fast`` divides every time by ten.
DEMO_SILENCE = 11.0
DEMO_KEEPALIVE = 3.0
DEMO_IDLE_TIMEOUT = 10.0


def cmd_demo(args: argparse.Namespace) -> int:
    from dgproto.emulator import EmulatorConfig, synthesize

    serve_in_thread: Callable[..., Any] = _transport("server").serve_in_thread

    scale = 0.1 if args.fast else 1.0
    audio = AudioFormat(encoding="linear16", sample_rate=16000, channels=1)
    parts = [
        synthesize(text, sample_rate=audio.sample_rate) for text in (DEMO_PART_ONE, DEMO_PART_TWO)
    ]
    expected = f"{DEMO_PART_ONE} {DEMO_PART_TWO}"
    silence, keepalive, idle = (
        DEMO_SILENCE * scale,
        DEMO_KEEPALIVE * scale,
        DEMO_IDLE_TIMEOUT * scale,
    )
    out = sys.stdout
    view = TextView(out, live=out.isatty(), interims=True)
    chunk = audio.frame_size * _chunk_frames(audio.sample_rate, 100)

    with serve_in_thread(config=EmulatorConfig(idle_timeout=idle)) as server:
        view.note(f"dgproto demo: a Deepgram-compatible emulator is listening on {server.url}")
        view.note("  (in this process: no network, no API key)")
        total = sum(len(part) for part in parts) / audio.bytes_per_second
        view.note(
            f"Synthesized {total:.1f} s of tone-codec speech ({audio.describe()}): audio "
            "that carries its own transcript."
        )
        session = _Session(view, audio, total)
        steps: list[Step] = [
            Note(f"-> streaming part 1 at {1 / scale:g}x real time, with interim_results"),
            *_chunks(parts[0], chunk),
            FinalizeStep("-> Finalize: flush what the server holds, so part 1 is final now"),
            Pause(
                silence,
                f"-> {silence:g} s without sending audio. The emulator, like Deepgram, closes "
                f"a stream idle for {idle:g} s; dgproto sends KeepAlive every {keepalive:g} s.",
            ),
            Note(f"-> streaming part 2 at {1 / scale:g}x real time"),
            *_chunks(parts[1], chunk),
            Note("-> CloseStream: the server flushes, sends Metadata and closes"),
        ]
        job = _Job(
            options=LiveOptions(
                encoding=audio.encoding,
                sample_rate=audio.sample_rate,
                channels=1,
                interim_results=True,
                punctuate=True,
                vad_events=True,
            ),
            url=server.url,
            api_key="demo",
            config=Config(keepalive_interval=keepalive),
            session=session,
            steps=steps,
            speed=1 / scale,
        )
        status = _stream(args.transport, job, watch_keepalives=True)
        received = _keepalives_received(server)
    if status != EXIT_OK:
        return status
    got = session.transcript()
    view.note(
        f"KeepAlive: {session.keepalives} sent during the silence, "
        f"{received} received by the emulator"
    )
    if got != expected:
        view.note(f"MISMATCH: the finals say {got!r}, the audio said {expected!r}")
        return EXIT_FAILURE
    if received == 0:
        view.note("MISMATCH: the emulator received no KeepAlive")
        return EXIT_FAILURE
    view.note("OK: the final transcript equals the synthesized text.")
    return EXIT_OK


def _chunks(data: bytes, size: int) -> list[Step]:
    return [data[offset : offset + size] for offset in range(0, len(data), size)]


def _keepalives_received(server: Any) -> int:
    """KeepAlive messages the emulator logged for the demo's stream (read once the
    connection is over, as ``ConnectionRecord`` asks)."""
    deadline = time.monotonic() + 2.0
    while True:
        records = server.connections
        if (records and not records[-1].live) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not records:
        return 0
    messages = records[-1].emulator.received_text_messages
    return sum(1 for message in messages if message.type == "KeepAlive")


# --------------------------------------------------------------------------- parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _endpointing(text: str) -> int | bool:
    if text.lower() == "false":
        return False
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"milliseconds of silence or 'false', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or 'false', got {text}")
    return value


def _add_transport(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="asyncio",
        help="the adapter that runs the stream (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgproto",
        description="Stream audio to Deepgram live transcription (or its local emulator).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = commands.add_parser(
        "transcribe",
        help="stream a WAV file, raw audio or stdin and print the transcript",
        description="Stream audio to /v1/listen and print what comes back: on a terminal, "
        "interim results on a status line and finals as lines; otherwise (or with --json) "
        "one JSON object per event. Ctrl-C sends CloseStream and shows what arrived.",
    )
    t.add_argument("source", metavar="SOURCE", help="a WAV file, a raw audio file, or - for stdin")
    t.add_argument("--url", help=f"the server (default {DEFAULT_URL})")
    t.add_argument(
        "--api-key",
        help=f"Deepgram API key (default: ${API_KEY_ENV}, safer than this flag; "
        "used only over wss://)",
    )
    _add_transport(t)
    pace = t.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="send audio at real time")
    pace.add_argument(
        "--speed",
        type=_non_negative_float,
        metavar="FACTOR",
        help=f"send at FACTOR times real time; 0 sends as fast as possible (default: "
        f"{DEEPGRAM_MAX_SPEED}, Deepgram's limit, for files; as it comes for stdin)",
    )
    t.add_argument(
        "--chunk-ms",
        type=_positive_float,
        default=100.0,
        metavar="MS",
        help="audio per message in milliseconds (default 100)",
    )
    t.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    raw = t.add_argument_group("raw audio (instead of a WAV header)")
    raw.add_argument("--encoding", choices=RAW_ENCODINGS)
    raw.add_argument("--sample-rate", type=_positive_int, metavar="HZ")
    raw.add_argument("--channels", type=_positive_int, metavar="N", help="default 1")
    dg = t.add_argument_group("Deepgram options")
    dg.add_argument("--model", help="e.g. nova-3")
    dg.add_argument("--language", help="e.g. en-US, or multi")
    boolean = argparse.BooleanOptionalAction
    dg.add_argument("--interim-results", action=boolean, help="partial results as you speak")
    dg.add_argument("--punctuate", action=boolean)
    dg.add_argument("--smart-format", action=boolean)
    dg.add_argument("--diarize", action=boolean, help="label speakers")
    dg.add_argument("--multichannel", action=boolean, help="transcribe channels separately")
    dg.add_argument("--endpointing", type=_endpointing, metavar="MS|false")
    dg.add_argument(
        "--utterance-end-ms", type=_positive_int, metavar="MS", help="needs --interim-results"
    )
    dg.add_argument("--vad-events", action=boolean, help="SpeechStarted events")
    dg.add_argument("--keyterm", action="append", default=[], help="boost a term (repeatable)")
    dg.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other query parameter (repeatable)",
    )
    t.set_defaults(handler=cmd_transcribe)

    commands.add_parser(
        "serve",
        help="run the local Deepgram emulator (dgproto serve --help)",
        add_help=False,
    )

    s = commands.add_parser(
        "synth",
        help="write tone-codec audio for TEXT, which the emulator transcribes back",
        description="Write audio that the emulator transcribes back to TEXT, to try "
        "`dgproto transcribe` against `dgproto serve` by hand.",
    )
    s.add_argument("text", metavar="TEXT")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="a .wav file, any other name for raw audio, or - for raw audio on stdout",
    )
    s.add_argument("--sample-rate", type=_positive_int, default=16000, metavar="HZ")
    s.add_argument("--encoding", choices=RAW_ENCODINGS, default="linear16")
    s.add_argument("--channels", type=_positive_int, default=1, metavar="N")
    s.set_defaults(handler=cmd_synth)

    d = commands.add_parser(
        "demo",
        help="show a live session against an in-process emulator (about 20 s)",
        description="Stream synthesized speech to an in-process emulator at real time: "
        "interim results, a Finalize, a silence that KeepAlive bridges, CloseStream and "
        "the Metadata summary. Exits 0 when the finals equal the synthesized text.",
    )
    _add_transport(d)
    d.add_argument("--fast", action="store_true", help="ten times faster (for tests)")
    d.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``dgproto`` console script and ``python -m dgproto``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        main_serve: Callable[[list[str]], int] = _transport("server").main_serve
        return main_serve(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except CliError as exc:
        sys.stdout.flush()
        print(f"dgproto {args.command}: {exc}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return exc.status
    except OutputClosed:  # the reader of our output went away (| head): say nothing
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:  # before or after the stream, where no handler is installed
        print(f"dgproto {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status
