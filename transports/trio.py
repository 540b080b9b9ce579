"""The trio adapter: ``async with connect(...) as stream``.

The ``connect`` context manager owns a nursery with two tasks that live exactly as long
as the block. Every write holds one ``trio.StrictFIFOLock`` and takes the core's
``data_to_send()`` under it, so bytes leave in the core's order and a KeepAlive can never
interleave with an audio frame:

* on plain TCP the **app's task writes** its own audio and commands: ``send_audio``
  queues the frame in the core and writes it from the caller, with no hand-off to
  another task. Returning means the frame is on the socket: that is the backpressure.
  Each socket send is cancellable only before it sent anything, so a cancelled write
  leaves its rest to the sender: the frame goes out whole and the stream stays usable.
* the **sender** writes what the app does not: KeepAlive and other timer-driven bytes,
  pongs, the close frame, ``post()``, a cancelled write's rest, and (on TLS, whose
  writes cannot be resumed midway) everything, while the app waits for its frame.
* the **reader** feeds received bytes to the core and runs the core's timer: it waits
  in a cancel scope whose deadline is ``get_timer()``. Audio only moves the KeepAlive
  later, so ``send_audio`` leaves the deadline alone (the reader wakes early once, finds
  nothing due and re-aims); other commands re-aim it when it changed. Clock:
  ``trio.current_time()``, so ``trio.testing.MockClock`` drives every timeout. When
  the ``EventBuffer`` is full (policy in ``_common``) it stops reading but keeps the
  timer, so KeepAlive still goes out. The iterating task is woken only when events
  arrived.

Cancellation is trio's own: cancel scopes around ``connect`` or any call work, and
``Cancelled`` always propagates. Exceptions from inside the block come out as
themselves, not wrapped in an exception group. Leaving the block without ``close()``
aborts the stream.
"""

from __future__ import annotations

import functools
import logging
import math
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

try:
    import trio
except ImportError as exc:  # say which extra brings it, not just "No module named 'trio'"
    raise ImportError(
        "dgproto.transports.trio needs trio, an optional dependency: pip install 'dgproto[trio]'"
    ) from exc

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._events import Closed, Event, FinalizeComplete
from dgproto._flux import FluxConnection
from dgproto._flux_options import FluxOptions
from dgproto._options import Auth, LiveOptions
from dgproto._pacing import DEFAULT_CHUNK_SECONDS
from dgproto._reconnect import ReconnectPolicy, reconnect_policy
from dgproto._session import StreamConnection, Tracking
from dgproto._state import State

from ._common import (
    CLOSE_FLUSH_TIMEOUT,
    READ_SIZE,
    ConnectArgs,
    EventBuffer,
    FinalizeSlot,
    FluxState,
    ListenMetadata,
    Plan,
    StreamState,
    WireTrace,
    check_sendable,
    make_plan,
    open_failure,
)
from ._pacing import AudioSource, send_paced_trio
from ._proxy import FROM_ENV, ConnectTunnel, FromEnv, Proxy
from ._reconnect import (
    FLUX_RESUME,
    LISTEN_RESUME,
    AsyncFluxReconnectingStream,
    AsyncReconnectingBase,
    AsyncReconnectingStream,
    Resume,
    Session,
)
from ._record import RecordTarget, record_sink

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "FluxReconnectingStream",
    "FluxStream",
    "ListenStream",
    "ReconnectingStream",
    "connect",
]

C = TypeVar("C", bound=StreamConnection)

logger = logging.getLogger("dgproto.transports.trio")

_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


def _deadline(at: float | None) -> float:
    return math.inf if at is None else at


class _Paced:
    """``send_paced`` for every trio stream: single-socket or reconnecting, any endpoint."""

    async def send_paced(
        self,
        source: AudioSource,
        *,
        speed: float = 1.0,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        bytes_per_second: int | None = None,
    ) -> int:
        """Send bytes, a binary file or (async) chunks at ``speed`` x real time; bytes sent.

        Chunks of ``chunk_seconds`` cut from the options' format (``bytes_per_second``
        for WAV or compressed audio); a late chunk is caught up at no more than 1.25x.
        Does not close the stream.
        """
        return await send_paced_trio(
            cast(Any, self),
            source,
            speed=speed,
            chunk_seconds=chunk_seconds,
            bytes_per_second=bytes_per_second,
        )


