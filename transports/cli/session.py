"""One session's two halves, with no I/O in them: what to send when (``requests``, a
generator of ``Sleep``/``Send``/``Command`` that the runtimes interpret) and everything
that arrives (``Session``, which hands it to a ``View``).

What is sent when is decided here once for all three runtimes. Ctrl-C only sets a flag
that the generator reads between sleeps of at most ``POLL`` seconds, so it works the
same everywhere: CloseStream, drain, summary.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import attrs

from dgproto._events import Closed, Connected, Event, Metadata, Reconnected, Results
from dgproto._pacing import Pacer
from dgproto._stats import StreamStats

from .sources import AudioFormat, AudioSource

__all__ = [
    "POLL",
    "Command",
    "FinalizeStep",
    "Note",
    "Pause",
    "Request",
    "Send",
    "Session",
    "Sleep",
    "Step",
    "Summary",
    "View",
    "audio_steps",
    "requests",
]

#: Longest sleep between two looks at the Ctrl-C flag and at a pipe with no data yet.
POLL = 0.05


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
class Sleep:
    seconds: float


@attrs.frozen
class Send:
    chunk: bytes


class Command(enum.Enum):
    FINALIZE = "finalize"
    CLOSE = "close"


Request = Sleep | Send | Command


def requests(session: Session, steps: Iterable[Step], speed: float | None) -> Iterator[Request]:
    """What to do, in order: the whole sending side of a session, with no I/O in it.

    Audio is paced at ``speed`` times real time (``None``: as fast as it comes) by the
    library's ``Pacer``; a ``Pause`` restarts its schedule. Stops early on Ctrl-C or once
    the stream closed; always ends with CloseStream.
    """
    rate = session.bytes_per_second
    pacer = None if speed is None or rate is None else Pacer(bytes_per_second=rate, speed=speed)
    for step in steps:
        if session.should_stop():
            break
        if step is None:
            yield Sleep(POLL / 5)
        elif isinstance(step, bytes):
            due = pacer.due() if pacer is not None else None
            if due is not None:
                yield from _sleep_until(session, due)
                if session.should_stop():
                    break
            yield Send(step)
            now = time.monotonic()
            session.sent(len(step), now=now)
            if pacer is not None:
                pacer.sent(len(step), now=now)
        elif isinstance(step, Pause):
            session.pause(step)
            deadline = time.monotonic() + step.seconds
            for sleep in _sleep_until(session, deadline):
                yield sleep
                session.watch_keepalives(time.monotonic())
            session.resume()
            if pacer is not None:
                pacer.restart()
        elif isinstance(step, FinalizeStep):
            session.note(step.note)
            yield Command.FINALIZE
        else:
            session.note(step.text)
    if session.interrupted:
        session.note(
            "interrupted: sending CloseStream and waiting for the last results "
            "(Ctrl-C again quits at once)"
        )
    session.closing()
    yield Command.CLOSE


def _sleep_until(session: Session, deadline: float) -> Iterator[Sleep]:
    while not session.should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        yield Sleep(min(left, POLL))


@attrs.frozen(kw_only=True)
class Summary:
    """The end-of-stream report."""

    request_id: str | None
    audio_seconds: float
    #: Bytes of audio sent; with ``clocked`` False (a container) seconds are unknown.
    audio_bytes: int
    clocked: bool
    elapsed_seconds: float
    finals: int
    lag_median: float | None
    lag_p95: float | None
    interrupted: bool
    closed: Closed | None
    metadata: Metadata | None
    #: Sockets replaced by ``--reconnect`` (0 without it).
    reconnects: int = 0

    @property
    def warnings(self) -> list[str]:
        """What the server said it could not do (the emulator's Metadata ``warnings``)."""
        raw = self.metadata.raw.get("warnings") if self.metadata is not None else None
        if not isinstance(raw, list):
            return []
        return [str(w.get("message")) for w in raw if isinstance(w, dict) and w.get("message")]


class View(Protocol):
    """How a session is shown: a live terminal, plain lines, or JSON lines."""

    def progress(self, sent: float, total: float | None, lag: float | None) -> None: ...
    def results(self, results: Results, lag: float | None, at: float) -> None: ...
    def event(self, event: Event, at: float) -> None: ...
    def note(self, text: str) -> None: ...
    def summary(self, summary: Summary) -> None: ...


class Session:
    """Everything one run knows: what was sent, what arrived, and the stream's figures.

    The figures (result lag, KeepAlives sent) are the library's ``stream.stats``, read
    through ``attach``. Safe to call from two threads (the blocking adapter receives in
    its own).
    """

    def __init__(self, view: View, audio: AudioFormat, total_seconds: float | None) -> None:
        self.view = view
        self.total_seconds = total_seconds
        self.started = time.monotonic()
        self._bytes_per_second = audio.bytes_per_second
        self._bytes_sent = 0
        self._last_lag: float | None = None
        self._stats: Callable[[], StreamStats] = StreamStats
        self._keepalives_seen = 0
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
        self.reconnects = 0

    def attach(self, stats: Callable[[], StreamStats]) -> None:
        """Read the stream's figures from ``stats`` (``lambda: stream.stats``)."""
        self._stats = stats

    @property
    def bytes_per_second(self) -> int | None:
        """The audio's byte rate; ``None`` for a container."""
        return self._bytes_per_second

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio sent; 0 for a container, which has no byte clock."""
        rate = self._bytes_per_second
        return 0.0 if rate is None else self._bytes_sent / rate

    def should_stop(self) -> bool:
        """True once the sender should stop: Ctrl-C, or the stream is over."""
        return self.interrupted or self.closed is not None

    def interrupt(self) -> None:
        """Called by the SIGINT handler: only sets a flag (printing there could reenter)."""
        self.interrupted = True

    def sent(self, size: int, *, now: float) -> None:
        with self._lock:
            self._bytes_sent += size
            if self._bytes_per_second is not None:  # a container has no seconds to show
                self.view.progress(self.audio_seconds, self.total_seconds, self._last_lag)

    def pause(self, step: Pause) -> None:
        with self._lock:
            self.pausing = step
            self._paused_at = time.monotonic()
            self._keepalives_seen = self._stats().keepalives_sent
        self.note(step.note)

    def resume(self) -> None:
        with self._lock:
            self.pausing = None

    def closing(self) -> None:
        self.close_sent = True

    def watch_keepalives(self, now: float) -> None:
        """During a pause: narrate each KeepAlive the library sent (``stats``)."""
        sent = self._stats().keepalives_sent
        with self._lock:
            while self._keepalives_seen < sent:
                self._keepalives_seen += 1
                self.keepalives += 1
                into = now - self._paused_at
                self.view.note(f"-> KeepAlive, {into:.1f} s into the silence")

    def note(self, text: str) -> None:
        if text:
            with self._lock:
                self.view.note(text)

    def event(self, event: Event, *, now: float) -> None:
        at = now - self.started
        with self._lock:
            if isinstance(event, Results):
                lag = None
                if event.is_final and event.transcript:
                    # the library timed this final as it arrived: its lag is the latest
                    lag = self._stats().result_lag_last
                    self.finals.append(event)
                    self._last_lag = lag
                self.view.results(event, lag, at)
                return
            if isinstance(event, Connected):
                self.request_id = event.request_id
            elif isinstance(event, Metadata):
                self.metadata = event
            elif isinstance(event, Closed):
                self.closed = event
            elif isinstance(event, Reconnected):
                self.reconnects += 1
            self.view.event(event, at)

    def summary(self) -> Summary:
        stats = self._stats()
        return Summary(
            request_id=self.request_id,
            audio_seconds=self.audio_seconds,
            audio_bytes=self._bytes_sent,
            clocked=self._bytes_per_second is not None,
            elapsed_seconds=time.monotonic() - self.started,
            finals=len(self.finals),
            lag_median=stats.result_lag_p50,
            lag_p95=stats.result_lag_p95,
            interrupted=self.interrupted,
            closed=self.closed,
            metadata=self.metadata,
            reconnects=self.reconnects,
        )

    def transcript(self) -> str:
        return " ".join(r.transcript for r in self.finals)
