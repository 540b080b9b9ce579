"""Built-in lossless reconnect (``connect(..., reconnect=...)``), written once for all adapters.

A reconnecting stream is a chain of ordinary single-socket streams. What to do across
them is decided here, without I/O, by ``Session``: its ``open_first()`` and ``run()``
are generators that *yield operations* (``("open",)``, ``("sleep", 0.5)``,
``("send", chunk)``, ``("next",)``, ...) and receive their results. Each adapter only
supplies a *link* that performs them with its own primitives (``link.op_open()``,
``link.op_sleep(delay)``, ...) and drives the generator with ``drive_async`` (asyncio,
trio) or ``drive_sync`` (threads). ``AsyncReconnectingStream`` is the app-facing stream
for both async runtimes; the blocking adapter has its own, on the same ``Session``.

The one clock and the replay come from a per-endpoint ``Resume`` strategy: it builds
the replay buffer, which records sent audio, moves each event onto the stream's audio
clock and forgets audio once finals cover it. ``/v1/listen`` uses ``ReplayBuffer``
(replays from ``replay_from``, which no final cuts a word at; its ``view``, applied by
each socket's core, rebases Results, UtteranceEnd, SpeechStarted and removes the words
a replay repeats, so the app, the utterances and the stats see the same events);
``/v2/listen`` uses ``FluxReplayBuffer`` (settled by ``audio_window_end`` of each
EndOfTurn; TurnInfo rebased onto the stream's clock and turn count) and merges Configure
deltas, so a new socket gets every setting in force. ``AsyncReconnectingStream`` and
``AsyncFluxReconnectingStream`` share ``AsyncReconnectingBase``; each adds only its
endpoint's commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
    suppress,
)
from typing import Any, Protocol, TypeVar

from dgproto._errors import ConnectionClosedError
from dgproto._events import Closed, Event, FinalizeComplete, Reconnected, Reconnecting
from dgproto._flux_options import FluxOptions
from dgproto._flux_resume import FluxReplayBuffer
from dgproto._options import LiveOptions
from dgproto._reconnect import ReconnectPolicy
from dgproto._resume import ReplayBuffer, StreamView, should_reconnect
from dgproto._session import Tracking
from dgproto._state import State
from dgproto._stats import StreamStats

from ._common import EventBuffer

__all__ = [
    "FLUX_RESUME",
    "LISTEN_RESUME",
    "AsyncFluxReconnectingStream",
    "AsyncReconnectingBase",
    "AsyncReconnectingStream",
    "Replay",
    "Resume",
    "Session",
    "drive_async",
    "drive_sync",
]

E = TypeVar("E", bound=Event)

#: What the session generators yield: an operation name and its arguments.
Op = tuple[Any, ...]
Steps = Generator[Op, Any, Any]


class Replay(Protocol):
    """The replay buffer a ``Resume`` strategy builds (``ReplayBuffer`` for /v1/listen)."""

    bytes_per_second: int

    @property
    def offset(self) -> float: ...

    @property
    def seconds_dropped(self) -> float: ...

    @property
    def view(self) -> StreamView | None: ...

    def record(self, chunk: bytes | bytearray | memoryview) -> None: ...

    def settle(self, event: E) -> E: ...

    def resume(self) -> list[bytes]: ...


#: A ``configure()`` call's arguments, as the stream's ``configure`` takes them.
ConfigureArgs = tuple[Any, ...]


class Resume(Protocol):
    """Per-endpoint knowledge: how to replay audio, keep events on one clock, and which
    Configure to send again on a new socket."""

    def replay(self, options: Any, max_seconds: float) -> Replay: ...

    def configured(self, kept: ConfigureArgs | None, args: ConfigureArgs) -> ConfigureArgs: ...


class _ListenResume:
    """``/v1/listen``: finals by ``Results.end``, timestamps moved by ``rebase``; the last
    Configure is the one in force."""

    def replay(self, options: LiveOptions | None, max_seconds: float) -> Replay:
        if options is None:
            raise ValueError("reconnect needs LiveOptions with encoding and sample_rate")
        return ReplayBuffer.for_options(options, max_seconds=max_seconds)

    def configured(self, kept: ConfigureArgs | None, args: ConfigureArgs) -> ConfigureArgs:
        return args


class _FluxResume:
    """``/v2/listen``: settled by ``EndOfTurn.audio_window_end``; Configure is a delta
    (thresholds merge, a given list replaces the last), so the deltas are merged."""

    def replay(self, options: FluxOptions, max_seconds: float) -> Replay:
        return FluxReplayBuffer.for_flux(options, max_seconds=max_seconds)

    def configured(self, kept: ConfigureArgs | None, args: ConfigureArgs) -> ConfigureArgs:
        old = kept or (None, None, None, None)
        thresholds = {**(old[0] or {}), **(args[0] or {})} or None
        lists = (new if new is not None else o for o, new in zip(old[1:], args[1:], strict=True))
        return (thresholds, *lists)


LISTEN_RESUME: Resume = _ListenResume()
FLUX_RESUME: Resume = _FluxResume()


class Session:
    """Everything a reconnecting stream decides, for any runtime; no I/O.

    The app side calls ``audio``/``finalize``/``configure``/``close``, which record the
    call and say whether to pass it straight to the current socket (``live``). While a
    socket is being replaced, audio is recorded (and replayed later) instead. Runtimes
    that use threads hold their lock around every call and every generator step.
    """

    def __init__(
        self,
        policy: ReconnectPolicy,
        replay: Replay,
        options: LiveOptions | FluxOptions | None = None,
        resume: Resume = LISTEN_RESUME,
    ) -> None:
        self.policy = policy
        self.replay = replay
        self._resume_rule = resume
        #: The stream's options (``send_paced`` reads the audio format from them).
        self.options = options
        #: The stream's stats and utterances, shared by every socket's connection: the
        #: figures add up, and a drop does not end the utterance in progress.
        self.tracking = Tracking()
        #: Every socket's ``dg-request-id``, in order.
        self.request_ids: list[str | None] = []
        #: How many times a new socket replaced a dropped one.
        self.reconnects = 0
        #: True while audio may go straight to the current socket.
        self.live = False
        self.closing = False
        self.aborted = False
        #: The last socket's ``Closed`` (the stream's once it is over).
        self.last_closed: Closed | None = None
        self._backlog: deque[bytes] = deque()  # audio sent while not live, not yet re-sent
        self._finalizes: deque[int | None] = deque()  # finalize() calls not yet answered
        self._configure: ConfigureArgs | None = None
        self._force_end_turn = False  # force_end_turn() during an outage, not yet sent

    # -- the app's side: True means "also send it on the current socket now"

    def audio(self, chunk: bytes | bytearray | memoryview) -> bool:
        self.replay.record(chunk)
        if not self.live:
            self._backlog.append(bytes(chunk))
        return self.live

    def finalize(self, channel: int | None) -> bool:
        self._finalizes.append(channel)
        return self.live

    def configure(self, *args: Any) -> bool:
        self._configure = self._resume_rule.configured(self._configure, args)
        return self.live

    def force_end_turn(self) -> bool:
        """Flux: end the turn now; during an outage, once the replay is sent."""
        if not self.live:
            self._force_end_turn = True
        return self.live

    def close(self) -> bool:
        first = not self.closing
        self.closing = True
        return first and self.live

    # -- the supervisor's side

    def _aborted(self) -> bool:
        return self.aborted

    def open_first(self) -> Steps:
        """Open the first socket, retrying connection errors and 429/5xx per the policy."""
        delays = self.policy.delays()
        attempt = 0
        while True:
            try:
                request_id = yield ("open",)
            except Exception as exc:
                attempt += 1
                if (
                    not self.policy.retry_first_connect
                    or attempt > self.policy.max_attempts
                    or not should_reconnect(exc)
                ):
                    raise
                yield ("sleep", next(delays))
                continue
            yield from self._resume(request_id)
            return

    def run(self) -> Steps:
        """Forward the sockets' events until the stream is over; reconnect in between."""
        while True:
            closed = yield from self._pump()
            yield ("release",)
            self.last_closed = closed
            if self.aborted or not should_reconnect(closed):
                break
            if not (yield from self._reconnect(closed)):
                break
        # The utterances in progress end now (a socket's drop did not end them), then
        # every finalize() still waiting, then the one Closed of the stream.
        utterances = self.tracking.utterances
        for utterance in utterances.close() if utterances is not None else ():
            yield ("emit", utterance)
        while self._finalizes:
            channel = self._finalizes.popleft()
            yield ("emit", FinalizeComplete(channel=channel, reason="closed"))
        yield ("emit", self.last_closed)

    def _pump(self) -> Generator[Op, Any, Closed]:
        while True:
            received: Event = yield ("next",)
            event = self.replay.settle(received)  # the core applied the replay's view
            if isinstance(event, Closed):
                self.live = False
                return event
            if isinstance(event, FinalizeComplete):
                if event.reason == "closed":
                    continue  # the socket died first: re-sent on the next one
                if self._finalizes:
                    self._finalizes.popleft()
            yield ("emit", event)

    def _reconnect(self, closed: Closed) -> Generator[Op, Any, bool]:
        delays = self.policy.delays()
        for attempt in range(1, self.policy.max_attempts + 1):
            delay = next(delays)
            yield ("emit", Reconnecting(attempt=attempt, delay=delay, closed=closed))
            yield ("sleep", delay)
            if self.aborted:
                return False
            try:
                request_id = yield ("open",)
            except Exception as exc:
                if not should_reconnect(exc):
                    return False
                continue
            if self._aborted():  # abort() came while the socket opened
                yield ("release",)
                return False
            self.reconnects += 1
            stats = self.tracking.stats
            if stats is not None:  # None only without a real connection (tests' fakes)
                stats.on_reconnect()
            dropped = self.replay.seconds_dropped
            replayed = yield from self._resume(request_id)
            yield (
                "emit",
                Reconnected(
                    attempt=attempt,
                    request_id=request_id,
                    replayed_seconds=replayed,
                    dropped_seconds=self.replay.seconds_dropped - dropped,
                ),
            )
            return True
        return False

    def _resume(self, request_id: str | None) -> Generator[Op, Any, float]:
        """Queue on the new socket: the Configure, the replay, the backlog, the finalizes."""
        self.request_ids.append(request_id)
        chunks = self.replay.resume()
        # this socket's events, on the stream's clock and without the words a replay
        # repeats, before the app, the utterances and the stats see them
        self.tracking.offset = self.replay.offset
        self.tracking.view = self.replay.view
        self._backlog.clear()  # everything recorded so far is in the replay
        if self._configure is not None:
            yield ("configure", *self._configure)
        for chunk in chunks:
            yield ("send", chunk)
        finalizes = 0
        while True:  # the app may add to both while we send
            if self._backlog:
                yield ("send", self._backlog.popleft())
            elif finalizes < len(self._finalizes):
                yield ("finalize", self._finalizes[finalizes])
                finalizes += 1
            else:
                break
        if self._force_end_turn:
            self._force_end_turn = False
            yield ("force_end_turn",)
        self.live = True
        if self.closing:
            yield ("close_stream",)
        return sum(map(len, chunks)) / self.replay.bytes_per_second