class _Stream(_Paced, StreamState[C]):
    """What every trio stream does, whatever the endpoint: the pump (the app's writes,
    the sender and the reader), audio, close, abort, iteration and the state attributes.
    ``ListenStream`` and ``FluxStream`` add their endpoint's commands."""

    def __init__(self, conn: C, transport: trio.abc.Stream) -> None:
        super().__init__(conn)
        self._transport = transport
        #: A plain TCP stream's socket: the app's task writes to it directly (see the
        #: module docs). ``None`` for TLS, whose writes the sender task makes.
        self._socket = transport.socket if isinstance(transport, trio.SocketStream) else None
        self._buffer = EventBuffer()
        self._trace = WireTrace(logger)
        self._changed = trio.Event()  # replaced on every pulse
        self._wakeup = trio.Event()  # wakes the sender
        self._sender_done = trio.Event()
        #: Every write (the app's and the sender's) holds it: bytes leave in the core's order.
        self._send_lock = trio.StrictFIFOLock()
        #: Bytes taken from the core but not yet on the socket (a write was cancelled
        #: midway): whoever holds the lock next writes them first.
        self._pending = b""
        self._read_scope: trio.CancelScope | None = None
        self._reader_parked = False  # the reader waits for the app to take events
        self._queued = 0  # app commands queued in the core so far
        self._written = 0  # of those, how many the sender has written
        self._error: BaseException | None = None

    # -- the pump, split between the tasks

    def _after(self) -> None:
        """After a core call other than ``send_audio``: hand events over, wake the
        sender (a timer or a pong may have queued bytes), re-aim the reader's timer."""
        conn = self._conn
        moved = self._buffer.collect(conn, self._trace)
        self._wakeup.set()
        scope = self._read_scope
        if scope is not None:
            if conn.should_close_transport:
                scope.cancel()
            else:
                deadline = _deadline(conn.get_timer())
                if deadline != scope.deadline:
                    scope.deadline = deadline
        if moved:
            self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _queue(self) -> int:
        """Note an app command just queued in the core; its number for ``_written_through``."""
        self._queued += 1
        self._after()
        return self._queued

    async def _written_through(self, number: int) -> None:
        """Wait until command ``number`` is on the socket (the send backpressure)."""
        while self._written < number:
            if self._sender_done.is_set():  # nothing more will be written: the stream ended
                check_sendable(self._conn)
            await self._changed.wait()

    async def _flush(self, number: int) -> None:
        """Write app command ``number``'s bytes (and anything queued before them).

        On plain TCP the calling task writes, under the lock the sender shares: no
        hand-off, no wake-up. A write cancelled midway leaves its rest in ``_pending``
        for the sender, so the frame still goes out whole and the stream stays usable.
        TLS cannot be resumed midway, so there the sender writes and the app waits.
        """
        sock = self._socket
        if sock is None:
            self._wakeup.set()
            await self._written_through(number)
            return
        lock = self._send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            if not await self._write_locked(sock):
                await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            if self._pending:
                self._wakeup.set()  # the sender finishes the frame
            raise
        except (OSError, *_TRANSPORT_ERRORS) as exc:
            self._pending = b""
            self._lost(exc)
        finally:
            lock.release()
        check_sendable(self._conn)  # a write that failed ended the stream

    async def _write_locked(self, sock: Any) -> bool:
        """Write ``_pending``, then what the core queued; the lock is held. True if any."""
        data = self._conn.data_to_send()
        if data:
            self._trace.sent(data)
            self._pending = self._pending + data if self._pending else data
        elif not self._pending:
            return False
        if sock is None:
            data, self._pending = self._pending, b""
            await self._transport.send_all(data)  # only the sender: never cancelled midway
            return True
        while self._pending:
            # One socket send is cancellable only before it sent anything.
            sent = await sock.send(self._pending)
            self._pending = self._pending[sent:]
        return True

    def _lost(self, exc: BaseException) -> None:
        self._error = self._error or _os_error(exc) or exc
        self._conn.receive_eof(now=trio.current_time())  # a no-op once Closed
        self._after()
        self._pulse()

    async def _send_loop(self) -> None:
        """Writes what the reader's side queues (KeepAlive, pongs, the close frame), what
        ``post()`` and ``close()`` queue, a cancelled write's rest, and on TLS everything."""
        conn = self._conn
        lock = self._send_lock
        try:
            while True:
                number = self._queued
                async with lock:
                    wrote = await self._write_locked(self._socket)
                if self._written != number:
                    self._written = number
                    self._pulse()
                if wrote:
                    continue
                if conn.should_close_transport:
                    return
                await self._wakeup.wait()
                self._wakeup = trio.Event()
        except (OSError, *_TRANSPORT_ERRORS) as exc:
            self._pending = b""
            self._lost(exc)
        finally:
            self._sender_done.set()
            self._pulse()

    async def _read_loop(self) -> None:
        conn = self._conn
        try:
            while not conn.should_close_transport:
                data: bytes | bytearray | None = None
                with trio.CancelScope(deadline=_deadline(conn.get_timer())) as scope:
                    self._read_scope = scope
                    if self._buffer.reading_allowed():
                        data = await self._transport.receive_some(READ_SIZE)
                    else:
                        self._reader_parked = True
                        try:
                            await self._changed.wait()  # for the app to take events
                        finally:
                            self._reader_parked = False
                self._read_scope = None
                now = trio.current_time()
                if data is not None:
                    self._trace.received(data)
                    conn.receive_data(data, now=now)  # b"" is EOF
                at = conn.get_timer()
                # send_audio moves the KeepAlive later without re-aiming the scope, so
                # the scope may end early: then nothing is due and the loop re-aims.
                if at is not None and now >= at:
                    conn.handle_timer(now=now)
                self._after()
        except _TRANSPORT_ERRORS as exc:
            self._lost(exc)
        # Over: give the sender a moment for our close frame, then close the socket.
        with trio.move_on_after(CLOSE_FLUSH_TIMEOUT):
            await self._sender_done.wait()
        await trio.aclose_forcefully(self._transport)

    async def _open(self, started: float) -> None:
        self._conn.connect(now=started)
        self._after()
        buffer = self._buffer
        while buffer.connected is None and buffer.closed is None:
            await self._changed.wait()
        if buffer.connected is None:
            raise open_failure(buffer) from self._error

    def _abort(self) -> None:
        """Synchronous, so it works in a cancelled scope: the tasks finish the job."""
        self._conn.abort(now=trio.current_time())
        self._after()
        self._pulse()

    # -- the app's side

    async def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        """Send one chunk of audio as a binary frame (``b""`` sends nothing).

        Returns once the frame is written to the socket, so a slow network slows the
        caller. Raises ``ConnectionClosedError`` once the stream is closed.
        """
        conn = self._conn
        check_sendable(conn)
        # Audio makes no event and only moves the KeepAlive later (see _read_loop), so
        # the pump has nothing to do but write.
        conn.send_audio(chunk, now=trio.current_time())
        self._queued += 1
        await self._flush(self._queued)

    async def _command(self) -> None:
        """After an app command other than audio: the pump, then write it."""
        await self._flush(self._queue())

    async def close(self) -> Closed:
        """Send CloseStream and wait for ``Closed``; every event before it stays queued.

        The server flushes its last results (on ``/v1/listen`` also a Metadata, which
        ``Closed.metadata`` then holds), then closes; all of it reaches the iterator.
        Bounded by ``Config.close_timeout``. Idempotent: later calls (or a call after
        ``abort()`` or a server close) return the same ``Closed``.
        """
        if self._conn.state is State.OPEN:
            self._conn.close_stream(now=trio.current_time())
        self._buffer.lift()
        try:
            self._queue()
            self._pulse()  # a reader parked on a full buffer may read again
            while self._buffer.closed is None:
                await self._changed.wait()
            await trio.lowlevel.checkpoint()
            return self._buffer.closed
        finally:
            self._buffer.unlift()
            self._pulse()

    def post(self, command: str, *args: Any) -> None:
        """Call the core's ``command`` without waiting for an answer, if still open
        (for a reconnecting stream: ``"finalize"``, ``"close_stream"``, ...)."""
        if self._conn.state is State.OPEN:
            getattr(self._conn, command)(*args, now=trio.current_time())
            self._queue()

    def post_close_stream(self) -> None:
        """Send CloseStream without waiting for the close (for a reconnecting stream)."""
        self.post("close_stream")

    async def abort(self) -> Closed:
        """Close now, without draining: a close frame if possible, then the socket.

        Events already received stay available to the iterator, ``Closed`` last.
        """
        self._abort()
        await trio.lowlevel.checkpoint()
        closed = self._conn.closed
        assert closed is not None
        return closed

    def __aiter__(self) -> _Stream[C]:
        return self

    async def __anext__(self) -> Event:
        buffer = self._buffer
        while True:
            event = buffer.pop()
            if event is not None:
                if self._reader_parked:  # it waits for room
                    self._pulse()
                await trio.lowlevel.checkpoint()
                return event
            if buffer.finished:
                await trio.lowlevel.checkpoint()
                raise StopAsyncIteration
            await self._changed.wait()


