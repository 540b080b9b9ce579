"""Run the Deepgram emulator on real sockets: one ``EmulatorConnection`` per TCP connection.

The emulator core (``dgproto.emulator``) is sans-I/O like the client core; this module is
its asyncio driver. Each accepted connection gets an ``asyncio.Protocol`` (no task, no
stream objects: cheap enough for hundreds of concurrent real-time streams) that runs the
standard pump after every input: write ``data_to_send()``, re-arm one ``loop.call_at``
timer from ``get_timer()``, and close the transport once ``should_close_transport``.

Three ways in:

- ``async with serve(...) as server`` inside a running asyncio loop;
- ``with serve_in_thread(...) as server`` from anything (sync code, asyncio, trio): the
  server runs its own loop in one background thread, joined when the block exits;
- ``main_serve(argv)``, the ``python -m dgproto serve`` command.

Memory is bounded: at most ``max_connections`` connections are served at once (more are
refused at accept time with Deepgram's HTTP 429 body); a client that stops reading gets
its input paused once ``write_buffer_limit`` bytes are waiting for it, so the emulator
produces nothing more for it; and only the last ``keep_finished`` finished connections
are kept for introspection. A connection whose emulator raises is logged on the
``dgproto.emulator.server`` logger and dropped; the server carries on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import logging
import random
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import attrs

from dgproto._recording import Recording
from dgproto.emulator import EmulatorConfig, EmulatorConnection, FaultPlan, ReplayConnection

from ._argparse import OneLineParser
from ._record import load_recordings

__all__ = [
    "ConnectionRecord",
    "EmulatorServer",
    "ThreadedEmulatorServer",
    "main_serve",
    "run",
    "serve",
    "serve_in_thread",
]

logger = logging.getLogger("dgproto.emulator.server")

DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_KEEP_FINISHED = 64
#: Bytes waiting for a slow reader before its input is paused (backpressure).
DEFAULT_WRITE_BUFFER_LIMIT = 256 * 1024
_BACKLOG = 1024
_SHUTDOWN_GRACE = 5.0
#: How long a refused client has to read its HTTP 429 before the socket closes.
_REFUSE_LINGER = 1.0


def format_url(host: str, port: int, path: str = "/v1/listen") -> str:
    """``ws://host:port/v1/listen``, with brackets around an IPv6 literal."""
    shown = f"[{host}]" if ":" in host else host
    return f"ws://{shown}:{port}{path}"


@attrs.define(eq=False)
class ConnectionRecord:
    """One TCP connection the server accepted, for tests to inspect after the fact.

    ``emulator`` is the session's state machine; read it from the server's thread (or
    after the connection finished) since the server keeps driving it while it is live.
    """

    number: int
    """1 for the first connection this server accepted, then 2, 3, ..."""
    peer: str
    """The client's address as ``host:port``."""
    emulator: EmulatorConnection
    opened_at: float
    """``loop.time()`` at accept."""
    closed_at: float | None = None
    """``loop.time()`` when the TCP connection ended; ``None`` while live."""
    error: BaseException | None = None
    """What the emulator raised if the server had to drop the connection, else ``None``."""

    @property
    def live(self) -> bool:
        """True until the TCP connection ends (``closed_at`` is still ``None``)."""
        return self.closed_at is None


