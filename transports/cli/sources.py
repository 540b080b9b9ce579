"""Audio in: a WAV file, raw audio or stdin as an ``AudioSource`` that yields chunks.

Reading stdin never blocks a runtime: a daemon thread reads it ahead (``_Prefetcher``).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import wave
from collections.abc import Callable
from typing import IO

import attrs

from dgproto._audio import BYTES_PER_SAMPLE

from .shared import CliError, reason

__all__ = ["RAW_ENCODINGS", "AudioFormat", "AudioSource", "chunk_frames", "open_source"]

#: Encodings whose byte rate is fixed, so audio can be paced and timed.
RAW_ENCODINGS = tuple(BYTES_PER_SAMPLE)


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
            raise CliError(f"cannot read {self.name}: {reason(exc)}") from None

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


def chunk_frames(rate: int, chunk_ms: float) -> int:
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
    frames = chunk_frames(audio.sample_rate, chunk_ms)

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
            raise CliError(f"cannot read {path}: {reason(exc)}") from None
        file, close = opened, opened.close
        total = None if raw is None else size / raw.bytes_per_second
    try:
        if raw is not None:
            size_bytes = raw.frame_size * chunk_frames(raw.sample_rate, chunk_ms)
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