class ListenStream(_Stream[ListenConnection], ListenMetadata):
    """An open ``/v1/listen`` stream on trio. Get one from ``connect``.

    Any number of tasks may send; use one task to iterate. ``async for event in
    stream`` yields every event, ``Closed`` last, then stops.
    """

    async def send_keepalive(self) -> None:
        """Send a KeepAlive now. Rarely needed: the stream sends one after each idle
        ``Config.keepalive_interval`` by itself."""
        check_sendable(self._conn)
        self._conn.send_keepalive(now=trio.current_time())
        await self._command()

    async def configure(
        self, keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
    ) -> None:
        """Send a ``Configure`` message; the reply arrives as an event."""
        check_sendable(self._conn)
        self._conn.configure(keyterms, features, now=trio.current_time())
        await self._command()

    async def finalize(self, channel: int | None = None) -> FinalizeComplete:
        """Flush Deepgram's buffered audio and wait for this call's ``FinalizeComplete``.

        The same ``FinalizeComplete`` is also delivered to the iterator, so the event
        order there stays intact. Bounded by ``Config.finalize_timeout``.
        """
        check_sendable(self._conn)
        self._conn.finalize(channel, now=trio.current_time())
        slot = self._buffer.expect_finalize()
        return await self._await_slot(slot)

    async def _await_slot(self, slot: FinalizeSlot) -> FinalizeComplete:
        self._buffer.lift()
        try:
            self._queue()
            self._pulse()  # a reader parked on a full buffer may read again
            while slot.result is None:
                await self._changed.wait()
            await trio.lowlevel.checkpoint()
            return slot.result
        finally:
            self._buffer.unlift()
            self._pulse()

    def post_finalize(self, channel: int | None) -> None:
        """Send a Finalize without waiting for its answer (for a reconnecting stream)."""
        self.post("finalize", channel)


