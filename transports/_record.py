"""``SessionRecorder``: the file side of ``connect(..., record=PATH_OR_FILE)``.

The format and the byte parsing are pure (``dgproto._recording``, ``dgproto._wiretap``);
this module only owns the file. An adapter attaches one without restructuring: wherever
it writes ``conn.data_to_send()`` it also calls ``recorder.sent(data, now)``, wherever it
calls ``conn.receive_data(data)`` it also calls ``recorder.received(data, now)``, and
when the socket ends ``recorder.close(now)``. ``now`` is the adapter's own clock (the
one it passes the core). Tap only the core's bytes: a proxy's CONNECT exchange or TLS
records must not reach it (it would take the CONNECT for the upgrade request).
Pass the credentials as ``secrets=`` too (API key, token, proxy password): on top of the
fixed redaction rules, they are scrubbed from anything in the request that carries them.

Lines are buffered by the file object and flushed on ``close()``; a file object passed
in is flushed but left open (its owner closes it), a path is opened and closed here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import IO

from dgproto._recording import Recording, read_recording
from dgproto._wiretap import WireTap

__all__ = ["RecordTarget", "SessionRecorder", "load_recording", "open_recorder"]

#: What ``record=`` accepts: a path, or a text file opened for writing.
RecordTarget = str | os.PathLike[str] | IO[str]


class SessionRecorder:
    """A ``WireTap`` writing to one file; see the module docstring for the calls."""

    def __init__(self, target: RecordTarget, *, secrets: Sequence[str] = ()) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._file: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._tap = WireTap(self._file.write, secrets=secrets)
        self.sent = self._tap.sent
        self.received = self._tap.received
        self._closed = False

    def close(self, now: float) -> None:
        """The session ended: finish a pending rejection record, flush, close a path."""
        if self._closed:
            return
        self._closed = True
        self._tap.eof(now)
        self._file.flush()
        if self._owned:
            self._file.close()


def open_recorder(
    target: RecordTarget | None, *, secrets: Sequence[str] = ()
) -> SessionRecorder | None:
    """``None`` when not recording, so adapters can write ``if rec: rec.sent(...)``."""
    if target is None:
        return None
    if isinstance(target, (io.RawIOBase, io.BufferedIOBase)):
        raise TypeError("record= needs a path or a text file (open(..., 'w')), not a binary one")
    return SessionRecorder(target, secrets=secrets)


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a recording file (``RecordingError``, a ``ValueError``, names the bad line)."""
    with open(path, encoding="utf-8") as file:
        return read_recording(file)
