"""The file side of ``connect(..., record=PATH_OR_FILE)``: ``RecordSink`` and
``SessionRecorder``.

The format and the byte parsing are pure (``dgproto._recording``, ``dgproto._wiretap``);
this module only owns the files. ``connect`` makes one ``RecordSink`` per call
(``record_sink``); ``make_plan`` asks it for one ``SessionRecorder`` per socket, and the
adapter's ``WireTrace`` feeds it the core's bytes (``sent``/``received``, never a proxy's
CONNECT exchange or TLS records: those do not pass through the trace) and closes it when
the socket is done. The credentials are passed as ``secrets=``: on top of the fixed
redaction rules they are scrubbed from anything in the request that carries them.

Files: a path ``P`` gets the JSON Lines at ``P`` and the raw audio sidecar at
``P.audio`` (see ``dgproto._recording``). A text file object gets everything inline (no
sidecar: there is no path to put it next to); it is flushed, never closed (its owner
closes it). A path's files are opened when the socket's upgrade request is written and
closed when that socket ends, so nothing leaks past the stream and a crash loses at most
the batch of audio not yet written (``AUDIO_FLUSH``, 64 KiB) and the server
reads held (``READ_FLUSH``, 64 KiB): each line is written out at once, after the sidecar
blocks that came before it, so the two files always agree. A reconnecting
stream's later sockets append to the same two files, each socket its own header line
(the format's "several sockets").
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import itemgetter, sub
from typing import IO, cast

from dgproto._recording import Recording, RecordingError, line_is_whole, read_recordings
from dgproto._wiretap import AUDIO_FLUSH, READ_FLUSH, WireTap, Write

__all__ = [
    "READ_FLUSH",
    "SIDECAR_SUFFIX",
    "RecordSink",
    "RecordTarget",
    "SessionRecorder",
    "load_recording",
    "load_recordings",
    "record_sink",
]

_first = itemgetter(0)
_second = itemgetter(1)
#: ``bytes.translate`` tables from the lengths of ``writes``' items to selectors
_READS = bytes.maketrans(b"\x02\x03", b"\x00\x01")
_WRITES = bytes.maketrans(b"\x02\x03", b"\x01\x00")

#: What ``record=`` accepts: a path, or a text file opened for writing.
RecordTarget = str | os.PathLike[str] | IO[str]

#: The audio sidecar of recording ``P`` is ``P`` + this.
SIDECAR_SUFFIX = ".audio"

logger = logging.getLogger("dgproto.transports")


class RecordSink:
    """Where one ``connect`` call records: every socket of the stream, in order."""

    def __init__(self, target: RecordTarget) -> None:
        if isinstance(target, (io.RawIOBase, io.BufferedIOBase)):
            raise TypeError(
                "record= needs a path or a text file (open(..., 'w')), not a binary one"
            )
        self._path = os.fspath(target) if isinstance(target, (str, os.PathLike)) else None
        self._file = None if isinstance(target, (str, os.PathLike)) else target
        #: set once a socket opened the files: later sockets append
        self.started = False
        #: the sidecar's size so far (where the next socket's audio starts)
        self.sidecar_size = 0

    def session(self, *, secrets: Sequence[str] = ()) -> SessionRecorder:
        """The recorder for one socket (opens nothing until it has something to write)."""
        return SessionRecorder(self, secrets=secrets)

    def open(self) -> tuple[IO[str], IO[bytes] | None, bool]:
        """``(lines file, sidecar file or None, owned)`` for the socket starting now."""
        if self._path is None:
            assert self._file is not None
            return self._file, None, False
        mode = "a" if self.started else "w"
        self.started = True
        lines = open(self._path, mode, encoding="utf-8")  # noqa: SIM115
        try:
            # unbuffered: the audio goes out in batches through write_all
            sidecar = open(self._path + SIDECAR_SUFFIX, mode + "b", buffering=0)  # noqa: SIM115
        except BaseException:
            lines.close()
            raise
        return lines, sidecar, True

    @property
    def sidecar_name(self) -> str | None:
        """The sidecar's file name, as the header names it (``None``: audio inline)."""
        return None if self._path is None else os.path.basename(self._path) + SIDECAR_SUFFIX