class FluxStream(_Stream[FluxConnection], FluxState):
    """An open Flux (``/v2/listen``) stream on trio. Get one from
    ``connect(FluxOptions(...))``.

    Like ``ListenStream`` without ``finalize``/``send_keepalive`` (Flux has neither; an
    idle stream stays open on WebSocket pings), plus Flux's ``configure`` and
    ``force_end_turn``. Events: ``Connected``, ``FluxConnected``, ``TurnInfo``,
    ``ConfigureSuccess``/``ConfigureFailure``, ``ServerWarning``, ``ServerError``, and
    ``Closed`` last.
    """

    async def configure(
        self,
        thresholds: Mapping[str, float] | None = None,
        keyterms: Sequence[str] | None = None,
        language_hints: Sequence[str] | None = None,
        numerals: bool | None = None,
    ) -> None:
        """Send a ``Configure``; ``ConfigureSuccess`` (or ``ConfigureFailure``) answers.

        ``thresholds`` may hold ``eot_threshold``, ``eager_eot_threshold`` and
        ``eot_timeout_ms``; bad values raise ``ValueError`` and send nothing.
        """
        check_sendable(self._conn)
        now = trio.current_time()
        self._conn.configure(thresholds, keyterms, language_hints, numerals, now=now)
        await self._command()

    async def force_end_turn(self) -> None:
        """End the current turn now: an ``EndOfTurn`` (``trigger="manual"``) follows."""
        check_sendable(self._conn)
        self._conn.force_end_turn(now=trio.current_time())
        await self._command()


def _os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind a trio stream error (``ssl.SSLCertVerificationError``, a
    reset, ...), so errors carry what the other adapters' errors carry."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError):
            return cause
        cause = cause.__cause__
    return None


async def _through_proxy(proxy: Proxy, host: str, port: int) -> trio.SocketStream:
    """TCP to the proxy and CONNECT: the stream is then a tunnel to ``host:port``."""
    tunnel = ConnectTunnel(proxy, host, port)
    tcp = await trio.open_tcp_stream(proxy.host, proxy.port)
    try:
        await tcp.send_all(tunnel.request)
        while not tunnel.feed(await tcp.receive_some(1)):
            pass
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return tcp