async def drive_async(steps: Steps, link: Any) -> Any:
    """Run a session generator, awaiting ``link.op_<name>(*args)`` for each operation."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            op = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = await getattr(link, "op_" + op[0])(*op[1:])
        except Exception as exc:  # thrown into the generator, which decides
            error = exc


def drive_sync(steps: Steps, link: Any, lock: AbstractContextManager[Any]) -> Any:
    """``drive_async`` for threads: each generator step runs holding ``lock``."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            with lock:
                op = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = getattr(link, "op_" + op[0])(*op[1:])
        except Exception as exc:
            error = exc


# --------------------------------------------------------------------------- async runtimes


class Signal(Protocol):
    """A runtime's "something changed" pulse (asyncio or trio)."""

    def pulse(self) -> None: ...

    async def wait(self, timeout: float | None = None) -> None: ...

    def now(self) -> float: ...


class InnerStream(Protocol):
    """What a reconnecting stream needs of a single-socket async stream (any endpoint)."""

    @property
    def request_id(self) -> str | None: ...

    @property
    def audio_seconds_sent(self) -> float | None: ...

    async def send_audio(self, chunk: bytes | bytearray | memoryview) -> None: ...

    def configure(self, *args: Any, **kwargs: Any) -> Awaitable[None]: ...

    def post(self, command: str, *args: Any) -> None: ...

    async def abort(self) -> Closed: ...

    def __anext__(self) -> Awaitable[Event]: ...