class _EmulatorProtocol(asyncio.Protocol):
    """Drives one ``EmulatorConnection`` from one TCP connection's callbacks.

    Every call into the emulator goes through ``_drive``: if it raises (a bug, or a
    misbehaving plug-in recognizer), this connection is logged and dropped, nothing else.
    """

    __slots__ = ("_loop", "_record", "_server", "_timer", "_timer_at", "_transport")

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server
        self._loop = server.loop
        self._transport: asyncio.Transport | None = None
        self._record: ConnectionRecord | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._record = self._server._admit(self, transport)
        if self._record is not None:
            transport.set_write_buffer_limits(high=self._server.write_buffer_limit)
            self._drive(None)

    def data_received(self, data: bytes) -> None:
        if self._record is not None:  # else: a refused client's request, discarded
            self._drive(self._record.emulator.receive_data, data)

    def eof_received(self) -> bool:
        record = self._record
        if record is not None:
            self._drive(record.emulator.receive_eof)
        return False  # the emulator has nothing to say to a client that stopped talking

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        record = self._record
        if record is None:
            self._server._forget(self)
            return
        if record.error is None:
            self._drive(record.emulator.receive_eof)
        self._server._finished(self, record)

    def pause_writing(self) -> None:
        # The client is not reading: stop reading its audio, so that the emulator makes no
        # more results for it, and memory stays bounded by the write buffer limit.
        transport = self._transport
        assert transport is not None
        if not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self._transport
        assert transport is not None
        if not transport.is_closing():
            transport.resume_reading()

    # -- the pump

    def _drive(
        self, method: Callable[..., None] | None, *args: bytes, now: float | None = None
    ) -> None:
        """Call ``method(*args, now=now)`` (default: the loop's time), then write what the
        emulator has to send, and close the transport or re-arm the timer."""
        record = self._record
        transport = self._transport
        assert record is not None
        assert transport is not None
        emulator = record.emulator
        try:
            if method is not None:
                method(*args, now=self._loop.time() if now is None else now)
            data = emulator.data_to_send()
            close = emulator.should_close_transport
            deadline = None if close else emulator.get_timer()
        except Exception as exc:
            self._fail(exc)
            return
        if data and not transport.is_closing():
            transport.write(data)
        if close:
            self._cancel_timer()
            transport.close()  # flushes what was written, then closes
        elif deadline is None:
            self._cancel_timer()
        elif self._timer_at is None or deadline < self._timer_at:
            self._cancel_timer()
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)
            self._timer_at = deadline
        # else: a later deadline (every audio frame moves the idle timeout) keeps the armed
        # timer; when it fires early the emulator does nothing and the pump re-arms it.
        # That saves a cancel and a heap push per frame, which adds up over 500 streams.

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        self._timer_at = None
        record = self._record
        assert record is not None
        # asyncio may run a timer up to one clock resolution early; never report a time
        # before the deadline, or the core would (rightly) do nothing and re-arm forever.
        self._drive(record.emulator.handle_timer, now=max(self._loop.time(), deadline))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _fail(self, exc: Exception) -> None:
        record = self._record
        assert record is not None
        record.error = exc
        logger.exception(
            "emulator connection %d from %s failed; dropping it", record.number, record.peer
        )
        self.shutdown()

    # -- called by the server

    def refuse(self, response: bytes, linger: float) -> None:
        """Answer with ``response`` and close after ``linger`` seconds, reading (and
        discarding) the request meanwhile: closing a socket with unread input would
        reset the connection and could destroy the response before the client reads it."""
        assert self._transport is not None
        self._transport.write(response)
        self._timer = self._loop.call_later(linger, self._transport.close)

    def shutdown(self) -> None:
        """Drop the connection now (no close handshake)."""
        self._cancel_timer()
        if self._transport is not None:  # else connection_made is still due: it drops it
            self._transport.abort()