async def _open_transport(plan: Plan, deadline: float) -> trio.abc.Stream:
    """DNS, TCP and TLS (the handshake done here, so certificate errors surface now)."""
    endpoint = plan.endpoint
    with trio.move_on_at(deadline):
        if plan.proxy is None:
            tcp = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        else:
            tcp = await _through_proxy(plan.proxy, endpoint.host, endpoint.port)
        if plan.ssl_context is None:
            return tcp
        tls = trio.SSLStream(
            tcp, plan.ssl_context, server_hostname=endpoint.host, https_compatible=True
        )
        handshook = False
        try:
            await tls.do_handshake()
            handshook = True
        except trio.BrokenResourceError as exc:
            raise (_os_error(exc) or ConnectionError(f"TLS handshake failed: {exc}")) from None
        finally:
            if not handshook:  # failed, timed out or cancelled
                await trio.aclose_forcefully(tls)
        return tls
    raise TimeoutError(
        f"connecting took longer than open_timeout={plan.conn.config.open_timeout} s"
    )


@overload
def connect(
    options: FluxOptions, *, reconnect: Literal[False] = False, **kwargs: Unpack[ConnectArgs]
) -> AbstractAsyncContextManager[FluxStream]: ...
@overload
def connect(
    options: FluxOptions,
    *,
    reconnect: ReconnectPolicy | Literal[True],
    **kwargs: Unpack[ConnectArgs],
) -> AbstractAsyncContextManager[FluxReconnectingStream]: ...
@overload
def connect(
    options: LiveOptions | None = None,
    *,
    reconnect: Literal[False] = False,
    **kwargs: Unpack[ConnectArgs],
) -> AbstractAsyncContextManager[ListenStream]: ...
@overload
def connect(
    options: LiveOptions | None = None,
    *,
    reconnect: ReconnectPolicy | Literal[True],
    **kwargs: Unpack[ConnectArgs],
) -> AbstractAsyncContextManager[ReconnectingStream]: ...
@overload
def connect(
    options: LiveOptions | FluxOptions | None = None,
    *,
    reconnect: ReconnectPolicy | bool,
    **kwargs: Unpack[ConnectArgs],
) -> AbstractAsyncContextManager[
    ListenStream | ReconnectingStream | FluxStream | FluxReconnectingStream
]: ...
@asynccontextmanager
async def connect(
    options: LiveOptions | FluxOptions | None = None,
    *,
    api_key: str | None = None,
    access_token: str | None = None,
    auth: Auth | None = None,
    url: str | None = None,
    config: Config | None = None,
    ssl_context: ssl.SSLContext | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    reconnect: ReconnectPolicy | bool = False,
    proxy: str | FromEnv | None = FROM_ENV,
    record: RecordTarget | None = None,
) -> AsyncIterator[Any]:
    """Open a live transcription stream: ``async with connect(options, api_key=k) as s``.

    ``LiveOptions`` (or none) open ``/v1/listen`` and give a ``ListenStream``;
    ``FluxOptions`` open Flux's ``/v2/listen`` and give a ``FluxStream``. Without
    ``url``, Deepgram's (``wss://api.deepgram.com/v1/listen`` or ``.../v2/listen``); a
    ``url`` without a path gets the endpoint's path.

    Credentials: at most one of ``api_key`` (``Authorization: Token``), ``access_token``
    (``Bearer``) or ``auth``; with none, ``DEEPGRAM_API_KEY`` is used for ``wss://``.
    ``wss://`` verifies the server's certificate with the system store unless
    ``ssl_context`` says otherwise; ``ws://`` is for the emulator and self-hosted servers.
    Query parameters in ``url`` are kept, and ``options`` are appended to them.

    Raises ``HandshakeError`` if the server refuses the upgrade (status, ``err_code``,
    ``err_msg``, ``request_id``), ``TimeoutError`` after ``Config.open_timeout``,
    ``OSError`` (including ``ssl.SSLError``) when the network or TLS fails, and
    ``ConnectionClosedError`` if the server hangs up during the upgrade.

    ``proxy="http://[user:pass@]host:port"`` tunnels through an HTTP CONNECT proxy (TLS
    to the server still verified end to end); when not given, ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` / ``NO_PROXY`` apply; ``proxy=None`` ignores them. ``open_timeout``
    covers the proxy too; a refused CONNECT raises ``dgproto.transports.ProxyError`` (a
    ``HandshakeError``).

    ``reconnect=True`` (or a ``ReconnectPolicy``) yields a ``ReconnectingStream`` (for
    Flux a ``FluxReconnectingStream``) that replaces dropped sockets losslessly (see
    ``ReconnectPolicy``) and retries the first connect on connection errors and 429/5xx.

    ``record="session.jsonl"`` (a path, or a text file object) records the session for
    ``dgproto replay`` and the emulator's replay: see the README's "Recording a session"
    (credentials are never written; with ``reconnect=``, each socket in turn).

    Leaving the block without ``close()`` aborts the stream: no drain, pending results
    are lost. Call ``await stream.close()`` to end it gracefully.
    """
    plan = functools.partial(
        make_plan,
        options,
        api_key=api_key,
        access_token=access_token,
        auth=auth,
        url=url,
        config=config,
        ssl_context=ssl_context,
        extra_headers=extra_headers,
        proxy=proxy,
        record=record_sink(record),
    )
    first = plan()  # the arguments are checked here, before any network
    policy = reconnect_policy(reconnect)
    if policy is None:
        async with _connect_one(first) as single:
            yield single
        return
    open_socket = lambda tracking: _connect_one(plan(tracking=tracking))  # noqa: E731
    async with _reconnecting(policy, options, open_socket) as stream:
        yield stream