class ReconnectingState:
    """What every adapter's reconnecting stream exposes, read from its ``Session``."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._buffer = EventBuffer()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__name__} state={self.state.name}"
            f" request_id={self.request_id} reconnects={self.reconnects}>"
        )

    @property
    def request_id(self) -> str | None:
        """The current (or last) socket's ``dg-request-id``."""
        ids = self._session.request_ids
        return ids[-1] if ids else None

    @property
    def request_ids(self) -> list[str | None]:
        """Every socket's ``dg-request-id``, oldest first: quote them in support requests."""
        return list(self._session.request_ids)

    @property
    def reconnects(self) -> int:
        """How many times a new socket replaced a dropped one."""
        return self._session.reconnects

    @property
    def stats(self) -> StreamStats:
        """The stream's figures, summed over its sockets (``reconnects`` included)."""
        stats = self._session.tracking.stats
        return StreamStats() if stats is None else stats.snapshot()

    @property
    def options(self) -> LiveOptions | FluxOptions | None:
        """The options the stream was opened with."""
        return self._session.options

    @property
    def state(self) -> State:
        """``OPEN`` (also while reconnecting), ``CLOSING`` after ``close()``, ``CLOSED``."""
        if self._buffer.closed is not None:
            return State.CLOSED
        return State.CLOSING if self._session.closing else State.OPEN

    @property
    def closed(self) -> Closed | None:
        """The stream's final ``Closed`` once it is over (not a replaced socket's)."""
        return self._buffer.closed

    def _check(self) -> None:
        """``ConnectionClosedError`` once the stream is over or aborted."""
        session = self._session
        closed = self._buffer.closed or (session.last_closed if session.aborted else None)
        if closed is not None:
            raise ConnectionClosedError(closed)

    def _end_anyway(self) -> None:
        """The supervisor stopped (normally, cancelled, or a bug): nobody may wait forever."""
        if self._buffer.closed is None:
            closed = self._session.last_closed or Closed(
                code=1006, reason="the stream was ended locally", initiator="client"
            )
            self._buffer.push(closed)