class EmulatorServer:
    """A listening emulator in the current asyncio loop. Use ``serve()`` to make one."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config: EmulatorConfig | None = None,
        faults: FaultPlan | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keep_finished: int = DEFAULT_KEEP_FINISHED,
        write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        for name, value, minimum in (
            ("max_connections", max_connections, 1),
            ("keep_finished", keep_finished, 0),
            ("write_buffer_limit", write_buffer_limit, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        self.config = config if config is not None else EmulatorConfig()
        self.faults = faults
        self.max_connections = max_connections
        self.write_buffer_limit = write_buffer_limit
        self._requested = (host, port)
        self._seeds = random.Random(seed)
        self._wall_clock = wall_clock
        self._numbers = itertools.count(1)
        #: connections served a recording so far (``EmulatorConfig.replay`` with several)
        self._replayed = 0
        self._live: dict[_EmulatorProtocol, ConnectionRecord] = {}
        self._finished_records: deque[ConnectionRecord] = deque(maxlen=keep_finished)
        self._lock = threading.Lock()  # guards the two collections for other threads' reads
        # Every protocol from its creation until its connection is lost: live, being
        # refused, or accepted by asyncio but not yet told ``connection_made``.
        self._protocols: set[_EmulatorProtocol] = set()
        self._gone_event: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.host = host
        self.port = port
        self.refused = 0
        """Connections refused because ``max_connections`` were live."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("serving" if self._server else "new")
        return f"<EmulatorServer {self.url} {state}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the server runs in; ``RuntimeError`` before ``start()``.

        Other threads use it to reach the server safely (``call_soon_threadsafe``).
        """
        if self._loop is None:
            raise RuntimeError("the server is not started")
        return self._loop

    @property
    def _gone(self) -> asyncio.Event:
        """Set while no connection is open."""
        assert self._gone_event is not None
        return self._gone_event

    @property
    def url(self) -> str:
        """``ws://host:port/v1/listen``: what a client connects to."""
        return format_url(self.host, self.port, self.config.path)

    @property
    def flux_url(self) -> str:
        """``ws://host:port/v2/listen``: the Flux endpoint on the same server."""
        if self.config.flux_path is None:
            raise RuntimeError("this server serves no Flux endpoint (EmulatorConfig.flux_path)")
        return format_url(self.host, self.port, self.config.flux_path)

    @property
    def connections(self) -> tuple[ConnectionRecord, ...]:
        """The live connections and the last ``keep_finished`` finished ones, oldest first."""
        with self._lock:
            records = [*self._finished_records, *self._live.values()]
        return tuple(sorted(records, key=lambda r: r.number))

    @property
    def live_connections(self) -> int:
        """How many connections are open now (counted against ``max_connections``)."""
        return len(self._live)

    async def start(self) -> None:
        """Bind and start accepting. Binds exactly one socket, so ``port=0`` has one answer."""
        if self._server is not None or self._closed:
            raise RuntimeError("an EmulatorServer starts only once")
        self._loop = loop = asyncio.get_running_loop()
        self._gone_event = asyncio.Event()
        self._gone_event.set()
        sock = await _bind(loop, *self._requested)
        try:
            self._server = await loop.create_server(self._new_protocol, sock=sock, backlog=_BACKLOG)
        except BaseException:
            sock.close()
            raise
        address = sock.getsockname()
        self.host, self.port = str(address[0]), int(address[1])

    async def aclose(self) -> None:
        """Stop listening, drop every live connection, and wait until their sockets closed."""
        if self._closed:
            return
        self._closed = True
        server = self._server
        if server is None:
            return
        # asyncio accepts a connection in one callback and makes its transport in a task;
        # if ``Server.close()`` runs in between, that transport's creation fails and the
        # accepted socket leaks (CPython's ``Server._attach`` asserts it is still serving).
        # So: stop accepting, let those tasks make their transports, and only then close.
        loop = self.loop
        for listening in server.sockets:
            with contextlib.suppress(NotImplementedError):  # a loop without readers
                loop.remove_reader(listening.fileno())
        await asyncio.sleep(0)
        server.close()
        # Connections whose ``connection_made`` is still due drop themselves (the server is
        # closed); drop every other one now.
        for protocol in list(self._protocols):
            protocol.shutdown()
        # Aborted transports close their sockets in a later loop iteration: wait for it,
        # so that no socket outlives the server.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._gone.wait(), _SHUTDOWN_GRACE)
        await server.wait_closed()

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- called by the protocols

    def _admit(
        self, protocol: _EmulatorProtocol, transport: asyncio.Transport
    ) -> ConnectionRecord | None:
        if self._closed:
            transport.abort()
            return None
        if len(self._live) >= self.max_connections:
            self.refused += 1
            logger.warning(
                "refusing a connection with HTTP 429: %d connections are live (max_connections)",
                len(self._live),
            )
            request_id = str(uuid.UUID(int=self._seeds.getrandbits(128), version=4))
            protocol.refuse(_too_many(request_id), _REFUSE_LINGER)
            return None
        peer = transport.get_extra_info("peername")
        record = ConnectionRecord(
            number=next(self._numbers),
            peer=_format_peer(peer),
            emulator=self._make_emulator(),
            opened_at=self.loop.time(),
        )
        with self._lock:
            self._live[protocol] = record
        return record

    def _finished(self, protocol: _EmulatorProtocol, record: ConnectionRecord) -> None:
        record.closed_at = self.loop.time()
        with self._lock:
            self._live.pop(protocol, None)
            self._finished_records.append(record)
        logger.info("%s", describe_connection(record))
        self._forget(protocol)

    def _new_protocol(self) -> _EmulatorProtocol:
        protocol = _EmulatorProtocol(self)
        self._protocols.add(protocol)
        self._gone.clear()
        return protocol

    def _forget(self, protocol: _EmulatorProtocol) -> None:
        self._protocols.discard(protocol)
        if not self._protocols:
            self._gone.set()

    def _make_emulator(self) -> EmulatorConnection:
        # ``now`` starts the handshake timeout at accept: a client that connects and
        # sends nothing is closed after ``config.handshake_timeout``.
        # A configured recording is served back instead of transcribed (issue 15).
        common: dict[str, Any] = {
            "config": self.config,
            "faults": self.faults,
            "rng": random.Random(self._seeds.getrandbits(64)),
            "wall_time": self._wall_clock(),
            "now": self.loop.time(),
        }
        replay = self.config.replay
        if replay is None:
            return EmulatorConnection(**common)
        if isinstance(replay, Recording):
            return ReplayConnection(recording=replay, **common)
        # a reconnecting stream's sockets, in order; the last one again past the end
        index = min(self._replayed, len(replay) - 1)
        self._replayed += 1
        return ReplayConnection(
            recording=replay[index], reconnected=index < len(replay) - 1, **common
        )


