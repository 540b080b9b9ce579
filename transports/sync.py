"""The blocking adapter: ``with connect(...) as stream``, for threads and plain scripts.

Each stream has exactly one background thread, the **reader**, started once the
upgrade succeeded and joined when the ``with`` block exits (``daemon=False``: nothing
outlives the block). It feeds received bytes to the core and runs the core's timer: it
waits in a selector until data arrives or ``get_timer()`` is due, so KeepAlive goes out
while the app is silent. A socketpair wakes it when an app call moves the deadline
earlier, ends the stream, or makes room in a full event queue.

Locking, so that one thread may send while another iterates (and any thread may
``abort()``):

* ``_lock`` guards the core and the ``EventBuffer``; every core call happens under it.
* ``_write_lock`` is held across "drain ``data_to_send()``, ``sendall``": bytes reach
  the socket in the core's order, and a KeepAlive frame never lands inside an audio
  frame. The reader never blocks on it: if an app thread is writing, that thread drains
  again before it lets go (its final "nothing left" check and the release happen under
  ``_lock``), so the reader's frames cannot be stranded.
* A write that fails in an app thread does not end the stream itself while the reader
  runs: the reader reads what the server sent before the failure and reports the close,
  so no message that arrived is lost (``_write_failed``).

Backpressure: ``send_audio`` returns once its frame is in the socket's send buffer
(``sendall`` blocks while it is full). Incoming events follow the ``EventBuffer``
policy in ``_common``: when it is full the reader stops reading the socket but keeps
firing timers. ``abort()`` from another thread ends the stream at once and wakes a
thread blocked iterating.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import ConnectionClosedError
from dgproto._events import Closed, Event, FinalizeComplete
from dgproto._flux import FluxConnection
from dgproto._flux_options import FluxOptions
from dgproto._options import Auth, LiveOptions
from dgproto._pacing import DEFAULT_CHUNK_SECONDS
from dgproto._reconnect import ReconnectPolicy, reconnect_policy
from dgproto._session import StreamConnection
from dgproto._state import State

from ._common import (
    CLOSE_FLUSH_TIMEOUT,
    READ_SIZE,
    ConnectArgs,
    EventBuffer,
    FluxState,
    ListenMetadata,
    Plan,
    StreamState,
    WireTrace,
    check_sendable,
    make_plan,
    open_failure,
)
from ._pacing import send_paced_sync
from ._proxy import FROM_ENV, ConnectTunnel, FromEnv
from ._reconnect import FLUX_RESUME, LISTEN_RESUME, ReconnectingState, Resume, Session, drive_sync
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

logger = logging.getLogger("dgproto.transports.sync")

#: Shortest socket timeout used while waiting for the upgrade (0 would mean non-blocking).
_MIN_TIMEOUT = 0.001


class _Paced:
    """``send_paced`` for every blocking stream: single-socket or reconnecting, any endpoint."""

    def send_paced(
        self,
        source: bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes],
        *,
        speed: float = 1.0,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        bytes_per_second: int | None = None,
    ) -> int:
        """Send bytes, a binary file or chunks at ``speed`` x real time; bytes sent.

        Chunks of ``chunk_seconds`` cut from the options' format (``bytes_per_second``
        for WAV or compressed audio); a late chunk is caught up at no more than 1.25x.
        Does not close the stream.
        """
        return send_paced_sync(
            cast(Any, self),
            source,
            speed=speed,
            chunk_seconds=chunk_seconds,
            bytes_per_second=bytes_per_second,
        )


class _Stream(_Paced, StreamState[C]):
    """What every blocking stream does, whatever the endpoint: the reader thread, the
    locked pump, audio, close, abort, iteration and the state attributes.
    ``ListenStream`` and ``FluxStream`` add their endpoint's commands."""

    def __init__(self, conn: C, sock: socket.socket) -> None:
        super().__init__(conn)
        self._sock = sock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._buffer = EventBuffer()
        self._trace = WireTrace(logger)
        self._error: BaseException | None = None
        self._reader: threading.Thread | None = None
        #: What the reader waits for (deadline, watching the socket); None when not waiting.
        self._reader_plan: tuple[float | None, bool] | None = None
        self._watching_socket = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)

    # -- the pump (``_lock`` held)

    def _after(self) -> None:
        """After every core call: hand events over and wake whoever must act."""
        if self._buffer.collect(self._conn, self._trace):
            self._changed.notify_all()
        self._poke_reader()

    def _poke_reader(self) -> None:
        """Wake the reader if it waits for something that is no longer the right thing."""
        plan = self._reader_plan
        if plan is None:
            return
        deadline, watching = plan
        conn = self._conn
        at = conn.get_timer()
        if (
            conn.should_close_transport
            or watching != self._buffer.reading_allowed()
            or (at is not None and (deadline is None or at < deadline))
        ):
            self._reader_plan = None
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full means a wake-up is pending already
            self._wake_w.send(b"\0")

    def _lost(self, exc: BaseException) -> Closed:
        """The socket failed: the core reports a transport close (once)."""
        with self._lock:
            self._error = self._error or exc
            self._conn.receive_eof(now=time.monotonic())  # a no-op once Closed
            self._after()
            closed = self._conn.closed
        assert closed is not None
        return closed

    def _flush(self, *, timeout: float | None) -> None:
        """Write everything the core has queued, in order, holding ``_write_lock``.

        ``timeout=None`` waits for the lock; ``0`` leaves the job to the thread holding
        it (see the module docs for why nothing is stranded).
        """
        if not self._write_lock.acquire(timeout=-1 if timeout is None else timeout):
            return
        held = True
        try:
            while True:
                with self._lock:
                    data = self._conn.data_to_send()
                    if not data:
                        self._write_lock.release()  # under _lock: no frame left behind
                        held = False
                        return
                self._trace.sent(data)
                self._sock.sendall(data)
        finally:
            if held:
                self._write_lock.release()

    def _write(self) -> None:
        """An app thread's flush: ``ConnectionClosedError`` if the socket failed."""
        try:
            self._flush(timeout=None)
        except OSError as exc:
            raise ConnectionClosedError(self._write_failed(exc)) from exc

    def _write_failed(self, exc: OSError) -> Closed:
        """An app thread's write failed; the ``Closed`` to raise.

        What the peer sent before the socket failed may still be unread. While the
        reader runs and watches the socket it reads that first and reports the close
        itself, so those messages come before the ``Closed`` as in the other adapters
        (and a reconnecting stream counts their finals before it replays). Bounded by
        ``CLOSE_FLUSH_TIMEOUT``; a reader that does not watch the socket (a full event
        queue) leaves it to ``_lost`` at once.
        """
        reader = self._reader
        if reader is not None and reader.is_alive():
            deadline = time.monotonic() + CLOSE_FLUSH_TIMEOUT
            with self._lock:
                while self._conn.closed is None and self._buffer.reading_allowed():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
        return self._lost(exc)

    # -- opening and the reader thread

    def _handshake(self, started: float) -> None:
        """Send the upgrade and read until it is answered, in the caller's thread."""
        conn, sock, buffer = self._conn, self._sock, self._buffer
        with self._lock:
            conn.connect(now=started)
            self._after()
        try:
            while True:
                at = conn.get_timer()
                sock.settimeout(None if at is None else max(at - time.monotonic(), _MIN_TIMEOUT))
                self._flush(timeout=None)
                if buffer.connected is not None or buffer.closed is not None:
                    break
                try:
                    data: bytes | None = sock.recv(READ_SIZE)
                except TimeoutError:
                    data = None
                with self._lock:
                    now = time.monotonic()
                    if data is not None:
                        self._trace.received(data)
                        conn.receive_data(data, now=now)
                    if at is not None and now >= at:
                        conn.handle_timer(now=now)
                    self._after()
        except OSError as exc:
            self._lost(exc)
        if buffer.connected is None:
            raise open_failure(buffer) from self._error
        sock.settimeout(None)

    def _start(self) -> None:
        self._reader = threading.Thread(target=self._run, name="dgproto-sync-reader", daemon=False)
        self._reader.start()

    def _run(self) -> None:
        conn = self._conn
        try:
            while True:
                with self._lock:
                    if conn.should_close_transport:
                        break
                    deadline = conn.get_timer()
                    watching = self._buffer.reading_allowed()
                    self._reader_plan = (deadline, watching)
                readable = self._wait(deadline, watching)
                data = self._sock.recv(READ_SIZE) if readable else None
                with self._lock:
                    self._reader_plan = None
                    now = time.monotonic()
                    if data is not None:
                        self._trace.received(data)
                        conn.receive_data(data, now=now)  # b"" is EOF
                    at = conn.get_timer()
                    if at is not None and now >= at:
                        conn.handle_timer(now=now)
                    self._after()
                self._flush(timeout=0)
        except OSError as exc:
            self._lost(exc)
        except BaseException as exc:  # a bug: still end the stream so no one waits forever
            self._lost(exc)
            raise
        finally:
            # Over: our close frame gets a moment to leave, then the socket is shut.
            with contextlib.suppress(OSError):
                self._flush(timeout=CLOSE_FLUSH_TIMEOUT)
            self._shutdown_socket()

    def _wait(self, deadline: float | None, watching: bool) -> bool:
        """Block until the socket is readable (True), the deadline passes or a wake-up.

        Selecting on a TLS socket is sound here: ``READ_SIZE`` exceeds the largest TLS
        record, so each ``recv`` drains the record it decrypts and no plaintext waits
        inside the SSL object where ``select`` cannot see it.
        """
        sock = self._sock
        if watching != self._watching_socket:
            if watching:
                self._selector.register(sock, selectors.EVENT_READ)
            else:
                self._selector.unregister(sock)
            self._watching_socket = watching
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        readable = False
        for key, _ in self._selector.select(timeout):
            if key.fileobj is sock:
                readable = True
            else:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
        return readable

    def _shutdown_socket(self) -> None:
        # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object
        # under a thread that may still be using it.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def _close(self) -> None:
        """Leave the ``with``: abort if still open, join the reader, release every fd."""
        with self._lock:
            self._conn.abort(now=time.monotonic())
            self._after()
        reader = self._reader
        if reader is not None:
            try:
                reader.join(CLOSE_FLUSH_TIMEOUT)
            finally:
                if reader.is_alive():  # stuck writing to a peer that stopped reading
                    self._shutdown_socket()
                    self._wake()
                    reader.join()
        self._sock.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the app's side

    def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        """Send one chunk of audio as a binary frame (``b""`` sends nothing).

        Returns once the frame is in the socket's send buffer, so a slow network slows
        the caller. Raises ``ConnectionClosedError`` once the stream is closed.
        """
        with self._lock:
            check_sendable(self._conn)
            self._conn.send_audio(chunk, now=time.monotonic())
            self._after()
        self._write()

    def close(self) -> Closed:
        """Send CloseStream and wait for ``Closed``; every event before it stays queued.

        The server flushes its last results (on ``/v1/listen`` also a Metadata, which
        ``Closed.metadata`` then holds), then closes; all of it reaches the iterator.
        Bounded by ``Config.close_timeout``. Idempotent: later calls (or a call after
        ``abort()`` or a server close) return the same ``Closed``.
        """
        with self._lock:
            if self._conn.state is State.OPEN:
                self._conn.close_stream(now=time.monotonic())
            self._buffer.lift()
            self._after()
        try:
            with contextlib.suppress(ConnectionClosedError):
                self._write()
            with self._lock:
                while self._buffer.closed is None:
                    self._changed.wait()
                return self._buffer.closed
        finally:
            with self._lock:
                self._buffer.unlift()
                self._poke_reader()

    def post_close_stream(self) -> None:
        """Send CloseStream without waiting for the close (for a reconnecting stream)."""
        self.post("close_stream")

    def post(self, command: str, *args: Any) -> None:
        """Call the core's ``command`` without waiting for an answer, if still open
        (for a reconnecting stream: ``"finalize"``, ``"close_stream"``, ...)."""
        with self._lock:
            if self._conn.state is not State.OPEN:
                return
            getattr(self._conn, command)(*args, now=time.monotonic())
            self._after()
        with contextlib.suppress(ConnectionClosedError):
            self._write()

    def abort(self) -> Closed:
        """Close now, without draining; safe from any thread, and wakes an iterating one.

        The reader thread writes the close frame and shuts the socket. Events already
        received stay available to the iterator, ``Closed`` last.
        """
        with self._lock:
            self._conn.abort(now=time.monotonic())
            self._after()
            closed = self._conn.closed
        assert closed is not None
        return closed

    def __iter__(self) -> _Stream[C]:
        return self

    def __next__(self) -> Event:
        with self._lock:
            buffer = self._buffer
            while True:
                event = buffer.pop()
                if event is not None:
                    self._poke_reader()  # there may be room to read again
                    return event
                if buffer.finished:
                    raise StopIteration
                self._changed.wait()


