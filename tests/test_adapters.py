"""The three client adapters on real loopback sockets, against the emulator.

Every scenario is written once and runs on asyncio, trio and the blocking adapter (see
``adapter_drivers.py``). Time is scaled down (KeepAlive every 50-200 ms, the emulator's
NET-0001 after 150-500 ms), so the whole file runs in seconds and nothing sleeps long.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import (
    Closed,
    ConfigureSuccess,
    Connected,
    Event,
    FinalizeComplete,
    MalformedMessage,
    Metadata,
    Results,
    UnknownMessage,
)
from dgproto._options import Auth, LiveOptions
from dgproto._state import State
from dgproto.emulator import EmulatorConfig, FaultPlan, synthesize
from dgproto.transports import _common
from dgproto.transports import sync as sync_adapter
from dgproto.transports import trio as trio_adapter
from dgproto.transports._common import (
    EventBuffer,
    WireTrace,
    open_failure,
    parse_url,
    redact_request,
    resolve_auth,
    tls_context,
)
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .adapter_drivers import DRIVERS, Driver, TrioDriver, open_fds, reader_threads

TEXT = "hello world this is a test of every final"
AUDIO = synthesize(TEXT)
CHUNK = 3200  # 100 ms of 16 kHz linear16
OPTIONS = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True)
FAST = Config(keepalive_interval=0.2, open_timeout=5.0, finalize_timeout=2.0, close_timeout=3.0)
SECRET = "sk-live-0123456789abcdef-do-not-log"


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


_SHARED: list[ThreadedEmulatorServer] = []


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulatorServer]:
    with serve_in_thread(config=EmulatorConfig(require_auth=False)) as srv:
        _SHARED.append(srv)
        yield srv
        _SHARED.remove(srv)


@pytest.fixture(autouse=True)
def _quiet_servers() -> None:
    """Start every test with the shared server's side of earlier connections closed,
    so file descriptor counts taken in the test see only the test's own sockets."""
    for srv in _SHARED:
        settle(srv.server)


@contextlib.contextmanager
def emulator(
    faults: FaultPlan | None = None, write_buffer_limit: int = 256 << 10, **config: Any
) -> Iterator[ThreadedEmulatorServer]:
    config.setdefault("require_auth", False)
    with serve_in_thread(
        config=EmulatorConfig(**config), faults=faults, write_buffer_limit=write_buffer_limit
    ) as srv:
        yield srv


def final_text(events: list[Event]) -> str:
    return " ".join(
        e.transcript for e in events if isinstance(e, Results) and e.is_final and e.transcript
    )


async def send_all(stream: Any, audio: bytes = AUDIO, chunk: int = CHUNK) -> None:
    for i in range(0, len(audio), chunk):
        await stream.send_audio(audio[i : i + chunk])


def settle(srv: Any, timeout: float = 3.0) -> None:
    """Wait (real time) until the server side has closed every connection."""
    deadline = time.monotonic() + timeout
    while srv.live_connections and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not srv.live_connections


def last_record(srv: ThreadedEmulatorServer) -> Any:
    settle(srv.server)
    return srv.connections[-1]


def snapshot(d: Driver) -> tuple[int, int, int]:
    return open_fds(), reader_threads(), d.tasks()


async def assert_back_to(d: Driver, before: tuple[int, int, int], timeout: float = 2.0) -> None:
    """The snapshot returns to ``before`` once servers in this process closed their side
    (and, on asyncio, once the loop has run the socket closes it defers to its next turn)."""
    deadline = time.monotonic() + timeout
    while snapshot(d) != before and time.monotonic() < deadline:
        await d.sleep(0.005)
    assert snapshot(d) == before


# --------------------------------------------------------------------------- raw servers


class RawServer:
    """A loopback TCP server running ``handler(sock, stop)`` per connection, in threads.

    For what the emulator will not do: never answer the upgrade, never read again.
    """

    def __init__(self, handler: Callable[[socket.socket, threading.Event], None]) -> None:
        self._handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name="test-raw-server")
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/v1/listen"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(sock,), name="test-raw-conn")
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            self._handler(sock, self._stop)

    def __enter__(self) -> RawServer:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accepter.join()
        for thread in self._threads:
            thread.join()
        self._listener.close()


def never_answer(sock: socket.socket, stop: threading.Event) -> None:
    """Read the upgrade request (and anything else) until the client leaves; say nothing."""
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def accept(sock: socket.socket) -> None:
    """Read the upgrade request and accept it."""
    ws = WSConnection(ConnectionType.SERVER)
    while not any(isinstance(e, Request) for e in ws.events()):
        ws.receive_data(sock.recv(65536))
    sock.sendall(ws.send(AcceptConnection()))


def accept_then_never_read(sock: socket.socket, stop: threading.Event) -> None:
    """Complete the upgrade, then never read again: the client's sends must block."""
    accept(sock)
    stop.wait()