class AsyncReconnectingBase(ReconnectingState):
    """A stream that replaces dropped sockets (asyncio and trio), any endpoint.

    Same calls as the single-socket stream, plus ``request_ids`` and ``reconnects``.
    Iteration yields ``Reconnecting``/``Reconnected`` among the events (and each new
    socket's ``Connected``), all on one audio clock, and ``Closed`` once, last.
    """

    def __init__(
        self,
        session: Session,
        signal: Signal,
        open_socket: Callable[[], AbstractAsyncContextManager[InnerStream]],
    ) -> None:
        super().__init__(session)
        self._signal = signal
        self._open_socket = open_socket
        self._sockets = AsyncExitStack()
        self._inner: InnerStream | None = None

    async def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        """Send audio; during an outage it is kept (``replay_seconds``) and replayed."""
        self._check()
        inner = self._inner
        if self._session.audio(chunk) and inner is not None:
            with suppress(ConnectionClosedError):
                await inner.send_audio(chunk)

    async def close(self) -> Closed:
        """CloseStream and drain; during an outage, first reconnect and replay."""
        inner = self._inner
        if self._session.close() and inner is not None:
            inner.post("close_stream")
        self._buffer.lift()
        try:
            while self._buffer.closed is None:
                await self._signal.wait()
            return self._buffer.closed
        finally:
            self._buffer.unlift()
            self._signal.pulse()

    async def abort(self) -> Closed:
        """Close now, without draining or reconnecting."""
        self._session.aborted = True
        inner = self._inner
        closed = await inner.abort() if inner is not None else None
        self._signal.pulse()
        final = self._buffer.closed or self._session.last_closed or closed
        assert final is not None
        return final

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        buffer = self._buffer
        while True:
            event = buffer.pop()
            if event is not None:
                self._signal.pulse()  # room for the supervisor again
                return event
            if buffer.finished:
                raise StopAsyncIteration
            await self._signal.wait()

    # -- the supervisor (one task) and its link operations

    async def supervise(self, started: Callable[[], None]) -> None:
        """Open the first socket (``started()`` then), then run until the stream is over."""
        try:
            await drive_async(self._session.open_first(), self)
            started()
            await drive_async(self._session.run(), self)
        finally:
            self._end_anyway()
            self._signal.pulse()
            await self.op_release()

    async def op_open(self) -> str | None:
        inner = await self._sockets.enter_async_context(self._open_socket())
        self._inner = inner
        return inner.request_id

    async def op_release(self) -> None:
        self._inner = None
        await self._sockets.aclose()

    async def op_next(self) -> Event:
        while not self._buffer.reading_allowed():
            await self._signal.wait()
        assert self._inner is not None
        return await self._inner.__anext__()

    async def op_sleep(self, delay: float) -> None:
        deadline = self._signal.now() + delay
        while not self._session.aborted:
            left = deadline - self._signal.now()
            if left <= 0:
                return
            await self._signal.wait(left)

    async def op_send(self, chunk: bytes) -> None:
        assert self._inner is not None
        with suppress(ConnectionClosedError):
            await self._inner.send_audio(chunk)

    async def op_configure(self, *args: Any) -> None:
        assert self._inner is not None
        with suppress(ConnectionClosedError):
            await self._inner.configure(*args)

    async def op_close_stream(self) -> None:
        assert self._inner is not None
        self._inner.post("close_stream")

    async def op_emit(self, event: Event) -> None:
        self._buffer.push(event)
        self._signal.pulse()


