"""Audio in: a WAV file, raw audio, a compressed file or stdin as an ``AudioSource``.

WAV is sent as raw samples (``wav``); mp3, ogg/opus, flac, webm and m4a are passed through
as they are, with no ``encoding``/``sample_rate``: Deepgram decodes containers itself.
Reading stdin never blocks a runtime: a daemon thread reads it ahead (``_Prefetcher``).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import IO

import attrs

from dgproto._audio import BYTES_PER_SAMPLE, bytes_per_second

from .shared import CliError, reason
from .wav import WavError, read_header

__all__ = [
    "RAW_ENCODINGS",
    "AudioFormat",
    "AudioSource",
    "chunk_frames",
    "open_source",
    "sniff_container",
]

#: Encodings whose byte rate is fixed, so audio can be paced and timed.
RAW_ENCODINGS = tuple(BYTES_PER_SAMPLE)


@attrs.frozen(kw_only=True)
class AudioFormat:
    """What is sent on the wire: raw samples (``encoding``, ``sample_rate``, ``channels``)
    or a ``container`` (mp3, ogg, ...) whose own header says it all."""

    encoding: str | None
    sample_rate: int | None
    channels: int | None = 1
    container: str | None = None

    @classmethod
    def passthrough(cls, container: str) -> AudioFormat:
        return cls(encoding=None, sample_rate=None, channels=None, container=container)

    @property
    def frame_size(self) -> int:
        """Bytes per sample frame (raw audio only)."""
        assert self.encoding is not None
        return BYTES_PER_SAMPLE[self.encoding] * (self.channels or 1)

    @property
    def bytes_per_second(self) -> int | None:
        """``None`` for a container: it has no fixed byte rate, so no audio clock."""
        return bytes_per_second(self.encoding, self.sample_rate, self.channels or 1)

    def describe(self) -> str:
        if self.container is not None:
            return f"{self.container}, passed through for the server to decode"
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
        except (OSError, EOFError) as exc:
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


def chunk_frames(rate: int, chunk_ms: float) -> int:
    return max(1, round(rate * chunk_ms / 1000))


#: Magic numbers of the containers Deepgram decodes itself: (offset, bytes, name).
_CONTAINERS = (
    (0, b"fLaC", "flac"),
    (0, b"OggS", "ogg"),
    (0, b"ID3", "mp3"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
    (4, b"ftyp", "m4a"),
)
#: Bytes per message for a container (about 0.25 s of 128 kbit/s mp3).
CONTAINER_CHUNK = 4096


def sniff_container(head: bytes) -> str | None:
    """The container ``head`` (a file's first 12 bytes) starts, or ``None``."""
    for offset, magic, name in _CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG frame sync
        return "mp3"
    return None


def _open_wav(
    name: str, file: IO[bytes] | _FdReader, chunk_ms: float, *, live: bool
) -> tuple[AudioFormat, Callable[[], bytes], float | None]:
    try:
        layout = read_header(file)
    except WavError as exc:
        raise CliError(f"{name} is not a WAV dgproto can send: {exc}") from None
    audio = AudioFormat(
        encoding=layout.encoding, sample_rate=layout.sample_rate, channels=layout.channels
    )
    frame_bytes = layout.block_align * chunk_frames(layout.sample_rate, chunk_ms)
    left = layout.data_size
    convert = layout.convert

    def read() -> bytes:
        nonlocal left
        size = frame_bytes if left is None else min(frame_bytes, left)
        data = file.read(size) if size else b""
        data = data[: len(data) - len(data) % layout.block_align]  # whole frames only
        if left is not None:
            left -= len(data)
        return convert(data) if convert is not None and data else data

    total = None
    if not live and left is not None:
        total = left / (layout.block_align * layout.sample_rate)
    return audio, read, total


def open_source(
    path: str,
    *,
    raw: AudioFormat | None,
    chunk_ms: float,
) -> AudioSource:
    """``path`` (``-`` for stdin) as an ``AudioSource``: raw audio when ``raw`` says what
    it holds, else WAV or a container, recognized by its first bytes (on stdin too)."""
    live = path == "-"
    name = "stdin" if live else path
    file: IO[bytes] | _FdReader
    if live:
        fd = sys.stdin.fileno()
        head = b"" if raw is not None else _FdReader(fd).read(12)
        file = _FdReader(fd, head)
        close: Callable[[], None] = lambda: None  # noqa: E731
        total: float | None = None
    else:
        try:
            opened = open(path, "rb")  # noqa: SIM115 - closed by the source
            size = os.fstat(opened.fileno()).st_size
            head = b"" if raw is not None else opened.read(12)
            opened.seek(0)
        except OSError as exc:
            raise CliError(f"cannot read {path}: {reason(exc)}") from None
        file, close = opened, opened.close
        rate = None if raw is None else raw.bytes_per_second
        total = None if rate is None else size / rate
    container = sniff_container(head)
    try:
        if raw is not None:
            assert raw.sample_rate is not None
            size_bytes = raw.frame_size * chunk_frames(raw.sample_rate, chunk_ms)
            audio, read = raw, (lambda: file.read(size_bytes))
        elif container is not None:
            audio, read = AudioFormat.passthrough(container), lambda: file.read(CONTAINER_CHUNK)
        elif head[:4] != b"RIFF":
            raise CliError(
                f"{name} is not WAV, mp3, ogg, flac, webm or m4a; for raw audio give "
                "--encoding and --sample-rate"
            )
        else:
            audio, read, total = _open_wav(name, file, chunk_ms, live=live)
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