@asynccontextmanager
async def _connect_one(plan: Plan) -> AsyncIterator[ListenStream | FluxStream]:
    """One socket, no reconnect: what ``connect`` does by default."""
    started = trio.current_time()
    conn = plan.conn
    timeout = conn.config.open_timeout
    transport = await _open_transport(plan, math.inf if timeout is None else started + timeout)
    stream: ListenStream | FluxStream
    if isinstance(conn, FluxConnection):
        stream = FluxStream(conn, transport)
    else:
        stream = ListenStream(conn, transport)
    stream._trace.record(plan.recorder, trio.current_time)
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream._send_loop)
            nursery.start_soon(stream._read_loop)
            try:
                await stream._open(started)
                yield stream
            except BaseException as exc:
                # Raised below, outside the nursery, so it is not wrapped in a group.
                error = exc
                if isinstance(exc, trio.Cancelled):
                    nursery.cancel_scope.cancel()  # nothing can be sent any more
            finally:
                stream._abort()
    finally:
        stream._trace.close_recording()
        await trio.aclose_forcefully(transport)
    if error is not None:
        raise error


class _Signal:
    """The reconnecting stream's "something changed" pulse, on trio."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def pulse(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self, timeout: float | None = None) -> None:
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._event.wait()

    def now(self) -> float:
        return trio.current_time()


class ReconnectingStream(_Paced, AsyncReconnectingStream):
    """A ``/v1/listen`` stream on trio that survives dropped sockets.

    Get one from ``connect(..., reconnect=True)``. Same calls as ``ListenStream``, plus
    ``request_ids`` and ``reconnects``; iteration also yields ``Reconnecting`` and
    ``Reconnected``. A task in the block's nursery runs the sockets.
    """


class FluxReconnectingStream(_Paced, AsyncFluxReconnectingStream):
    """A Flux stream on trio that survives dropped sockets.

    Get one from ``connect(FluxOptions(...), reconnect=True)``. Same calls as
    ``FluxStream``, plus ``request_ids`` and ``reconnects``; audio is replayed from the
    last ``EndOfTurn``, and turns keep one clock and one ``turn_index`` count.
    """


@asynccontextmanager
async def _reconnecting(
    policy: ReconnectPolicy,
    options: LiveOptions | FluxOptions | None,
    open_socket: Callable[[Tracking], AbstractAsyncContextManager[Any]],
) -> AsyncIterator[AsyncReconnectingBase]:
    flux = isinstance(options, FluxOptions)
    resume: Resume = FLUX_RESUME if flux else LISTEN_RESUME
    replay = resume.replay(options, policy.replay_seconds)
    session = Session(policy, replay, options, resume)
    kind = FluxReconnectingStream if flux else ReconnectingStream
    stream = kind(session, _Signal(), lambda: open_socket(session.tracking))

    async def supervise(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await stream.supervise(task_status.started)

    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(supervise)
            yield stream
        except BaseException as exc:
            # Raised below, outside the nursery, so it is not wrapped in a group.
            error = exc
        finally:
            session.aborted = True
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error