class AsyncReconnectingStream(AsyncReconnectingBase):
    """A ``/v1/listen`` stream that replaces dropped sockets (asyncio and trio).

    Adds ``configure`` and ``finalize`` to ``AsyncReconnectingBase``.
    """

    async def configure(
        self, keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
    ) -> None:
        """Send a ``Configure``; it is sent again on every new socket."""
        self._check()
        inner = self._inner
        if self._session.configure(keyterms, features) and inner is not None:
            with suppress(ConnectionClosedError):
                await inner.configure(keyterms, features)

    async def finalize(self, channel: int | None = None) -> FinalizeComplete:
        """Flush and wait for this call's ``FinalizeComplete``; across an outage it is
        sent again after the replay, and completes exactly once."""
        self._check()
        slot = self._buffer.expect_finalize()
        inner = self._inner
        if self._session.finalize(channel) and inner is not None:
            inner.post("finalize", channel)
        self._buffer.lift()
        try:
            while slot.result is None:
                await self._signal.wait()
            return slot.result
        finally:
            self._buffer.unlift()
            self._signal.pulse()

    async def op_finalize(self, channel: int | None) -> None:
        assert self._inner is not None
        self._inner.post("finalize", channel)


class AsyncFluxReconnectingStream(AsyncReconnectingBase):
    """A Flux (``/v2/listen``) stream that replaces dropped sockets (asyncio and trio).

    Replays from the last ``EndOfTurn``, so each turn's ``EndOfTurn`` arrives once, with
    times and ``turn_index`` continuing across sockets. Adds ``configure`` and
    ``force_end_turn`` to ``AsyncReconnectingBase``.
    """

    async def configure(
        self,
        thresholds: Mapping[str, float] | None = None,
        keyterms: Sequence[str] | None = None,
        language_hints: Sequence[str] | None = None,
        numerals: bool | None = None,
    ) -> None:
        """Send a ``Configure``; every setting in force is sent again on a new socket."""
        self._check()
        args = (thresholds, keyterms, language_hints, numerals)
        inner = self._inner
        if self._session.configure(*args) and inner is not None:
            with suppress(ConnectionClosedError):
                await inner.configure(*args)

    async def force_end_turn(self) -> None:
        """End the current turn now; during an outage, right after the replay."""
        self._check()
        inner = self._inner
        if self._session.force_end_turn() and inner is not None:
            inner.post("force_end_turn")

    async def op_force_end_turn(self) -> None:
        assert self._inner is not None
        self._inner.post("force_end_turn")