class ListenStream(_Stream[ListenConnection], ListenMetadata):
    """An open ``/v1/listen`` stream over a blocking socket. Get one from ``connect``.

    Safe for one sending thread plus one iterating thread; ``abort()`` from any thread.
    ``for event in stream`` yields every event, ``Closed`` last, then stops.
    """

    def send_keepalive(self) -> None:
        """Send a KeepAlive now. Rarely needed: the stream sends one after each idle
        ``Config.keepalive_interval`` by itself."""
        with self._lock:
            check_sendable(self._conn)
            self._conn.send_keepalive(now=time.monotonic())
            self._after()
        self._write()

    def configure(
        self, keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
    ) -> None:
        """Send a ``Configure`` message; the reply arrives as an event."""
        with self._lock:
            check_sendable(self._conn)
            self._conn.configure(keyterms, features, now=time.monotonic())
            self._after()
        self._write()

    def finalize(self, channel: int | None = None) -> FinalizeComplete:
        """Flush Deepgram's buffered audio and wait for this call's ``FinalizeComplete``.

        The same ``FinalizeComplete`` is also delivered to the iterator, so the event
        order there stays intact. Bounded by ``Config.finalize_timeout``.
        """
        with self._lock:
            check_sendable(self._conn)
            self._conn.finalize(channel, now=time.monotonic())
            slot = self._buffer.expect_finalize()
            self._buffer.lift()
            self._after()
        try:
            self._write()
            with self._lock:
                while slot.result is None:
                    self._changed.wait()
                return slot.result
        finally:
            with self._lock:
                self._buffer.unlift()
                self._poke_reader()

    def post_finalize(self, channel: int | None) -> None:
        """Send a Finalize without waiting for its answer (for a reconnecting stream)."""
        self.post("finalize", channel)


