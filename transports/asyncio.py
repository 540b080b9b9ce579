"""The asyncio adapter: ``async with connect(...) as stream``.

One ``asyncio.Protocol`` per connection drives the core (``ListenConnection`` or
``FluxConnection``, through the shared ``StreamConnection`` surface) with aioquic's
``transmit()`` pump: after every input (bytes, EOF, a timer, an app call) it writes
``data_to_send()``, moves the events to the stream's buffer, re-arms one
``loop.call_at`` timer from ``get_timer()``, and closes the transport once
``should_close_transport``. There is no background task and no thread: the event loop
calls the protocol, so KeepAlive and the other core timers fire while the app is silent,
and because each write is one synchronous ``transport.write`` of whole frames, a
KeepAlive can never land inside an audio frame.

Backpressure: ``send_audio`` waits while the transport's write buffer is above its high
water mark (``pause_writing``); if cancelled while waiting, the chunk was not sent.
Incoming events follow the ``EventBuffer`` policy in ``_common``: past
``EVENT_QUEUE_SIZE`` waiting events the transport stops reading (``pause_reading``)
while the timer keeps running.

Cancellation is asyncio's own: ``CancelledError`` is never caught. Leaving the ``async
with`` (normally, by an exception or by cancellation) aborts the stream if ``close()``
did not finish it and waits until the socket is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import ConnectionClosedError, LocalProtocolError
from dgproto._events import Closed, Event, FinalizeComplete
from dgproto._flux import FluxConnection
from dgproto._flux_options import FluxOptions
from dgproto._options import Auth, LiveOptions
from dgproto._pacing import DEFAULT_CHUNK_SECONDS
from dgproto._reconnect import ReconnectPolicy, reconnect_policy
from dgproto._session import StreamConnection, Tracking
from dgproto._state import State

from ._common import (
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
from ._pacing import AudioSource, send_paced_asyncio
from ._proxy import FROM_ENV, ConnectTunnel, FromEnv
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

logger = logging.getLogger("dgproto.transports.asyncio")


def _frame_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or ``time.monotonic`` itself when that is all ``loop.time`` does."""
    if getattr(loop.time, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class _Protocol(asyncio.Protocol):
    """The socket side: feeds the core and runs the pump. One per connection."""

    def __init__(self, conn: StreamConnection, *, started: float) -> None:
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        #: The loop's clock, read for every audio frame: asyncio's own loops read
        #: ``time.monotonic``, so that is called directly (one Python frame fewer).
        self.time = _frame_clock(self.loop)
        self.buffer = EventBuffer()
        self.trace = WireTrace(logger)
        #: Pulsed (set, then cleared) whenever the buffer or the state changed.
        self.changed = _Flag(self.loop)
        #: Clear while the transport asks us to stop writing.
        self.writable = _Flag(self.loop, True)
        #: ``writable``, as a plain attribute for the audio hot path.
        self.paused = False
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._started = started
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._reading = True
        self._closing = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # The open timeout counts from connect(), so DNS, TCP and TLS spent part of it.
        self.conn.connect(now=self._started)
        self.transmit()

    def data_received(self, data: bytes) -> None:
        self.trace.received(data)
        self.conn.receive_data(data, now=self.loop.time())
        self.transmit()

    def eof_received(self) -> bool:
        self.conn.receive_eof(now=self.loop.time())
        self.transmit()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if exc is not None and self.error is None:
            self.error = exc
        self.conn.receive_eof(now=self.loop.time())  # a no-op once Closed
        self.transmit()
        self._cancel_timer()
        self.paused = False
        self.writable.set()  # release senders: they will see the Closed
        self.lost.set_result(None)  # asyncio calls this once; waiters shield the future

    def pause_writing(self) -> None:
        self.paused = True
        self.writable.clear()

    def resume_writing(self) -> None:
        self.paused = False
        self.writable.set()

    # -- the pump

    def transmit(self) -> None:
        """After every core call: write, hand events over, re-arm the timer, maybe close."""
        conn = self.conn
        self.write_out()
        moved = self.buffer.collect(conn, self.trace)
        if conn.should_close_transport:
            self._close_transport()
            # A sender parked on a full buffer must see the Closed now: a dead peer
            # never drains the buffer, so resume_writing would never come.
            self.paused = False
            self.writable.set()
        else:
            self._arm_timer()
            self.update_reading()
        if moved:
            self.pulse()

    def write_out(self) -> None:
        """Write what the core queued. After ``send_audio`` this is the whole pump:

        Queuing an audio frame makes no event and only moves the KeepAlive deadline
        later, so nothing else in ``transmit`` can change: the armed timer stays valid
        (it fires early, finds nothing due, and re-arms).
        """
        data = self.conn.data_to_send()
        transport = self.transport
        # A transport asyncio already knows is lost (connection_lost not yet run) only
        # warns on every write; the Closed it is about to report says what happened.
        if data and transport is not None and not self._closing and not transport.is_closing():
            self.trace.sent(data)
            transport.write(data)

    def pulse(self) -> None:
        """Wake every waiter so each re-checks its condition."""
        self.changed.set()
        self.changed.clear()

    def update_reading(self) -> None:
        """Pause or resume reading per the ``EventBuffer`` policy."""
        transport = self.transport
        if transport is None or self._closing:
            return
        allowed = self.buffer.reading_allowed()
        if allowed != self._reading:
            self._reading = allowed
            if allowed:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _arm_timer(self) -> None:
        at = self.conn.get_timer()
        if at == self._timer_at:
            return
        if at is not None and self._timer_at is not None and at > self._timer_at:
            # A later deadline (every frame moves the KeepAlive one): keep the armed
            # timer; it fires early, the core does nothing, and the pump re-arms it.
            return
        self._cancel_timer()
        self._timer_at = at
        if at is not None:
            self._timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at
        assert at is not None
        self._timer = self._timer_at = None
        # The loop may wake a hair early; the core must still see the deadline as reached.
        self.conn.handle_timer(now=max(at, self.loop.time()))
        self.transmit()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def _close_transport(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self._closing:
            self._closing = True
            self.transport.close()  # flushes our last frame, then closes

    # -- waiting

    async def wait_until_open(self) -> None:
        buffer = self.buffer
        while buffer.connected is None and buffer.closed is None:
            await self.changed.wait()
        if buffer.connected is None:
            raise open_failure(buffer) from self.error

    async def wait_closed(self) -> Closed:
        while self.buffer.closed is None:
            await self.changed.wait()
        return self.buffer.closed

    async def shutdown(self) -> None:
        """Abort if still open, then close the socket and wait until it is closed.

        Whatever ``close()`` wanted flushed had its chance; a peer that stopped reading
        must not keep the ``async with`` open, so the transport is aborted, not closed.
        """
        self.conn.abort(now=self.loop.time())
        self.transmit()
        self._cancel_timer()
        transport = self.transport
        if transport is not None and not self.lost.done():
            transport.abort()
            await asyncio.shield(self.lost)  # connection_lost() comes on the next loop turn


class _Paced:
    """``send_paced`` for every asyncio stream: single-socket or reconnecting, any endpoint."""

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
        return await send_paced_asyncio(
            cast(Any, self),
            source,
            speed=speed,
            chunk_seconds=chunk_seconds,
            bytes_per_second=bytes_per_second,
        )


class _Stream(_Paced, StreamState[C]):
    """What every asyncio stream does, whatever the endpoint: audio, close, abort,
    iteration and the state attributes. ``ListenStream`` and ``FluxStream`` add their
    endpoint's commands."""

    def __init__(self, protocol: _Protocol, conn: C) -> None:
        super().__init__(conn)
        self._protocol = protocol

    def _now(self) -> float:
        return self._protocol.loop.time()

    async def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        """Send one chunk of audio as a binary frame (``b""`` sends nothing).

        Waits while the socket's write buffer is full. If cancelled while waiting, the
        chunk was not sent. Raises ``ConnectionClosedError`` once the stream is closed.
        """
        protocol = self._protocol
        conn = self._conn
        if protocol.paused:
            check_sendable(conn)
            await protocol.writable.wait()
        now = protocol.time()
        try:
            data = conn.audio_data_to_send(chunk, now=now)
        except LocalProtocolError:
            # The core sends only while OPEN; once the stream is over, say why instead
            # (checked here, not before every frame: one property call less per frame).
            closed = conn.closed
            if closed is not None:
                raise ConnectionClosedError(closed) from None
            raise
        # write_out(), inline: audio makes no event and only moves the KeepAlive later
        transport = protocol.transport
        if data and transport is not None and not protocol._closing and not transport.is_closing():
            protocol.trace.sent(data, now)
            transport.write(data)

    async def close(self) -> Closed:
        """Send CloseStream and wait for ``Closed``; every event before it stays queued.

        The server flushes its last results (on ``/v1/listen`` also a Metadata, which
        ``Closed.metadata`` then holds), then closes; all of it reaches the iterator.
        Bounded by ``Config.close_timeout``. Idempotent: later calls (or a call after
        ``abort()`` or a server close) return the same ``Closed``.
        """
        protocol = self._protocol
        if self._conn.state is State.OPEN:
            self._conn.close_stream(now=self._now())
        protocol.buffer.lift()
        try:
            protocol.transmit()  # also resumes reading
            return await protocol.wait_closed()
        finally:
            protocol.buffer.unlift()
            protocol.update_reading()

    def post(self, command: str, *args: Any) -> None:
        """Call the core's ``command`` without waiting for an answer, if still open
        (for a reconnecting stream: ``"finalize"``, ``"close_stream"``, ...)."""
        if self._conn.state is State.OPEN:
            getattr(self._conn, command)(*args, now=self._now())
            self._protocol.transmit()

    def post_close_stream(self) -> None:
        """Send CloseStream without waiting for the close (for a reconnecting stream)."""
        self.post("close_stream")

    async def abort(self) -> Closed:
        """Close now, without draining: a close frame if possible, then the socket.

        Events already received stay available to the iterator, ``Closed`` last.
        """
        protocol = self._protocol
        self._conn.abort(now=self._now())
        protocol.transmit()
        closed = self._conn.closed
        assert closed is not None
        return closed

    def __aiter__(self) -> _Stream[C]:
        return self

    async def __anext__(self) -> Event:
        protocol = self._protocol
        buffer = protocol.buffer
        while True:
            event = buffer.pop()
            if event is not None:
                protocol.update_reading()
                return event
            if buffer.finished:
                raise StopAsyncIteration
            await protocol.changed.wait()


class ListenStream(_Stream[ListenConnection], ListenMetadata):
    """An open ``/v1/listen`` stream on asyncio. Get one from ``connect``.

    Safe for any number of tasks on the stream's event loop; not thread-safe.
    ``async for event in stream`` yields every event, ``Closed`` last, then stops;
    use one iterating task.
    """

    async def send_keepalive(self) -> None:
        """Send a KeepAlive now. Rarely needed: the stream sends one after each idle
        ``Config.keepalive_interval`` by itself."""
        check_sendable(self._conn)
        self._conn.send_keepalive(now=self._now())
        self._protocol.transmit()

    async def configure(
        self, keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
    ) -> None:
        """Send a ``Configure`` message; the reply arrives as an event."""
        check_sendable(self._conn)
        self._conn.configure(keyterms, features, now=self._now())
        self._protocol.transmit()

    async def finalize(self, channel: int | None = None) -> FinalizeComplete:
        """Flush Deepgram's buffered audio and wait for this call's ``FinalizeComplete``.

        The same ``FinalizeComplete`` is also delivered to the iterator, so the event
        order there stays intact. Bounded by ``Config.finalize_timeout``.
        """
        protocol = self._protocol
        check_sendable(self._conn)
        self._conn.finalize(channel, now=self._now())
        slot = protocol.buffer.expect_finalize()
        return await self._await_slot(slot)

    async def _await_slot(self, slot: FinalizeSlot) -> FinalizeComplete:
        protocol = self._protocol
        protocol.buffer.lift()
        try:
            protocol.transmit()  # also resumes reading
            while slot.result is None:
                await protocol.changed.wait()
            return slot.result
        finally:
            protocol.buffer.unlift()
            protocol.update_reading()

    def post_finalize(self, channel: int | None) -> None:
        """Send a Finalize without waiting for its answer (for a reconnecting stream)."""
        self.post("finalize", channel)


class FluxStream(_Stream[FluxConnection], FluxState):
    """An open Flux (``/v2/listen``) stream on asyncio. Get one from
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
        self._conn.configure(thresholds, keyterms, language_hints, numerals, now=self._now())
        self._protocol.transmit()

    async def force_end_turn(self) -> None:
        """End the current turn now: an ``EndOfTurn`` (``trigger="manual"``) follows."""
        check_sendable(self._conn)
        self._conn.force_end_turn(now=self._now())
        self._protocol.transmit()


async def _open_connection(plan: Plan, protocol: _Protocol) -> None:
    """DNS, TCP (through the proxy, if any) and TLS, then the upgrade; all of it within
    ``Config.open_timeout``."""
    loop = protocol.loop
    endpoint = plan.endpoint
    timeout = plan.conn.config.open_timeout
    tls: dict[str, Any] = {
        "ssl": plan.ssl_context,
        "server_hostname": endpoint.host if plan.ssl_context is not None else None,
    }
    try:
        if plan.proxy is None:
            opening = loop.create_connection(lambda: protocol, endpoint.host, endpoint.port, **tls)
            await asyncio.wait_for(opening, timeout)
        else:
            await asyncio.wait_for(_through_proxy(plan, protocol, tls), timeout)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        raise TimeoutError(f"connecting took longer than open_timeout={timeout} s") from None
    # The core's open timer (armed from the same start) bounds the rest.
    await protocol.wait_until_open()


async def _through_proxy(plan: Plan, protocol: _Protocol, tls: dict[str, Any]) -> None:
    """CONNECT through ``plan.proxy``, then TLS and the protocol on the tunnel."""
    loop = protocol.loop
    proxy = plan.proxy
    assert proxy is not None
    tunnel = ConnectTunnel(proxy, plan.endpoint.host, plan.endpoint.port)
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, tunnel.request)
        while not tunnel.feed(await loop.sock_recv(sock, 1)):
            pass
        await loop.create_connection(lambda: protocol, sock=sock, **tls)
    except BaseException:
        sock.close()
        raise


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
    loop = asyncio.get_running_loop()
    conn = plan.conn
    protocol = _Protocol(conn, started=loop.time())
    protocol.trace.record(plan.recorder, loop.time)
    try:
        await _open_connection(plan, protocol)
        if isinstance(conn, FluxConnection):
            yield FluxStream(protocol, conn)
        else:
            yield ListenStream(protocol, conn)
    finally:
        try:
            await protocol.shutdown()
        finally:
            protocol.trace.close_recording()


class _Flag:
    """``asyncio.Event``'s set/clear/wait, with its waiters in a list.

    An ``asyncio.Event`` keeps them in a ``deque``, 760 bytes even when empty; two per
    stream were a tenth of an idle stream's memory. Waiters here are one or two tasks.
    """

    __slots__ = ("_loop", "_set", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, value: bool = False) -> None:
        self._loop = loop
        self._set = value
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        if not self._set:
            self._set = True
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)


class _Signal:
    """The reconnecting stream's "something changed" pulse, on asyncio."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def pulse(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> None:
        event = self._event
        if timeout is None:
            await event.wait()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def now(self) -> float:
        return self._loop.time()


class ReconnectingStream(_Paced, AsyncReconnectingStream):
    """A ``/v1/listen`` stream on asyncio that survives dropped sockets.

    Get one from ``connect(..., reconnect=True)``. Same calls as ``ListenStream``, plus
    ``request_ids`` and ``reconnects``; iteration also yields ``Reconnecting`` and
    ``Reconnected``. A background task runs the sockets; it ends with the block.
    """


class FluxReconnectingStream(_Paced, AsyncFluxReconnectingStream):
    """A Flux stream on asyncio that survives dropped sockets.

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
    loop = asyncio.get_running_loop()
    kind = FluxReconnectingStream if flux else ReconnectingStream
    stream = kind(session, _Signal(loop), lambda: open_socket(session.tracking))
    opened: asyncio.Future[None] = loop.create_future()
    task = loop.create_task(stream.supervise(lambda: opened.set_result(None)))
    try:
        await asyncio.wait([opened, task], return_when=asyncio.FIRST_COMPLETED)
        if not opened.done():
            task.result()  # raises why the first connect failed
        yield stream
    finally:
        session.aborted = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