def describe_connection(record: ConnectionRecord) -> str:
    """One log line for a finished connection: who, which path, request id, how it ended."""
    emulator = record.emulator
    status = emulator.http_status
    parts = [
        f"connection {record.number} from {record.peer}",
        emulator.path or "(no request)",
        f"request id {emulator.request_id}",
    ]
    if status is not None and status != 101:
        parts.append(f"refused with HTTP {status}")
    elif emulator.close_sent is not None:
        parts.append(f"close code {emulator.close_sent[0]}")
    elif emulator.close_received is not None:
        parts.append(f"close code {emulator.close_received[0]} (from the client)")
    else:
        parts.append("no close frame")
    if record.error is not None:
        parts.append(f"dropped: {type(record.error).__name__}")
    parts.extend(f"note: {text}" for text in emulator.warnings)
    return ", ".join(parts)


def _format_peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _too_many(request_id: str) -> bytes:
    """What a client over ``max_connections`` gets: Deepgram's answer to too many streams."""
    body = (
        '{"err_code":"TOO_MANY_REQUESTS","err_msg":"Too many requests. Please try again later",'
        f'"request_id":"{request_id}"}}'
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\ndg-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


async def _bind(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """One listening socket on the first address ``host`` resolves to."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        address: tuple[Any, ...] = (host, port)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: EmulatorConfig | None = None,
    faults: FaultPlan | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    keep_finished: int = DEFAULT_KEEP_FINISHED,
    write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT,
    seed: int | None = None,
) -> AsyncIterator[EmulatorServer]:
    """Run an emulator in the running asyncio loop for the duration of the block.

    ``port=0`` picks a free port (read it from ``server.port`` or ``server.url``).
    ``faults`` applies to every connection. ``seed`` makes the sessions' randomness
    (request ids, confidences) repeatable.
    """
    server = EmulatorServer(
        host,
        port,
        config=config,
        faults=faults,
        max_connections=max_connections,
        keep_finished=keep_finished,
        write_buffer_limit=write_buffer_limit,
        seed=seed,
    )
    async with server:
        yield server


class ThreadedEmulatorServer:
    """An ``EmulatorServer`` running its own event loop in one background thread.

    Usable from any code, sync or async (asyncio, trio): nothing here blocks for long.
    ``close()`` (or leaving the ``with``) stops it and joins the thread; afterwards no
    thread or socket of the server is left.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._server: EmulatorServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<ThreadedEmulatorServer {self._server!r}>"

    @property
    def server(self) -> EmulatorServer:
        """The ``EmulatorServer`` in the background thread; ``RuntimeError`` before ``start()``.

        Its methods belong to the server's loop: from another thread, only read it.
        """
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server

    @property
    def url(self) -> str:
        """``ws://host:port/v1/listen``: what a client connects to."""
        return self.server.url

    @property
    def flux_url(self) -> str:
        """The Flux (``/v2/listen``) URL of the running server."""
        return self.server.flux_url

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self.server.host

    @property
    def port(self) -> int:
        """The port the server listens on: the one the OS picked when started with ``port=0``."""
        return self.server.port

    @property
    def connections(self) -> tuple[ConnectionRecord, ...]:
        """The live connections and the last ``keep_finished`` finished ones, oldest first."""
        return self.server.connections

    def start(self) -> None:
        """Start the thread and wait until the server listens (or re-raise why it could not)."""
        if self._thread is not None:
            raise RuntimeError("a ThreadedEmulatorServer starts only once")
        self._thread = threading.Thread(
            target=self._main, name="dgproto-emulator-server", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def close(self) -> None:
        """Stop serving, close every connection and join the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join()

    def __enter__(self) -> ThreadedEmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
            else:  # pragma: no cover - _serve handles its own errors once ready
                logger.exception("emulator server thread failed")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(**self._kwargs) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()


def serve_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    config: EmulatorConfig | None = None,
    faults: FaultPlan | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    keep_finished: int = DEFAULT_KEEP_FINISHED,
    write_buffer_limit: int = DEFAULT_WRITE_BUFFER_LIMIT,
    seed: int | None = None,
) -> ThreadedEmulatorServer:
    """An emulator in a background thread: ``with serve_in_thread() as server: server.url``.

    Arguments as for ``serve``. Starts on ``__enter__`` (or ``start()``), stops and joins
    its thread on ``__exit__`` (or ``close()``).
    """
    return ThreadedEmulatorServer(
        host=host,
        port=port,
        config=config,
        faults=faults,
        max_connections=max_connections,
        keep_finished=keep_finished,
        write_buffer_limit=write_buffer_limit,
        seed=seed,
    )


async def run(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    config: EmulatorConfig | None = None,
    faults: FaultPlan | None = None,
    ready: Callable[[str], None] | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve until SIGINT/SIGTERM (when run in the main thread) or until cancelled.

    ``ready(url)`` is called once the socket listens. Prints nothing.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[tuple[signal.Signals, Any]] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, stop.set)
                handled.append((sig, previous))
    try:
        async with serve(
            host, port, config=config, faults=faults, max_connections=max_connections
        ) as server:
            if ready is not None:
                ready(server.url)
            await stop.wait()
    finally:
        for sig, previous in handled:
            loop.remove_signal_handler(sig)
            # asyncio leaves SIGINT at default_int_handler: put back what was there
            # (SIG_IGN under nohup, or the application's own handler).
            signal.signal(sig, previous)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0 picks a free one), got {port}")
    return port


def _build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="dgproto serve",
        description="Run a local Deepgram-compatible /v1/listen server (the emulator).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=8765, help="port to bind; 0 picks a free one (default 8765)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="an accepted API key (repeatable); by default any non-empty key is accepted",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="accept connections without any credentials"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="close a stream that sent nothing for this long; 0 never does (default 10, "
        "Deepgram's)",
    )
    parser.add_argument(
        "--fault",
        metavar="SPEC",
        help='misbehave on purpose, e.g. "drop_after_messages=3,fragment=16"',
    )
    parser.add_argument(
        "--replay",
        metavar="FILE",
        help="serve this recorded session (a dgproto-recording file) to every client; "
        "a reconnecting stream's sockets are served in order, one per connection",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="refuse more concurrent connections with HTTP 429 (default %(default)s)",
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    changes: dict[str, Any] = {}
    if args.api_keys:
        changes["accepted_keys"] = frozenset(args.api_keys)
    if args.no_auth:
        changes["require_auth"] = False
    if args.idle_timeout is not None:
        changes["idle_timeout"] = args.idle_timeout or None
    if args.replay:
        changes["replay"] = tuple(load_recordings(args.replay))
    return EmulatorConfig(**changes)


def main_serve(argv: Sequence[str] | None = None) -> int:
    """``dgproto serve``: print the URL on the first line, then serve until SIGINT/SIGTERM."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        config = _config_from_args(args)
        faults = FaultPlan.parse(args.fault) if args.fault else None
    except (ValueError, OSError) as exc:
        parser.error(str(exc))

    def ready(url: str) -> None:
        print(f"dgproto emulator listening on {url}", flush=True)

    log = logging.StreamHandler(sys.stderr)  # one line per connection, as it ends
    log.setFormatter(logging.Formatter("dgproto serve: %(message)s"))
    logger.addHandler(log)
    level = logger.level
    logger.setLevel(logging.INFO)

    try:
        asyncio.run(
            run(
                args.host,
                args.port,
                config=config,
                faults=faults,
                ready=ready,
                max_connections=args.max_connections,
            )
        )
    except KeyboardInterrupt:  # a SIGINT before the handler was installed
        return 0
    except OSError as exc:
        print(f"dgproto serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:  # main_serve() called in-process leaves no handler behind
        logger.removeHandler(log)
        logger.setLevel(level)
    return 0