class FluxStream(_Stream[FluxConnection], FluxState):
    """An open Flux (``/v2/listen``) stream over a blocking socket. Get one from
    ``connect(FluxOptions(...))``.

    Like ``ListenStream`` without ``finalize``/``send_keepalive`` (Flux has neither; an
    idle stream stays open on WebSocket pings), plus Flux's ``configure`` and
    ``force_end_turn``. Events: ``Connected``, ``FluxConnected``, ``TurnInfo``,
    ``ConfigureSuccess``/``ConfigureFailure``, ``ServerWarning``, ``ServerError``, and
    ``Closed`` last.
    """

    def configure(
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
        with self._lock:
            check_sendable(self._conn)
            now = time.monotonic()
            self._conn.configure(thresholds, keyterms, language_hints, numerals, now=now)
            self._after()
        self._write()

    def force_end_turn(self) -> None:
        """End the current turn now: an ``EndOfTurn`` (``trigger="manual"``) follows."""
        with self._lock:
            check_sendable(self._conn)
            self._conn.force_end_turn(now=time.monotonic())
            self._after()
        self._write()


def _remaining(deadline: float | None, timeout: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"connecting took longer than open_timeout={timeout} s")
    return left


def _open(plan: Plan) -> ListenStream | FluxStream:
    """DNS, TCP, TLS and the upgrade in the caller's thread, within ``open_timeout``."""
    started = time.monotonic()
    timeout = plan.conn.config.open_timeout
    deadline = None if timeout is None else started + timeout
    endpoint = plan.endpoint
    proxy = plan.proxy
    address = (endpoint.host, endpoint.port) if proxy is None else (proxy.host, proxy.port)
    sock = socket.create_connection(address, timeout=_remaining(deadline, timeout))
    try:
        if proxy is not None:
            tunnel = ConnectTunnel(proxy, endpoint.host, endpoint.port)
            sock.sendall(tunnel.request)
            while True:
                sock.settimeout(_remaining(deadline, timeout))
                if tunnel.feed(sock.recv(1)):
                    break
        if plan.ssl_context is not None:
            sock.settimeout(_remaining(deadline, timeout))
            sock = plan.ssl_context.wrap_socket(sock, server_hostname=endpoint.host)
        conn = plan.conn
        stream: ListenStream | FluxStream
        if isinstance(conn, FluxConnection):
            stream = FluxStream(conn, sock)
        else:
            stream = ListenStream(conn, sock)
    except BaseException:
        sock.close()
        raise
    stream._trace.record(plan.recorder, time.monotonic)
    try:
        stream._handshake(started)
        stream._start()
    except BaseException:
        try:
            stream._close()
        finally:
            stream._trace.close_recording()
        raise
    return stream


@overload
def connect(
    options: FluxOptions, *, reconnect: Literal[False] = False, **kwargs: Unpack[ConnectArgs]
) -> AbstractContextManager[FluxStream]: ...
@overload
def connect(
    options: FluxOptions,
    *,
    reconnect: ReconnectPolicy | Literal[True],
    **kwargs: Unpack[ConnectArgs],
) -> AbstractContextManager[FluxReconnectingStream]: ...
@overload
def connect(
    options: LiveOptions | None = None,
    *,
    reconnect: Literal[False] = False,
    **kwargs: Unpack[ConnectArgs],
) -> AbstractContextManager[ListenStream]: ...
@overload
def connect(
    options: LiveOptions | None = None,
    *,
    reconnect: ReconnectPolicy | Literal[True],
    **kwargs: Unpack[ConnectArgs],
) -> AbstractContextManager[ReconnectingStream]: ...
@overload
def connect(
    options: LiveOptions | FluxOptions | None = None,
    *,
    reconnect: ReconnectPolicy | bool,
    **kwargs: Unpack[ConnectArgs],
) -> AbstractContextManager[
    ListenStream | ReconnectingStream | FluxStream | FluxReconnectingStream
]: ...
@contextmanager
def connect(
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
) -> Iterator[Any]:
    """Open a live transcription stream: ``with connect(options, api_key=k) as stream``.

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

    Leaving the block without ``close()`` aborts the stream: no drain, pending results
    are lost. Call ``stream.close()`` to end it gracefully.
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
        with _connect_one(first) as single:
            yield single
        return
    flux = isinstance(options, FluxOptions)
    resume: Resume = FLUX_RESUME if flux else LISTEN_RESUME
    replay = resume.replay(options, policy.replay_seconds)
    session = Session(policy, replay, options, resume)
    kind = FluxReconnectingStream if flux else ReconnectingStream
    stream = kind(session, lambda: _connect_one(plan(tracking=session.tracking)))
    try:
        stream._start()  # Ctrl-C while the first socket opens still joins the thread
        yield stream
    finally:
        stream._shutdown()


@contextmanager
def _connect_one(plan: Plan) -> Iterator[ListenStream | FluxStream]:
    """One socket, no reconnect: what ``connect`` does by default."""
    stream = _open(plan)
    try:
        yield stream
    finally:
        try:
            stream._close()
        finally:
            stream._trace.close_recording()


class _Reconnecting(_Paced, ReconnectingState):
    """A stream over blocking sockets that survives dropped sockets, any endpoint.

    One more background thread (``dgproto-sync-supervisor``) runs the sockets; it is
    joined when the ``with`` block exits. ``ReconnectingStream`` and
    ``FluxReconnectingStream`` add their endpoint's commands.
    """

    def __init__(
        self,
        session: Session,
        open_socket: Callable[[], AbstractContextManager[ListenStream | FluxStream]],
    ) -> None:
        super().__init__(session)
        self._open_socket = open_socket
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sockets = contextlib.ExitStack()
        self._inner: Any = None  # the current ListenStream or FluxStream
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._error: BaseException | None = None

    # -- the app's side

    def send_audio(self, chunk: bytes | bytearray | memoryview) -> None:
        """Send audio; during an outage it is kept (``replay_seconds``) and replayed."""
        with self._lock:
            self._check()
            live = self._session.audio(chunk)
            inner = self._inner
        if live and inner is not None:
            with contextlib.suppress(ConnectionClosedError):
                inner.send_audio(chunk)

    def close(self) -> Closed:
        """CloseStream and drain; during an outage, first reconnect and replay."""
        with self._lock:
            post = self._session.close()
            inner = self._inner
            self._buffer.lift()
        try:
            if post and inner is not None:
                inner.post("close_stream")
            with self._lock:
                while self._buffer.closed is None:
                    self._changed.wait()
                return self._buffer.closed
        finally:
            with self._lock:
                self._buffer.unlift()
                self._changed.notify_all()

    def abort(self) -> Closed:
        """Close now, without draining or reconnecting; safe from any thread."""
        with self._lock:
            self._session.aborted = True
            inner = self._inner
            self._changed.notify_all()
        closed = inner.abort() if inner is not None else None
        final = self._buffer.closed or self._session.last_closed or closed
        if final is None:  # the first socket is still opening: the with block ends it
            final = Closed(code=1006, reason="the stream was ended locally", initiator="client")
        return final

    def __iter__(self) -> _Reconnecting:
        return self

    def __next__(self) -> Event:
        with self._lock:
            buffer = self._buffer
            while True:
                event = buffer.pop()
                if event is not None:
                    self._changed.notify_all()  # room for the supervisor again
                    return event
                if buffer.finished:
                    raise StopIteration
                self._changed.wait()

    # -- the supervisor thread and its link operations

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="dgproto-sync-supervisor", daemon=False
        )
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self) -> None:
        try:
            try:
                drive_sync(self._session.open_first(), self, self._lock)
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._opened.set()
            drive_sync(self._session.run(), self, self._lock)
        finally:
            with self._lock:
                self._end_anyway()
                self._changed.notify_all()
            self.op_release()

    def _shutdown(self) -> None:
        """Leave the ``with``: stop reconnecting, abort the socket, join the thread."""
        self.abort()
        thread = self._thread
        if thread is not None:
            thread.join()

    def op_open(self) -> str | None:
        """Runner op: open the next socket; its request id."""
        inner = self._sockets.enter_context(self._open_socket())
        with self._lock:
            self._inner = inner
            if self._session.aborted:
                inner.abort()
        return inner.request_id

    def op_release(self) -> None:
        """Runner op: let the app's calls through again."""
        with self._lock:
            self._inner = None
        self._sockets.close()

    def op_next(self) -> Event:
        """Runner op: the next event of the current socket."""
        with self._lock:
            while not self._buffer.reading_allowed():
                self._changed.wait()
            inner: ListenStream | FluxStream | None = self._inner
        assert inner is not None
        return next(inner)

    def op_sleep(self, delay: float) -> None:
        """Runner op: wait out a backoff delay (wakes early when aborted)."""
        deadline = time.monotonic() + delay
        with self._lock:
            while not self._session.aborted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def op_send(self, chunk: bytes) -> None:
        """Runner op: send audio on the current socket."""
        assert self._inner is not None
        with contextlib.suppress(ConnectionClosedError):
            self._inner.send_audio(chunk)

    def op_configure(self, *args: Any) -> None:
        """Runner op: re-send the Configure in force on the current socket."""
        assert self._inner is not None
        with contextlib.suppress(ConnectionClosedError):
            self._inner.configure(*args)

    def op_close_stream(self) -> None:
        """Runner op: send CloseStream on the current socket."""
        assert self._inner is not None
        self._inner.post("close_stream")

    def op_emit(self, event: Event) -> None:
        """Runner op: hand an event to the app."""
        with self._lock:
            self._buffer.push(event)
            self._changed.notify_all()


class ReconnectingStream(_Reconnecting):
    """A ``/v1/listen`` stream over blocking sockets that survives dropped sockets.

    Get one from ``connect(..., reconnect=True)``. Same calls as ``ListenStream``, plus
    ``request_ids`` and ``reconnects``; iteration also yields ``Reconnecting`` and
    ``Reconnected``. One more background thread (``dgproto-sync-supervisor``) runs the
    sockets; it is joined when the ``with`` block exits.
    """

    def configure(
        self, keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
    ) -> None:
        """Send a ``Configure``; it is sent again on every new socket."""
        with self._lock:
            self._check()
            live = self._session.configure(keyterms, features)
            inner = self._inner
        if live and inner is not None:
            with contextlib.suppress(ConnectionClosedError):
                inner.configure(keyterms, features)

    def finalize(self, channel: int | None = None) -> FinalizeComplete:
        """Flush and wait for this call's ``FinalizeComplete``; across an outage it is
        sent again after the replay, and completes exactly once."""
        with self._lock:
            self._check()
            slot = self._buffer.expect_finalize()
            live = self._session.finalize(channel)
            inner = self._inner
            self._buffer.lift()
        try:
            if live and inner is not None:
                inner.post("finalize", channel)
            with self._lock:
                while slot.result is None:
                    self._changed.wait()
                return slot.result
        finally:
            with self._lock:
                self._buffer.unlift()
                self._changed.notify_all()

    def op_finalize(self, channel: int | None) -> None:
        """Runner op: send a Finalize on the current socket."""
        assert self._inner is not None
        self._inner.post("finalize", channel)


class FluxReconnectingStream(_Reconnecting):
    """A Flux stream over blocking sockets that survives dropped sockets.

    Get one from ``connect(FluxOptions(...), reconnect=True)``. Same calls as
    ``FluxStream``, plus ``request_ids`` and ``reconnects``; audio is replayed from the
    last ``EndOfTurn``, and turns keep one clock and one ``turn_index`` count.
    """

    def configure(
        self,
        thresholds: Mapping[str, float] | None = None,
        keyterms: Sequence[str] | None = None,
        language_hints: Sequence[str] | None = None,
        numerals: bool | None = None,
    ) -> None:
        """Send a ``Configure``; every setting in force is sent again on a new socket."""
        args = (thresholds, keyterms, language_hints, numerals)
        with self._lock:
            self._check()
            live = self._session.configure(*args)
            inner = self._inner
        if live and inner is not None:
            with contextlib.suppress(ConnectionClosedError):
                inner.configure(*args)

    def force_end_turn(self) -> None:
        """End the current turn now; during an outage, right after the replay."""
        with self._lock:
            self._check()
            live = self._session.force_end_turn()
            inner = self._inner
        if live and inner is not None:
            inner.post("force_end_turn")

    def op_force_end_turn(self) -> None:
        """Runner op: send ForceEndTurn on the current socket."""
        assert self._inner is not None
        self._inner.post("force_end_turn")