def accept_then_reset(sock: socket.socket, stop: threading.Event) -> None:
    """Complete the upgrade, then reset the connection (no close frame, no FIN)."""
    accept(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def reset_after_request(sock: socket.socket, stop: threading.Event) -> None:
    """Read the first bytes (upgrade request or TLS hello), then reset the connection."""
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# --------------------------------------------------------------------------- scenarios


def test_stream_finalize_close_delivers_every_final(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            assert stream.state is State.OPEN
            await stream.send_audio(b"")  # sends nothing (an empty frame means CloseStream)
            await send_all(stream)
            done = await stream.finalize()
            assert done.reason in ("from_finalize", "covered")
            closed = await stream.close()
            assert stream.state is State.CLOSED
            assert await stream.close() is closed  # idempotent
            events = await d.collect(stream)
        assert closed.code == 1000
        assert closed.clean
        assert closed.initiator == "server"
        assert closed.metadata is not None
        assert closed.metadata is stream.metadata
        assert closed.metadata.duration == pytest.approx(len(AUDIO) / 32000, abs=0.01)
        assert isinstance(events[0], Connected)
        assert events[0].request_id == stream.request_id is not None
        assert events[-1] is closed
        assert isinstance(events[-2], Metadata)
        assert done in events  # the iterator sees the FinalizeComplete too, in order
        assert events.index(done) < events.index(events[-2])
        assert final_text(events) == TEXT
        assert stream.audio_seconds_sent == len(AUDIO) / 32000
        messages = [m.type for m in last_record(server).emulator.received_text_messages]
        assert messages[-2:] == ["Finalize", "CloseStream"]

    driver.run(scenario)


def test_close_right_after_audio_keeps_the_tail(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    """No finalize, no iteration until after close(): CloseStream still drains it all."""

    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            await send_all(stream)
            closed = await stream.close()
            events = await d.collect(stream)
        assert closed.clean
        assert final_text(events) == TEXT
        assert [e for e in events if isinstance(e, Closed)] == [closed]

    driver.run(scenario)


def test_keepalive_during_silence(driver: Driver) -> None:
    config = Config(keepalive_interval=0.05, close_timeout=3.0)

    async def scenario(d: Driver) -> None:
        with emulator(idle_timeout=0.25) as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=config) as stream:
                await d.sleep(0.6)  # more than twice the server's inactivity close
                assert stream.state is State.OPEN
                closed = await stream.close()
            assert closed.clean
            assert closed.code == 1000
            kinds = [m.type for m in last_record(srv).emulator.received_text_messages]
        assert kinds.count("KeepAlive") >= 4
        assert kinds[-1] == "CloseStream"

    driver.run(scenario)


def test_keepalive_never_splits_an_audio_frame(driver: Driver) -> None:
    """KeepAlives due between every chunk: they go out whole, between whole audio frames."""
    config = Config(keepalive_interval=0.004, close_timeout=3.0)

    async def scenario(d: Driver) -> None:
        with emulator() as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=config) as stream:
                for i in range(0, len(AUDIO), CHUNK):
                    await stream.send_audio(AUDIO[i : i + CHUNK])
                    await d.sleep(0.006)
                closed = await stream.close()
                events = await d.collect(stream)
            record = last_record(srv)
        assert closed.clean
        assert closed.code == 1000
        assert final_text(events) == TEXT  # any torn frame would have garbled or closed it
        kinds = [m.type for m in record.emulator.received_text_messages]
        assert kinds.count("KeepAlive") >= 5
        assert record.emulator.audio_bytes_received == len(AUDIO)

    driver.run(scenario)


def test_server_net0001_close(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with emulator(idle_timeout=0.15) as srv:
            config = Config(keepalive_interval=None)
            async with d.connect(options=OPTIONS, url=srv.url, config=config) as stream:
                events = await d.collect(stream)
                closed = events[-1]
                assert isinstance(closed, Closed)
                assert (closed.code, closed.error_code, closed.initiator) == (
                    1011,
                    "NET-0001",
                    "server",
                )
                assert closed.retryable
                with pytest.raises(ConnectionClosedError) as info:
                    await stream.send_audio(b"\0" * 320)
                assert info.value.closed is closed
                assert "NET-0001" in str(info.value)
                assert await stream.close() is closed
                assert stream.closed is closed

    driver.run(scenario)


def test_handshake_401_carries_details_never_the_key(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dgproto.transports")

    async def scenario(d: Driver) -> None:
        with emulator(accepted_keys={"the-right-key"}, require_auth=True) as srv:
            with pytest.raises(HandshakeError) as info:
                async with d.connect(options=OPTIONS, url=srv.url, api_key=SECRET):
                    raise AssertionError("unreachable")
            settle(srv.server)
        error = info.value
        assert (error.status_code, error.err_code) == (401, "INVALID_AUTH")
        assert error.err_msg
        assert not error.retryable
        assert error.request_id
        for text in (str(error), repr(error), repr(error.rejected), caplog.text):
            assert SECRET not in text
        assert "authorization: <redacted>" in caplog.text
        assert all(r.name == f"dgproto.transports.{d.name}" for r in caplog.records)

    driver.run(scenario)


def test_handshake_429(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with (
            emulator(faults=FaultPlan(reject_status=429)) as srv,
            pytest.raises(HandshakeError) as info,
        ):
            async with d.connect(options=OPTIONS, url=srv.url):
                raise AssertionError("unreachable")
        assert info.value.status_code == 429
        assert info.value.retryable

    driver.run(scenario)


def test_unknown_and_malformed_messages_do_not_end_the_stream(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        faults = FaultPlan(unknown_every=2, malformed_every=3)
        with emulator(faults=faults) as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=FAST) as stream:
                await send_all(stream)
                closed = await stream.close()
                events = await d.collect(stream)
        assert closed.clean
        assert any(isinstance(e, UnknownMessage) for e in events)
        assert any(isinstance(e, MalformedMessage) for e in events)
        assert final_text(events) == TEXT

    driver.run(scenario)


def test_configure_reply_arrives_as_an_event(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            await stream.configure(features={"numerals": True})
            await stream.send_keepalive()
            await stream.close()
            events = await d.collect(stream)
        assert any(isinstance(e, ConfigureSuccess) for e in events)

    driver.run(scenario)


def test_url_query_merges_with_options(driver: Driver, server: ThreadedEmulatorServer) -> None:
    async def scenario(d: Driver) -> None:
        options = LiveOptions(encoding="linear16", sample_rate=16000)
        url = server.url + "?model=nova-2&tag=from-url"
        async with d.connect(options=options, url=url, config=FAST) as stream:
            await stream.close()
        seen = last_record(server).emulator.options
        assert seen.model == "nova-2"
        assert seen.encoding == "linear16"

    driver.run(scenario)


def test_send_after_abort_raises_connection_closed(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            closed = await stream.abort()
            assert closed.initiator == "client"
            assert await stream.abort() is closed
            assert await stream.close() is closed
            for call in (
                lambda: stream.send_audio(b"\0\0"),
                lambda: stream.finalize(),
                lambda: stream.configure(features={"numerals": True}),
                lambda: stream.send_keepalive(),
            ):
                with pytest.raises(ConnectionClosedError) as info:
                    await call()
                assert info.value.closed is closed
            events = await d.collect(stream)
        assert events[-1] is closed

    driver.run(scenario)


def test_asyncio_send_audio_says_closing_then_closed(server: ThreadedEmulatorServer) -> None:
    """The asyncio send path checks the state once, in the core: while CLOSING its
    ``LocalProtocolError`` names the state; once over, ``ConnectionClosedError`` carries
    the ``Closed`` (the core's error suppressed, not chained)."""
    from dgproto._exceptions import LocalProtocolError
    from dgproto.transports.asyncio import connect

    async def scenario() -> None:
        async with connect(OPTIONS, url=server.url, config=FAST) as stream:
            await stream.send_audio(b"\0\0")
            stream.post_close_stream()
            assert stream.state is State.CLOSING
            with pytest.raises(LocalProtocolError) as local:
                await stream.send_audio(b"\0\0")
            assert local.value.state is State.CLOSING
            closed = await stream.close()
            with pytest.raises(ConnectionClosedError) as info:
                await stream.send_audio(b"\0\0")
            assert info.value.closed is closed
            assert info.value.__suppress_context__

    asyncio.run(scenario())


def test_asyncio_frame_clock_is_the_loops() -> None:
    """Audio frames read ``time.monotonic`` directly only when that is what the loop's
    ``time`` does; a loop with its own clock keeps it."""
    from dgproto.transports.asyncio import _frame_clock

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert _frame_clock(loop) is time.monotonic
        loop.time = lambda: 42.0  # type: ignore[method-assign]
        assert _frame_clock(loop)() == 42.0

    asyncio.run(scenario())


def test_leaving_the_block_aborts_and_exceptions_pass_through(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    class Boom(Exception):
        pass

    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        stream: Any = None

        async def fail_inside() -> None:
            nonlocal stream
            async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
                await stream.send_audio(AUDIO[:CHUNK])
                raise Boom

        with pytest.raises(Boom) as info:  # itself, never wrapped in an exception group
            await fail_inside()
        assert type(info.value) is Boom
        assert stream.closed is not None
        assert stream.closed.initiator == "client"
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            pass
        assert stream.closed is not None
        assert stream.closed.initiator == "client"
        settle(server.server)
        await assert_back_to(d, before)

    driver.run(scenario)


def test_server_drop_is_a_transport_close(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with emulator(faults=FaultPlan(drop_after_seconds=0.05)) as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=FAST) as stream:
                events = await d.collect(stream)
        closed = events[-1]
        assert isinstance(closed, Closed)
        assert (closed.initiator, closed.code, closed.clean) == ("transport", 1006, False)
        assert closed.retryable

    driver.run(scenario)


def test_abort_from_elsewhere_unblocks_the_iterator(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    """Another task (or, for the blocking adapter, another thread) aborts; the iterator ends."""

    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            await d.later(0.1, stream.abort)
            events = await d.collect(stream)
        assert isinstance(events[-1], Closed)
        assert events[-1].initiator == "client"

    driver.run(scenario)


def test_close_timeout_when_the_server_stalls(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        config = Config(keepalive_interval=0.2, close_timeout=0.2)
        with emulator(faults=FaultPlan(stall_after_seconds=0)) as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=config) as stream:
                await send_all(stream, AUDIO[: CHUNK * 3])
                closed = await stream.close()
        assert (closed.initiator, closed.code) == ("timeout", 1006)

    driver.run(scenario)


def test_open_timeout_covers_an_unanswered_upgrade(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(never_answer) as raw:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with d.connect(url=raw.url, config=Config(open_timeout=0.2)):
                    raise AssertionError("unreachable")
            assert time.monotonic() - started < 2
        await assert_back_to(d, before)

    driver.run(scenario)


def test_reset_during_the_upgrade_raises_connection_closed(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(reset_after_request) as raw, pytest.raises(ConnectionClosedError) as info:
            async with d.connect(url=raw.url, config=FAST):
                raise AssertionError("unreachable")
        closed = info.value.closed
        assert (closed.initiator, closed.code, closed.retryable) == ("transport", 1006, True)
        assert isinstance(info.value.__cause__, OSError)
        await assert_back_to(d, before)

    driver.run(scenario)


def test_reset_mid_stream_is_a_transport_close(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with RawServer(accept_then_reset) as raw:
            async with d.connect(url=raw.url, config=FAST) as stream:
                events = await d.collect(stream)
        closed = events[-1]
        assert isinstance(closed, Closed)
        assert (closed.initiator, closed.code, closed.retryable) == ("transport", 1006, True)
        with pytest.raises(ConnectionClosedError):
            await stream.send_audio(AUDIO[:CHUNK])

    driver.run(scenario)


def test_socket_failing_under_a_send_raises_connection_closed(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with RawServer(accept_then_never_read) as raw_server:
            async with d.connect(url=raw_server.url, config=FAST) as stream:
                await fail_under_send(d, stream)

    driver.run(scenario)


async def fail_under_send(d: Driver, stream: Any) -> None:
    with d.raw_socket(stream) as raw:
        raw.shutdown(socket.SHUT_WR)  # our next write fails with EPIPE; the peer is silent

    async def send_until_refused() -> None:
        for _ in range(100):
            await stream.send_audio(AUDIO[:CHUNK])
            await d.sleep(0.001)

    with pytest.raises(ConnectionClosedError) as info:
        await send_until_refused()
    closed = info.value.closed
    assert (closed.initiator, closed.code) == ("transport", 1006)
    events = await d.collect(stream)
    assert events[-1] is closed


def test_open_timeout_covers_the_tls_handshake(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(never_answer) as raw:
            url = raw.url.replace("ws://", "wss://")
            with pytest.raises(TimeoutError):
                async with d.connect(url=url, config=Config(open_timeout=0.2)):
                    raise AssertionError("unreachable")
        await assert_back_to(d, before)

    driver.run(scenario)


def test_reset_during_the_tls_handshake_raises_os_error(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(reset_after_request) as raw:
            url = raw.url.replace("ws://", "wss://")
            with pytest.raises(OSError) as info:
                async with d.connect(url=url, config=FAST):
                    raise AssertionError("unreachable")
        assert not isinstance(info.value, ssl.SSLCertVerificationError)
        await assert_back_to(d, before)

    driver.run(scenario)


def test_one_task_sends_while_another_iterates(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    """For the blocking adapter: one sending thread plus one iterating thread."""

    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            outcome: list[Any] = []

            async def produce() -> None:
                await send_all(stream)
                outcome.append(await stream.finalize())
                outcome.append(await stream.close())

            await d.later(0, produce)
            events = await d.collect(stream)
            assert "state=" in repr(stream)
            assert SECRET not in repr(stream)
        assert final_text(events) == TEXT
        assert events[-1].clean  # type: ignore[attr-defined]
        while len(outcome) < 2:  # the producer may still be returning from close()
            await d.sleep(0.01)
        done, closed = outcome
        assert done in events
        assert closed is events[-1]

    driver.run(scenario)


def test_slow_socket_backpressure_loses_nothing(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    """A tiny socket send buffer makes every big chunk wait for the peer; all arrives."""

    async def scenario(d: Driver) -> None:
        silence = bytes(256 << 10)
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            with d.raw_socket(stream) as raw:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            for _ in range(3):
                await stream.send_audio(silence)
            await send_all(stream)
            closed = await stream.close()
            events = await d.collect(stream)
        assert closed.clean
        assert final_text(events) == TEXT
        assert stream.audio_seconds_sent == (3 * len(silence) + len(AUDIO)) / 32000

    driver.run(scenario)


def test_exit_is_prompt_when_our_close_frame_cannot_leave(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer stopped reading and our send buffer is full: the block still exits."""
    monkeypatch.setattr(sync_adapter, "CLOSE_FLUSH_TIMEOUT", 0.1)
    monkeypatch.setattr(trio_adapter, "CLOSE_FLUSH_TIMEOUT", 0.1)

    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(accept_then_never_read) as raw:
            async with d.connect(url=raw.url, config=FAST) as stream:
                with d.raw_socket(stream) as sock:
                    fill_send_buffer(sock)
                started = time.monotonic()
            assert time.monotonic() - started < 1.0
            assert stream.closed is not None
        await assert_back_to(d, before)

    driver.run(scenario)


def fill_send_buffer(sock: socket.socket) -> None:
    """Write raw bytes until the kernel has taken none for 50 ms (the peer never reads)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    progress = time.monotonic()
    while time.monotonic() - progress < 0.05:
        for size in (65536, 1):  # single bytes use up the room left in the last segment
            try:  # MSG_DONTWAIT, not setblocking(): the fd's blocking mode is shared with ours
                while sock.send(bytes(size), socket.MSG_DONTWAIT):
                    progress = time.monotonic()
            except BlockingIOError:
                pass
        time.sleep(0.005)


# -- cancellation: asyncio cancels the task, trio a scope, blocking code gets Ctrl-C


def test_cancel_mid_connect_leaves_nothing(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        before = snapshot(d)
        with RawServer(never_answer) as raw:

            async def body() -> None:
                async with d.connect(url=raw.url, config=Config(open_timeout=None)):
                    raise AssertionError("unreachable")

            await d.interrupted(body, after=0.15)
            assert raw.accepted == 1
        await assert_back_to(d, before)

    driver.run(scenario)


def test_cancel_mid_stream_leaves_nothing(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with emulator() as srv:
            before = snapshot(d)

            async def body() -> None:
                async with d.connect(options=OPTIONS, url=srv.url, config=FAST) as stream:
                    await send_all(stream, AUDIO[: CHUNK * 2])
                    await d.collect(stream)  # nothing ends this stream but the interruption

            await d.interrupted(body, after=0.2)
            settle(srv.server)
            await assert_back_to(d, before)

    driver.run(scenario)


def test_cancel_mid_close_leaves_nothing(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        config = Config(keepalive_interval=0.2, close_timeout=None)
        with emulator(faults=FaultPlan(stall_after_seconds=0)) as srv:
            before = snapshot(d)

            async def body() -> None:
                async with d.connect(options=OPTIONS, url=srv.url, config=config) as stream:
                    await stream.close()  # the stalled server never answers

            await d.interrupted(body, after=0.2)
            settle(srv.server)
            await assert_back_to(d, before)

    driver.run(scenario)


def test_send_backpressure_blocks_and_stays_bounded(driver: Driver) -> None:
    """A peer that stops reading: send_audio blocks (memory bounded), then cancels cleanly."""

    async def scenario(d: Driver) -> None:
        sent = 0
        before = snapshot(d)
        with RawServer(accept_then_never_read) as raw:

            async def body() -> None:
                nonlocal sent
                async with d.connect(url=raw.url, config=FAST) as stream:
                    while True:
                        await stream.send_audio(b"\0" * 65536)
                        sent += 65536

            await d.interrupted(body, after=0.5)
        assert 0 < sent < 256 << 20  # stopped by backpressure, not by running out of time
        await assert_back_to(d, before)

    driver.run(scenario)


def test_event_queue_is_bounded_yet_loses_nothing(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app that stops iterating: reading pauses; close() then delivers every event."""
    monkeypatch.setattr(_common, "EVENT_QUEUE_SIZE", 8)
    monkeypatch.setattr(_common, "EVENT_QUEUE_RESUME", 4)
    text = " ".join(["alpha bravo charlie delta echo foxtrot golf hotel"] * 4)
    audio = synthesize(text)

    async def scenario(d: Driver) -> None:
        # the emulator holds all its output for us rather than stop reading our audio
        with emulator(interim_interval=0.01, write_buffer_limit=64 << 20) as srv:
            async with d.connect(options=OPTIONS, url=srv.url, config=FAST) as stream:
                await send_all(stream, audio)
                session = srv.connections[-1].emulator
                deadline = time.monotonic() + 10
                while session.audio_bytes_received < len(audio) and time.monotonic() < deadline:
                    await d.sleep(0.01)
                await d.sleep(0.3)  # time enough for an unbounded client to read it all
                held = d.queued(stream)
                closed = await stream.close()
                events = await d.collect(stream)
        assert closed.clean
        assert len(events) > 700
        # the limit plus what one socket read (at most 256 KiB here) can carry
        assert 8 <= held < 8 + (256 << 10) // 1000
        assert final_text(events) == text

    driver.run(scenario)


def test_open_close_cycles_leave_nothing(driver: Driver, server: ThreadedEmulatorServer) -> None:
    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
            await stream.close()  # warm up lazily created runtime state
        settle(server.server)
        # close now any socket an earlier test left to the garbage collector: its fd
        # closing mid-loop would read as fewer fds than "before" (seen once on trio)
        gc.collect()
        before, threads = snapshot(d), threading.active_count()
        own_threads = 1 if d.name == "sync" else 0  # the async adapters start none
        for _ in range(200):
            async with d.connect(options=OPTIONS, url=server.url, config=FAST) as stream:
                assert threading.active_count() == threads + own_threads
                closed = await stream.close()
                assert closed.clean
        settle(server.server)
        await assert_back_to(d, before)
        assert threading.active_count() == threads

    driver.run(scenario)


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command (the cryptography package is not installed)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsProxy:
    """TLS termination in front of the emulator: wss:// outside, ws:// inside."""

    def __init__(self, target: ThreadedEmulatorServer, cert: Path, key: Path) -> None:
        self._target = target
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/v1/listen"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(lambda loop, ctx: None)  # refused handshakes
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()


def test_tls_self_signed_refused_by_default_accepted_with_context(
    driver: Driver, server: ThreadedEmulatorServer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    trusting = ssl.create_default_context(cafile=str(cert))

    async def scenario(d: Driver) -> None:
        with TlsProxy(server, cert, key) as proxy:
            before = snapshot(d)
            with pytest.raises(ssl.SSLCertVerificationError):
                async with d.connect(options=OPTIONS, url=proxy.url, config=FAST):
                    raise AssertionError("unreachable")
            await assert_back_to(d, before)  # the proxy closes its side asynchronously
            async with d.connect(
                options=OPTIONS, url=proxy.url, config=FAST, ssl_context=trusting
            ) as stream:
                await send_all(stream)
                closed = await stream.close()
                events = await d.collect(stream)
            assert closed.clean
            assert final_text(events) == TEXT

    driver.run(scenario)


# --------------------------------------------------------------------------- trio's MockClock


def test_trio_keepalive_runs_on_trio_time(server: ThreadedEmulatorServer) -> None:
    """The trio adapter's timers read trio.current_time(), so a MockClock drives them."""
    clock = trio.testing.MockClock()
    d = TrioDriver(clock=clock)

    def keepalives() -> int:
        record = server.connections[-1]
        return sum(m.type == "KeepAlive" for m in record.emulator.received_text_messages)

    async def wait_for_server(count: int, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while keepalives() < count and time.monotonic() < deadline:
            await trio.testing.wait_all_tasks_blocked()
            time.sleep(0.002)  # the emulator runs in its own thread, on real time

    async def scenario(d: Driver) -> None:
        config = Config(keepalive_interval=4.0)
        async with d.connect(options=OPTIONS, url=server.url, config=config) as stream:
            clock.jump(3.9)
            await wait_for_server(1, timeout=0.1)
            assert keepalives() == 0
            clock.jump(0.2)
            await wait_for_server(1)
            assert keepalives() == 1
            clock.jump(4.0)
            await wait_for_server(2)
            assert keepalives() == 2
            await stream.abort()

    d.run(scenario)


class _SlowSocket:
    """A trio socket stand-in taking ``step`` bytes per send, blocking while ``held``."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.wire = bytearray()
        self.held = True
        self.released = trio.Event()

    async def send(self, data: bytes) -> int:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.wire and self.held:
            await self.released.wait()  # cancellable: nothing of this call sent yet
        self.wire += data[: self.step]
        await trio.lowlevel.cancel_shielded_checkpoint()
        return min(self.step, len(data))


def _open_listen_core() -> tuple[ListenConnection, WSConnection]:
    conn = ListenConnection(options=OPTIONS, auth=Auth.token("k"), host="h", config=FAST)
    server = WSConnection(ConnectionType.SERVER)
    conn.connect(now=0.0)
    server.receive_data(conn.data_to_send())
    assert isinstance(next(server.events()), Request)
    conn.receive_data(server.send(AcceptConnection()), now=0.0)
    assert isinstance(conn.next_event(), Connected)
    return conn, server


def test_trio_cancelled_send_finishes_the_frame_and_stays_usable() -> None:
    """A write cancelled midway: Cancelled propagates, the sender writes the frame's
    rest (never half a frame on the wire) and the next send follows it."""
    conn, server = _open_listen_core()

    async def main() -> None:
        slow = _SlowSocket(step=100)
        stream = trio_adapter.ListenStream(conn, trio.testing.MemorySendStream())  # type: ignore[arg-type]
        stream._socket = slow  # type: ignore[assignment]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream._send_loop)
            with trio.move_on_after(0.1) as scope:
                await stream.send_audio(b"\1" * 640)
            assert scope.cancelled_caught  # trio's own cancellation
            assert 0 < len(slow.wire) < 640  # cut midway...
            slow.held = False
            slow.released.set()
            await stream.send_audio(b"\2" * 320)  # ... and the stream stays usable
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        server.receive_data(bytes(slow.wire))
        payloads = [bytes(event.data) for event in server.events()]
        assert payloads == [b"\1" * 640, b"\2" * 320]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# --------------------------------------------------------------------------- _common


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("wss://api.deepgram.com/v1/listen", ("api.deepgram.com", 443, "/v1/listen", True)),
        ("ws://127.0.0.1:8765/v1/listen?model=x", ("127.0.0.1", 8765, "/v1/listen?model=x", False)),
        ("WS://Example.COM", ("example.com", 80, "/v1/listen", False)),
        ("wss://[::1]:9000/x", ("::1", 9000, "/x", True)),
    ],
)
def test_parse_url(url: str, expected: tuple[str, int, str, bool]) -> None:
    endpoint = parse_url(url)
    assert (endpoint.host, endpoint.port, endpoint.target, endpoint.tls) == expected


def test_host_header_omits_default_ports() -> None:
    assert parse_url("wss://h/x").host_header == "h"
    assert parse_url("ws://h/x").host_header == "h"
    assert parse_url("ws://h:81/x").host_header == "h:81"
    assert parse_url("wss://[::1]:9/x").host_header == "[::1]:9"
    assert parse_url("wss://[::1]/x").host_header == "[::1]"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://api.deepgram.com", "scheme must be ws or wss"),
        ("wss://user:hunter2@api.deepgram.com", "must not carry credentials"),
        ("wss:///v1/listen", "no host"),
        ("wss://h:99999/", "Port out of range"),
    ],
)
def test_parse_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_url(url)
    assert "hunter2" not in str(info.value)


def test_parse_url_needs_a_str() -> None:
    with pytest.raises(ValueError, match="url must be a str"):
        parse_url(b"wss://x")  # type: ignore[arg-type]


def test_resolve_auth() -> None:
    env = {"DEEPGRAM_API_KEY": "env-key"}
    none: dict[str, Any] = {"api_key": None, "access_token": None, "auth": None}
    assert resolve_auth(**{**none, "api_key": "k"}, tls=False) == Auth.token("k")
    assert resolve_auth(**{**none, "access_token": "j"}, tls=True) == Auth.bearer("j")
    explicit = Auth.subprotocol("k")
    assert resolve_auth(**{**none, "auth": explicit}, tls=True) is explicit
    assert resolve_auth(**none, tls=True, environ=env) == Auth.token("env-key")
    # a key from the environment never travels in clear text
    assert resolve_auth(**none, tls=False, environ=env) == Auth.none()
    assert resolve_auth(**none, tls=True, environ={}) == Auth.none()
    with pytest.raises(ValueError, match=r"at most one of .*api_key, access_token"):
        resolve_auth(api_key="a", access_token="b", auth=None, tls=True)
    with pytest.raises(ValueError, match="auth must be an Auth"):
        resolve_auth(api_key=None, access_token=None, auth="key", tls=True)  # type: ignore[arg-type]


def test_tls_context() -> None:
    wss, ws = parse_url("wss://h"), parse_url("ws://h")
    assert tls_context(ws, None) is None
    default = tls_context(wss, None)
    assert default is not None
    assert default.verify_mode is ssl.CERT_REQUIRED
    assert default.check_hostname
    mine = ssl.create_default_context()
    assert tls_context(wss, mine) is mine
    with pytest.raises(ValueError, match="ssl_context was given for a ws:// url"):
        tls_context(ws, mine)
    with pytest.raises(ValueError, match=r"ssl_context must be an ssl\.SSLContext"):
        tls_context(wss, object())  # type: ignore[arg-type]


def test_connect_validates_before_touching_the_network(driver: Driver) -> None:
    async def scenario(d: Driver) -> None:
        with pytest.raises(ValueError, match="at most one of"):
            async with d.connect(url="ws://127.0.0.1:9", api_key="a", auth=Auth.none()):
                raise AssertionError("unreachable")

    driver.run(scenario)


def test_redact_request() -> None:
    request = (
        b"GET /v1/listen HTTP/1.1\r\nHost: h\r\nAuthorization: Token " + SECRET.encode()
        + b"\r\nSec-WebSocket-Protocol: token, " + SECRET.encode() + b"\r\n\r\nbody"
    )  # fmt: skip
    text = redact_request(request)
    assert SECRET not in text
    assert "Authorization: <redacted>" in text
    assert "Sec-WebSocket-Protocol: <redacted>" in text
    assert text.startswith("GET /v1/listen HTTP/1.1")
    assert "body" not in text


def test_wire_trace_is_silent_unless_debug(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("dgproto.transports.test")
    trace = WireTrace(logger)
    caplog.set_level(logging.INFO, logger="dgproto.transports.test")
    trace.sent(b"GET / HTTP/1.1\r\nauthorization: Token x\r\n\r\n")
    trace.received(b"HTTP/1.1 101 OK\r\n\r\n")
    trace.event(Closed(code=1000, initiator="client"))
    assert caplog.records == []
    caplog.set_level(logging.DEBUG, logger="dgproto.transports.test")
    trace.sent(b"GET / HTTP/1.1\r\nauthorization: Token x\r\n\r\n")
    trace.sent(b"\x82\x00")
    trace.received(b"HTTP/1.1 101 OK\r\nx: y\r\n\r\n\x81")
    trace.received(b"\x81\x00")
    trace.event(Connected(request_id="r-1"))
    trace.event(FinalizeComplete(channel=None, reason="covered"))
    trace.event(Metadata(request_id="r-1"))
    lines = [r.getMessage() for r in caplog.records]
    assert "Token x" not in caplog.text
    assert lines[1:4] == ["-> 2 bytes", "<- upgrade response\nHTTP/1.1 101 OK\nx: y", "<- 2 bytes"]
    assert lines[4] == "event Connected request_id=r-1"
    assert lines[5].startswith("event FinalizeComplete(")
    assert lines[6] == "event Metadata"


def _results(end: float) -> Results:
    return Results(
        channel_index=(0, 1),
        start=0.0,
        duration=end,
        is_final=True,
        speech_final=False,
        from_finalize=False,
        alternatives=(),
    )


def test_event_buffer_backpressure_policy() -> None:
    buffer = EventBuffer(limit=4, resume=2)
    assert buffer.reading_allowed()
    for i in range(4):
        buffer.push(_results(i))
    assert not buffer.reading_allowed()  # full: stop reading
    buffer.pop()
    assert not buffer.reading_allowed()  # hysteresis: not yet
    buffer.pop()
    assert buffer.reading_allowed()  # down to `resume`
    buffer.push(_results(5))
    buffer.push(_results(6))
    assert not buffer.reading_allowed()
    buffer.lift()  # a finalize()/close() is waiting: read regardless
    assert buffer.reading_allowed()
    buffer.unlift()
    assert not buffer.reading_allowed()
    buffer.push(Closed(code=1000, initiator="server"))
    buffer.lift()
    assert not buffer.reading_allowed()  # nothing left to read after Closed
    assert len(buffer) == 5


def test_event_buffer_matches_finalizes_in_order_and_ends_at_closed() -> None:
    buffer = EventBuffer()
    first, second = buffer.expect_finalize(), buffer.expect_finalize()
    one = FinalizeComplete(channel=None, reason="from_finalize")
    two = FinalizeComplete(channel=0, reason="timeout")
    buffer.push(one)
    assert (first.result, second.result) == (one, None)
    buffer.push(two)
    assert second.result is two
    buffer.push(FinalizeComplete(channel=None, reason="closed"))  # no slot: still delivered
    closed = Closed(code=1000, initiator="client")
    buffer.push(closed)
    popped = [buffer.pop() for _ in range(4)]
    assert popped[-1] is closed
    assert buffer.finished
    assert buffer.pop() is None


def test_sync_remaining_open_time() -> None:
    assert sync_adapter._remaining(None, None) is None
    assert 0 < sync_adapter._remaining(time.monotonic() + 5, 5.0) <= 5  # type: ignore[operator]
    with pytest.raises(TimeoutError, match=r"open_timeout=5\.0"):
        sync_adapter._remaining(time.monotonic() - 0.1, 5.0)


def test_sync_exit_unblocks_a_reader_stuck_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaving the block shuts the socket under a reader stuck writing our close frame.

    The kernel decides when a full send buffer has room again, so the stuck write is
    simulated: the reader's last flush blocks in a socket call only the shutdown ends.
    """
    monkeypatch.setattr(sync_adapter, "CLOSE_FLUSH_TIMEOUT", 0.1)
    real = sync_adapter.ListenStream._flush

    def flush(self: sync_adapter.ListenStream, *, timeout: float | None) -> None:
        if threading.current_thread().name == "dgproto-sync-reader" and self.closed:
            self._sock.recv(1, socket.MSG_PEEK)  # returns only once the socket is shut
            raise BrokenPipeError("the send buffer never drained")
        real(self, timeout=timeout)

    monkeypatch.setattr(sync_adapter.ListenStream, "_flush", flush)
    before = reader_threads()
    with RawServer(accept_then_never_read) as raw:
        with sync_adapter.connect(url=raw.url, config=FAST):
            started = time.monotonic()
        elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 1  # the join timed out, the shutdown freed the reader
    assert reader_threads() == before


def test_sync_reader_bug_still_ends_the_stream(
    server: ThreadedEmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the reader thread ends the stream instead of hanging it."""
    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    with sync_adapter.connect(OPTIONS, url=server.url, config=FAST) as stream:

        def broken(data: bytes, *, now: float) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(stream._conn, "receive_data", broken)
        stream.send_audio(AUDIO[: CHUNK * 20])  # the server answers; the reader trips
        events = list(stream)
    closed = events[-1]
    assert isinstance(closed, Closed)
    assert closed.initiator == "transport"
    assert len(crashes) == 1
    assert str(crashes[0]) == "a bug"


def test_sync_messages_sent_before_a_drop_come_before_the_failed_writes_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server sends two messages and drops the socket; the app's next write fails
    while the reader is still descheduled (simulated: it sleeps once). The write waits
    for the reader, which reads both messages first: they come before the ``Closed``,
    as in the other adapters (a reconnecting stream then counts their finals)."""
    sending = threading.Event()
    slept: list[bool] = []
    real = sync_adapter.ListenStream._wait

    def late_reader(
        self: sync_adapter.ListenStream, deadline: float | None, watching: bool
    ) -> bool:
        if sending.is_set() and not slept:
            slept.append(True)
            time.sleep(0.3)
        return real(self, deadline, watching)

    monkeypatch.setattr(sync_adapter.ListenStream, "_wait", late_reader)
    config = EmulatorConfig(require_auth=False, faults=FaultPlan(drop_after_messages=2))
    with (
        serve_in_thread(config=config) as srv,
        sync_adapter.connect(OPTIONS, url=srv.url, config=FAST) as stream,
    ):
        sending.set()
        failed = _send_until_it_fails(stream)
        events = [e for e in stream if not isinstance(e, Connected)]
    assert slept
    assert [type(e).__name__ for e in events] == ["Results", "Results", "Closed"]
    assert failed.closed is events[-1]


def _send_until_it_fails(stream: sync_adapter.ListenStream) -> ConnectionClosedError:
    for i in range(2000):
        try:
            stream.send_audio(AUDIO[(i * CHUNK) % len(AUDIO) :][:CHUNK])
        except ConnectionClosedError as exc:
            return exc
    raise AssertionError("the dropped socket never failed a write")


def test_trio_tls_failure_is_an_os_error() -> None:
    reset = ConnectionResetError("reset")
    wrapped = trio.BrokenResourceError("broken")
    wrapped.__cause__ = trio.BrokenResourceError("inner")
    wrapped.__cause__.__cause__ = reset
    assert trio_adapter._os_error(wrapped) is reset
    assert trio_adapter._os_error(trio.ClosedResourceError("closed here")) is None


def test_open_failure_kinds() -> None:
    from dgproto._events import HandshakeRejected

    rejected = EventBuffer()
    rejected.push(HandshakeRejected(status_code=402, err_code="ASR_PAYMENT_REQUIRED"))
    rejected.push(Closed(code=1006, initiator="server"))
    assert isinstance(open_failure(rejected), HandshakeError)
    timed_out = EventBuffer()
    timed_out.push(Closed(code=1006, initiator="timeout", reason="opening handshake timed out"))
    assert isinstance(open_failure(timed_out), TimeoutError)
    hung_up = EventBuffer()
    hung_up.push(Closed(code=1006, initiator="transport"))
    error = open_failure(hung_up)
    assert isinstance(error, ConnectionClosedError)
    assert error.closed.initiator == "transport"