class SessionRecorder:
    """One socket's ``WireTap`` and its files; see the module docstring for the calls.

    Never raises into the session it records: a failed write (a full disk) logs one
    warning and stops recording. Thread-safe for the blocking adapter, where the reader
    thread calls ``received`` while an app thread calls ``sent``.

    **The hot path.** Once the tap has seen one audio frame, ``writes`` is a list and
    the adapter's ``WireTrace`` appends ``(now, bytes)`` to it for each write of the same
    size and first 4 bytes (the same frame header: one whole audio frame like the last):
    nothing is parsed or copied per frame (the core's bytes are immutable, so keeping
    them is enough). Every ``batch`` writes (64 KiB of frames, at most ``MAX_BATCH``),
    before any other write, and at the end, the pending writes become one sidecar block
    (``WireTap.sent_batch``: their stamps as one array, then the frames) and the blocks
    are written with one gathering write.

    **Reads** after the 101 are three appends under the lock (the read's clock, its
    position: the audio frames sent before it, recorded or pending, and the bytes):
    nothing parsed. They become one block in the same gathering write (also once
    ``READ_FLUSH`` bytes are held). A crash loses at most the writes and reads pending:
    64 KiB of audio (about 2 s of 16 kHz linear16) and 64 KiB of server reads.
    """

    #: The most pending writes before a flush (one ``os.writev`` of about 514 pieces).
    MAX_BATCH = 512

    def __init__(self, sink: RecordSink, *, secrets: Sequence[str] = ()) -> None:
        self._sink = sink
        self._lock = threading.RLock()
        self._lines: IO[str] | None = None
        self._sidecar: IO[bytes] | None = None
        self._owned = False
        self._opened = False
        self._closed = False
        #: the client's writes not yet handed to the tap (``None``: recording stopped);
        #: only writes of ``size`` bytes starting with ``head`` (one audio frame like
        #: the last) go here, anything else through ``sent``; and the reads once ``raw``
        self.writes: list[Write | tuple[float, bytes, None]] | None = []
        #: True once the server's reads go to the sidecar: then ``received`` appends
        #: them to ``writes`` too
        self.raw = False
        #: bytes of the reads in ``writes`` (``READ_FLUSH`` of them trigger a flush)
        self.read_bytes = 0
        self.head = b"\x82"
        self.size = -1
        #: pending writes that trigger a flush: ``AUDIO_FLUSH`` bytes of frames of ``size``
        self.batch = self.MAX_BATCH
        self._tap = WireTap(
            self._write,
            secrets=secrets,
            sidecar=sink.sidecar_name,
            sidecar_offset=sink.sidecar_size,
            flush_audio=self._flush_audio,
        )

    def sent(self, data: bytes, now: float) -> None:
        """Bytes the client wrote (``data_to_send()``, never changed afterwards)."""
        writes = self.writes
        if writes is not None and len(data) == self.size and data.startswith(self.head):
            writes.append((now, data))
            if len(writes) >= self.batch:
                self.flush()
            return
        with self._lock:
            if self._closed:
                return
            self._take_writes()
            tap = self._tap
            tap.sent(data, now)
            if tap.batching and tap.fast_head is not None and not self._closed:
                self.head, self.size = tap.fast_head, tap.fast_size
                self.batch = max(1, min(self.MAX_BATCH, AUDIO_FLUSH // self.size))
            else:
                self.size = -1  # nothing takes the hot path until the tap says so again

    def received(self, data: bytes | bytearray, now: float) -> None:
        """Bytes the client read, in order. Once the hot path is armed and the reads go
        to the sidecar (``raw``), a read is appended to ``writes`` as ``(now, bytes,
        None)``: its place among the pending writes is its place on the wire."""
        writes = self.writes
        if writes is not None and self.raw:
            writes.append((now, bytes(data), None))
            self.read_bytes += len(data)
            if self.read_bytes >= READ_FLUSH or len(writes) >= self.batch:
                self.flush()
            return
        with self._lock:
            if self._closed:
                return
            self._take_writes()
            tap = self._tap
            tap.received(data, now)
            self.raw = tap.raw_reads and not self._closed  # the 101 arms it for reads

    def flush(self) -> None:
        """Hand the pending writes to the tap and write the sidecar's blocks."""
        with self._lock:
            if self._closed:
                return
            self._take_writes()
            self._flush_audio()

    def _take_writes(self) -> None:
        """Under the lock: the pending writes to the tap as one audio block and the
        reads among them held at their places (the audio frames before each). Another
        thread may append meanwhile; only the first ``n`` are taken."""
        writes = self.writes
        if not writes:
            return
        n = len(writes)
        batch = writes[:n]
        del writes[:n]
        self.read_bytes = 0
        tap = self._tap
        sizes = bytes(map(len, batch))  # 2: a write (now, bytes), 3: a read (now, bytes, None)
        if 3 in sizes:  # each read goes after the writes before it
            base = tap.audio_frames
            if 2 in sizes:
                is_read = sizes.translate(_READS)
                reads = list(compress(batch, is_read))
                at = compress(range(n), is_read)  # the k-th read has k reads before it
                positions: Iterable[int] = map(sub, at, range(-base, len(reads) - base))
                batch = list(compress(batch, sizes.translate(_WRITES)))
            else:  # reads only: all after the same audio
                reads, positions, batch = batch, repeat(base, n), []
            tap.hold_reads(map(_first, reads), positions, map(_second, reads))
        tap.sent_batch(cast("list[Write]", batch))

    def _write(self, line: str) -> None:
        """The tap's lines (always called under the lock): the sidecar's blocks first,
        then the line, written out at once (lines are rare: the handshake and what the
        client sends besides audio), so the files agree however the process ends."""
        if self._closed:
            return
        try:
            if not self._opened:
                self._opened = True
                self._lines, self._sidecar, self._owned = self._sink.open()
            if not self._flush_audio():
                return
            lines = self._lines
            assert lines is not None
            lines.write(line)
            lines.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _flush_audio(self) -> bool:
        """The sidecar's pending blocks to the file; False: recording stopped."""
        with self._lock:
            parts = self._tap.take_audio_parts()
            if self._closed or self._sidecar is None or not parts:
                return not self._closed
            try:
                self._sink.sidecar_size += write_all(self._sidecar, parts)
            except (OSError, ValueError) as exc:
                self._fail(exc)
                return False
            return True

    def _fail(self, exc: BaseException) -> None:
        logger.warning("recording stopped: %s", exc)
        self._release()

    def _release(self) -> None:
        """Close (or, for the caller's file object, flush) and stop recording."""
        self._closed = True
        self.writes = None
        for file in (self._sidecar, self._lines):
            if file is None:
                continue
            try:
                file.flush()
                if self._owned:
                    file.close()
            except (OSError, ValueError):
                pass

    def close(self, now: float) -> None:
        """The socket ended: the pending writes, a pending rejection record, flush, close."""
        with self._lock:
            if self._closed:
                return
            self._take_writes()
            self._tap.eof(now)
            self._flush_audio()
            if not self._closed:
                self._release()


_writev = getattr(os, "writev", None)
#: The most pieces one ``os.writev`` takes (POSIX guarantees 16; Linux allows 1024).
_IOV_MAX = 1024


def write_all(file: IO[bytes], parts: list[bytes]) -> int:
    """Append ``parts`` to an unbuffered binary ``file``; the bytes written.

    One gathering system call per ``_IOV_MAX`` pieces where the platform has
    ``os.writev``: the audio frames are written from where they are, not first copied
    into one buffer. A short write finishes with plain writes.
    """
    total = 0
    for start in range(0, len(parts), _IOV_MAX):
        chunk = parts[start : start + _IOV_MAX]
        size = sum(map(len, chunk))
        done = 0 if _writev is None else _writev(file.fileno(), chunk)
        if done < size:
            rest = memoryview(b"".join(chunk))[done:]
            while rest:
                rest = rest[file.write(rest) or 0 :]
        total += size
    return total


def record_sink(target: RecordTarget | None) -> RecordSink | None:
    """``None`` when not recording; ``TypeError`` for a binary file, before any network."""
    return None if target is None else RecordSink(target)


def load_recordings(path: str | os.PathLike[str]) -> list[Recording]:
    """Read a recording file and the sidecar its header names: one ``Recording`` per
    socket.

    The sidecar is looked for next to the file under the name the header gives (else
    under the file's own name plus ``SIDECAR_SUFFIX``, for a renamed pair).
    ``RecordingError`` (a ``ValueError``) names the bad line; ``OSError`` when the file
    cannot be read.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        raw = file.read()
    try:
        lines = raw.decode("utf-8").split("\n")  # not splitlines(): U+2028 is text
    except UnicodeDecodeError as exc:
        raise RecordingError(f"not a text file ({exc.reason})") from None
    truncated = len(lines) > 1 and not line_is_whole(lines[-1])
    if truncated:  # the writer was stopped inside its last line
        lines.pop()
    return read_recordings(lines, _sidecar(path, lines), truncated=truncated)


def _sidecar(path: str, lines: list[str]) -> bytes | None:
    """The sidecar's bytes if the first line names one and it can be found."""
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        return None  # read_recordings says what is wrong with the line
    name = header.get("sidecar") if isinstance(header, dict) else None
    if not isinstance(name, str):
        return None
    for candidate in (os.path.join(os.path.dirname(path), name), path + SIDECAR_SUFFIX):
        if os.path.isfile(candidate):
            with open(candidate, "rb") as file:
                return file.read()
    return None


def load_recording(path: str | os.PathLike[str], socket: int = 0) -> Recording:
    """One socket's session from a recording file (the first by default)."""
    recordings = load_recordings(path)
    if not 0 <= socket < len(recordings):
        raise RecordingError(f"the recording has {len(recordings)} socket(s), not {socket + 1}")
    return recordings[socket]
