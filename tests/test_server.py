"""The emulator on real loopback sockets: ``dgproto.transports.server`` and its pytest plugin.

The client here is deliberately tiny (wsproto on a blocking socket, or on asyncio/trio
streams) so these tests depend on nothing but the server and the emulator core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from dgproto.emulator import EmulatorConfig, FaultPlan, ToneRecognizer, synthesize
from dgproto.transports import pytest_plugin
from dgproto.transports import server as server_module
from dgproto.transports.server import (
    EmulatorServer,
    ThreadedEmulatorServer,
    main_serve,
    run,
    serve,
    serve_in_thread,
)

pytest_plugins = ["pytester"]

# The plugin's own fixtures, in this module whether or not its pytest11 entry point is
# installed (importing the plugin module by ``pytest_plugins`` would clash with it).
deepgram_emulator = pytest_plugin.deepgram_emulator
deepgram_emulator_factory = pytest_plugin.deepgram_emulator_factory

QUERY = "/v1/listen?encoding=linear16&sample_rate=16000"
AUTH = [(b"authorization", b"Token test-key")]
TIMEOUT = 5.0
CHUNK = 640  # 20 ms of 16 kHz linear16


# ---------------------------------------------------------------------- a tiny client


class Addressed(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


class Address(NamedTuple):
    host: str
    port: int


class Client:
    """A blocking wsproto client: just enough WebSocket to talk to the emulator."""

    def __init__(
        self,
        server: Addressed,
        *,
        target: str = QUERY,
        headers: list[tuple[bytes, bytes]] | None = None,
        handshake: bool = True,
    ) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[Event] = []
        self.body = b""
        if handshake:
            request = Request(
                host="localhost", target=target, extra_headers=AUTH if headers is None else headers
            )
            self.sock.sendall(self.ws.send(request))

    def close_socket(self) -> None:
        self.sock.close()

    def next_event(self) -> Event | None:
        """The next wsproto event; ``None`` at EOF."""
        while not self.pending:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def handshake(self) -> AcceptConnection | RejectConnection:
        event = self.next_event()
        assert isinstance(event, (AcceptConnection, RejectConnection)), event
        if isinstance(event, RejectConnection) and event.has_body:
            while True:
                data = self.next_event()
                assert isinstance(data, RejectData)
                self.body += data.data
                if data.body_finished:
                    break
        return event

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def stream(self, audio: bytes) -> None:
        for start in range(0, len(audio), CHUNK):
            self.send(BytesMessage(data=audio[start : start + CHUNK]))

    def until_close(self) -> tuple[list[dict[str, Any]], CloseConnection]:
        """Messages up to the server's close frame (echoed), then EOF."""
        messages: list[dict[str, Any]] = []
        parts: list[str] = []
        while True:
            event = self.next_event()
            assert event is not None, "EOF before a close frame"
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    messages.append(json.loads("".join(parts)))
                    parts.clear()
            elif isinstance(event, Ping):
                self.send(event.response())
            elif isinstance(event, CloseConnection):
                self.send(event.response())
                assert self.next_event() is None  # then the server hangs up
                return messages, event


def words_of(messages: list[dict[str, Any]]) -> list[str]:
    return [
        word["word"]
        for m in messages
        if m["type"] == "Results" and m["is_final"]
        for word in m["channel"]["alternatives"][0]["words"]
    ]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def server() -> Iterator[ThreadedEmulatorServer]:
    with serve_in_thread() as running:
        yield running


# ---------------------------------------------------------------------- the session


def test_url_host_and_port(server: ThreadedEmulatorServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"ws://127.0.0.1:{server.port}/v1/listen"
    assert repr(server.server).endswith("serving>")
    assert server.connections == ()


def test_handshake_accepts_an_api_key(server: ThreadedEmulatorServer) -> None:
    client = Client(server)
    accepted = client.handshake()
    assert isinstance(accepted, AcceptConnection)
    headers = dict(accepted.extra_headers)
    assert re.fullmatch(rb"[0-9a-f-]{36}", headers[b"dg-request-id"])
    client.close_socket()


def test_handshake_without_a_key_is_401(server: ThreadedEmulatorServer) -> None:
    client = Client(server, headers=[])
    rejected = client.handshake()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 401
    assert json.loads(client.body)["err_code"] == "INVALID_AUTH"
    assert client.next_event() is None
    client.close_socket()


def test_streamed_audio_comes_back_as_words(server: ThreadedEmulatorServer) -> None:
    audio = synthesize("hello world.")
    client = Client(server)
    assert isinstance(client.handshake(), AcceptConnection)
    client.stream(audio)
    client.send(TextMessage(data='{"type":"CloseStream"}'))
    messages, close = client.until_close()
    client.close_socket()

    assert words_of(messages) == ["hello", "world"]
    assert [m["type"] for m in messages][-1] == "Metadata"
    assert messages[-1]["duration"] == pytest.approx(len(audio) / 32000)
    assert (close.code, close.reason) == (1000, "")

    wait_until(lambda: not server.connections[0].live)
    (record,) = server.connections
    assert record.number == 1
    assert record.error is None
    assert record.closed_at is not None
    assert record.closed_at >= record.opened_at
    assert record.emulator.audio_bytes_received == len(audio)
    assert record.peer.startswith("127.0.0.1:")


def test_idle_timeout_fires_on_the_servers_clock() -> None:
    # The inactivity close is a timer: it proves the pump re-arms get_timer().
    with serve_in_thread(config=EmulatorConfig(idle_timeout=0.1)) as running:
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        started = time.monotonic()
        messages, close = client.until_close()
        elapsed = time.monotonic() - started
        client.close_socket()
    assert [m["type"] for m in messages] == ["Metadata"]
    assert close.code == 1011
    assert "net0001" in (close.reason or "")
    assert 0.05 < elapsed < 3.0


def test_server_faults_apply_to_every_connection() -> None:
    with serve_in_thread(faults=FaultPlan(reject_status=503)) as running:
        for _ in range(2):
            client = Client(running)
            rejected = client.handshake()
            assert isinstance(rejected, RejectConnection)
            assert rejected.status_code == 503
            client.close_socket()


def test_timed_faults_run_on_the_loop() -> None:
    faults = FaultPlan(ping_interval=0.02, close_after_seconds=0.1, close_code=1011)
    with serve_in_thread(faults=faults) as running:
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        pings = 0
        while True:
            event = client.next_event()
            if isinstance(event, Ping):
                pings += 1
                if client.ws.state is ConnectionState.OPEN:
                    client.send(event.response())
            elif isinstance(event, CloseConnection):
                client.send(event.response())
                break
        client.close_socket()
    assert event.code == 1011
    assert pings >= 2


def test_seed_makes_request_ids_repeatable() -> None:
    ids = []
    for _ in range(2):
        with serve_in_thread(seed=7) as running:
            client = Client(running)
            accepted = client.handshake()
            assert isinstance(accepted, AcceptConnection)
            ids.append(dict(accepted.extra_headers)[b"dg-request-id"])
            client.close_socket()
    assert ids[0] == ids[1]


# ---------------------------------------------------------------------- robustness


def test_many_connections_leak_no_fds_or_threads() -> None:
    threads, fds = threading.active_count(), fd_count()
    with serve_in_thread() as running:
        assert threading.active_count() == threads + 1
        for index in range(30):
            client = Client(running)
            assert isinstance(client.handshake(), AcceptConnection)
            if index % 3 == 0:
                client.send(TextMessage(data='{"type":"CloseStream"}'))
                client.until_close()
            elif index % 3 == 1:
                client.send(CloseConnection(code=1000))
                assert isinstance(client.next_event(), CloseConnection)
                assert client.next_event() is None
            client.close_socket()  # index % 3 == 2: just hang up
        wait_until(lambda: all(not r.live for r in running.connections))
        assert len(running.connections) == 30
    for _ in range(3):  # start/stop cycles leak nothing either
        with serve_in_thread() as running:
            Client(running).close_socket()
    assert threading.active_count() == threads
    assert fd_count() == fds


def test_live_connections_are_dropped_on_close() -> None:
    threads, fds = threading.active_count(), fd_count()
    running = serve_in_thread()
    running.start()
    clients = [Client(running) for _ in range(5)]
    for client in clients:
        assert isinstance(client.handshake(), AcceptConnection)
    running.close()
    running.close()  # idempotent
    for client in clients:
        assert client.next_event() is None  # EOF or reset: the server went away
        client.close_socket()
    assert threading.active_count() == threads
    assert fd_count() == fds
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((running.host, running.port), timeout=TIMEOUT)


def test_garbage_gets_an_http_error_and_the_server_lives_on(
    server: ThreadedEmulatorServer,
) -> None:
    raw = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    raw.sendall(b"\x00\xffnot http at all\r\n\r\n" + bytes(range(256)))
    reply = b""
    while chunk := raw.recv(65536):
        reply += chunk
    raw.close()
    assert reply.startswith(b"HTTP/1.1 4")

    client = Client(server)  # garbage after the handshake: a bad frame
    assert isinstance(client.handshake(), AcceptConnection)
    client.sock.sendall(b"\xff" * 64)
    client.close_socket()

    client = Client(server)
    assert isinstance(client.handshake(), AcceptConnection)
    client.close_socket()
    wait_until(lambda: len(server.connections) == 3 and not any(r.live for r in server.connections))
    assert all(r.error is None for r in server.connections)


def test_a_connection_that_raises_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def flaky(*, channel: int, sample_rate: int) -> ToneRecognizer:
        calls.append(channel)
        if len(calls) == 1:
            raise RuntimeError("recognizer exploded")
        return ToneRecognizer(channel=channel, sample_rate=sample_rate)

    caplog.set_level(logging.ERROR, logger="dgproto.emulator.server")
    with serve_in_thread(config=EmulatorConfig(recognizer=flaky)) as running:
        broken = Client(running)
        assert broken.next_event() is None  # dropped without an answer
        broken.close_socket()
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        client.close_socket()
        wait_until(lambda: not any(r.live for r in running.connections))
        first, second = running.connections
    assert isinstance(first.error, RuntimeError)
    assert second.error is None
    assert "connection 1" in caplog.text
    assert "recognizer exploded" in caplog.text
    assert "test-key" not in caplog.text


@pytest.mark.parametrize("where", ["receive_eof", "handle_timer", "data_to_send"])
def test_emulator_errors_anywhere_drop_only_that_connection(
    where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="dgproto.emulator.server")
    with serve_in_thread(config=EmulatorConfig(idle_timeout=0.05)) as running:
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        record = running.connections[0]

        def boom(*args: object, **kwargs: object) -> Any:
            raise RuntimeError(f"{where} exploded")

        monkeypatch.setattr(record.emulator, where, boom)
        if where == "receive_eof":
            client.sock.shutdown(socket.SHUT_WR)
        elif where == "data_to_send":
            client.send(TextMessage(data='{"type":"KeepAlive"}'))
        assert client.next_event() is None
        client.close_socket()
        wait_until(lambda: not record.live)
        assert isinstance(record.error, RuntimeError)
        other = Client(running)
        assert isinstance(other.handshake(), AcceptConnection)
        other.close_socket()
    assert f"{where} exploded" in caplog.text


def test_a_connection_reset_with_a_failing_emulator_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="dgproto.emulator.server")
    with serve_in_thread() as running:
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        record = running.connections[0]

        def boom(*, now: float) -> None:
            raise RuntimeError("lost and exploded")

        monkeypatch.setattr(record.emulator, "receive_eof", boom)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close_socket()  # a reset: connection_lost without eof_received
        wait_until(lambda: not record.live)
    assert isinstance(record.error, RuntimeError)
    assert "lost and exploded" in caplog.text


def test_over_max_connections_gets_http_429() -> None:
    with serve_in_thread(max_connections=1) as running:
        first = Client(running)
        assert isinstance(first.handshake(), AcceptConnection)
        second = Client(running)
        refused = second.handshake()
        assert isinstance(refused, RejectConnection)
        assert refused.status_code == 429
        body = json.loads(second.body)
        assert body["err_code"] == "TOO_MANY_REQUESTS"
        assert body["request_id"].encode() == dict(refused.headers)[b"dg-request-id"]
        second.close_socket()
        assert running.server.refused == 1
        first.close_socket()
        wait_until(lambda: running.server.live_connections == 0)
        third = Client(running)
        assert isinstance(third.handshake(), AcceptConnection)
        hung = Client(running)  # refused, and still lingering when the server stops
        assert isinstance(hung.handshake(), RejectConnection)
    third.close_socket()
    hung.close_socket()


def test_finished_connections_kept_are_bounded() -> None:
    with serve_in_thread(keep_finished=2) as running:
        for _ in range(4):
            client = Client(running)
            assert isinstance(client.handshake(), AcceptConnection)
            client.close_socket()
            wait_until(lambda: running.server.live_connections == 0)
        assert [r.number for r in running.connections] == [3, 4]


def test_a_slow_reader_pauses_its_input() -> None:
    paused = threading.Event()

    class Transport:
        closing = False

        def is_closing(self) -> bool:
            return self.closing

        def pause_reading(self) -> None:
            paused.set()

        def resume_reading(self) -> None:
            paused.clear()

    loop = asyncio.new_event_loop()
    try:
        server = EmulatorServer()
        server._loop = loop
        protocol = server_module._EmulatorProtocol(server)
        transport = Transport()
        protocol._transport = transport  # type: ignore[assignment]
        protocol.pause_writing()
        assert paused.is_set()
        protocol.resume_writing()
        assert not paused.is_set()
        transport.closing = True
        protocol.pause_writing()
        assert not paused.is_set()
        paused.set()
        protocol.resume_writing()  # a closing transport is left alone
        assert paused.is_set()
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": -1}, "port"),
        ({"port": True}, "port"),
        ({"max_connections": 0}, "max_connections"),
        ({"keep_finished": -1}, "keep_finished"),
        ({"write_buffer_limit": 0}, "write_buffer_limit"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorServer(**kwargs)


def test_a_port_in_use_fails_at_start(server: ThreadedEmulatorServer) -> None:
    threads = threading.active_count()
    with pytest.raises(OSError), serve_in_thread(port=server.port):
        pass  # pragma: no cover
    assert threading.active_count() == threads


def test_a_failing_listen_closes_the_bound_socket() -> None:
    fds = fd_count()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def refuse(*args: object, **kwargs: object) -> asyncio.Server:
            raise OSError("no listening today")

        loop.create_server = refuse  # type: ignore[method-assign]
        with pytest.raises(OSError, match="no listening today"):
            async with serve():
                pass  # pragma: no cover

    asyncio.run(main())
    assert fd_count() == fds


def test_lifecycle_misuse() -> None:
    running = ThreadedEmulatorServer()
    with pytest.raises(RuntimeError, match="not started"):
        _ = running.url
    running.close()  # never started: nothing to do
    with running:
        with pytest.raises(RuntimeError, match="only once"):
            running.start()
        assert "serving" in repr(running)

    async def twice() -> None:
        async with serve() as server:
            with pytest.raises(RuntimeError, match="only once"):
                await server.start()
        await server.aclose()  # idempotent
        assert "closed" in repr(server)
        with pytest.raises(RuntimeError, match="only once"):
            await server.start()
        unstarted = EmulatorServer()
        assert "new" in repr(unstarted)
        with pytest.raises(RuntimeError, match="not started"):
            _ = unstarted.loop
        await unstarted.aclose()  # never started: nothing to do

    asyncio.run(twice())


def test_peer_addresses_print_as_host_port() -> None:
    assert server_module._format_peer(("10.0.0.1", 5, 0, 0)) == "10.0.0.1:5"
    assert server_module._format_peer("/tmp/sock") == "/tmp/sock"


def test_a_host_name_is_resolved_to_one_socket() -> None:
    with serve_in_thread(host="localhost") as running:
        assert running.host in ("127.0.0.1", "::1")
        client = Client(running)
        assert isinstance(client.handshake(), AcceptConnection)
        client.close_socket()


# ---------------------------------------------------------------------- from any runtime


async def _asyncio_handshake(host: str, port: int) -> AcceptConnection | RejectConnection:
    reader, writer = await asyncio.open_connection(host, port)
    ws = WSConnection(ConnectionType.CLIENT)
    writer.write(ws.send(Request(host="localhost", target=QUERY, extra_headers=AUTH)))
    try:
        while True:
            ws.receive_data(await reader.read(65536))
            for event in ws.events():
                assert isinstance(event, (AcceptConnection, RejectConnection))
                return event
    finally:
        writer.close()
        await writer.wait_closed()


def test_serve_in_thread_from_asyncio() -> None:
    async def main() -> None:
        with serve_in_thread() as running:
            event = await _asyncio_handshake(running.host, running.port)
            assert isinstance(event, AcceptConnection)

    threads = threading.active_count()
    asyncio.run(main())
    assert threading.active_count() == threads


def test_serve_in_the_running_asyncio_loop() -> None:
    async def main() -> int:
        config = EmulatorConfig(require_auth=False, idle_timeout=None)  # no timer at all
        async with serve(config=config) as server:
            assert server.url == f"ws://127.0.0.1:{server.port}/v1/listen"
            event = await _asyncio_handshake(server.host, server.port)
            assert isinstance(event, AcceptConnection)
            return server.port

    port = asyncio.run(main())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def test_serve_in_thread_from_trio() -> None:
    async def main() -> None:
        with serve_in_thread() as running:
            stream = await trio.open_tcp_stream(running.host, running.port)
            ws = WSConnection(ConnectionType.CLIENT)
            async with stream:
                await stream.send_all(
                    ws.send(Request(host="localhost", target=QUERY, extra_headers=AUTH))
                )
                events: list[Event] = []
                with trio.fail_after(TIMEOUT):
                    while not events:
                        ws.receive_data(await stream.receive_some())
                        events = list(ws.events())
            assert isinstance(events[0], AcceptConnection)

    threads = threading.active_count()
    trio.run(main)
    assert threading.active_count() == threads


def test_run_puts_back_an_ignored_sigint() -> None:
    """Under nohup SIGINT is ignored; serving must not turn it into KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:

        async def main() -> None:
            urls: list[str] = []
            task = asyncio.create_task(run("127.0.0.1", 0, ready=urls.append))
            while not urls:
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_run_serves_until_cancelled() -> None:
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup

    async def main() -> None:
        urls: list[str] = []
        task = asyncio.create_task(run("127.0.0.1", 0, ready=urls.append))
        while not urls:
            await asyncio.sleep(0.001)
        match = re.fullmatch(r"ws://(.+):(\d+)/v1/listen", urls[0])
        assert match
        assert isinstance(
            await _asyncio_handshake(match.group(1), int(match.group(2))), AcceptConnection
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert signal.getsignal(signal.SIGINT) is before


def test_run_in_a_thread_without_signal_handlers() -> None:
    def main() -> None:
        async def serve_briefly() -> None:
            task = asyncio.create_task(run("127.0.0.1", 0))
            await asyncio.sleep(0.01)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(serve_briefly())

    worker = threading.Thread(target=main)
    worker.start()
    worker.join()


# ---------------------------------------------------------------------- the command


def _serve_process(*args: str) -> subprocess.Popen[str]:
    code = "from dgproto.transports.server import main_serve; raise SystemExit(main_serve(%r))"
    return subprocess.Popen(
        [sys.executable, "-c", code % (["--port", "0", *args],)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_main_serve_prints_the_url_and_exits_cleanly(sig: signal.Signals) -> None:
    process = _serve_process("--api-key", "k1", "--api-key", "k2", "--idle-timeout", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(
            r"dgproto emulator listening on ws://127\.0\.0\.1:(\d+)/v1/listen\n", line
        )
        assert match, line
        address = Address("127.0.0.1", int(match.group(1)))
        for key, expected in ((b"k2", AcceptConnection), (b"other", RejectConnection)):
            client = Client(address, headers=[(b"authorization", b"Token " + key)])
            assert isinstance(client.handshake(), expected)
            client.close_socket()
        process.send_signal(sig)
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test already failed
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_main_serve_rejects_a_bad_fault_spec(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_serve(["--fault", "explode=1"])
    assert exc.value.code == 2
    assert "unknown fault 'explode'" in capsys.readouterr().err


def test_main_serve_reports_a_port_in_use(
    server: ThreadedEmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_serve(["--port", str(server.port), "--no-auth", "--fault", "delay=0.1"]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_main_serve_passes_its_options_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    async def fake_run(host: str, port: int, **kwargs: Any) -> None:
        seen.update(kwargs, host=host, port=port)
        kwargs["ready"]("ws://h:1/v1/listen")

    monkeypatch.setattr(server_module, "run", fake_run)
    argv = ["--host", "::1", "--port", "0", "--api-key", "a", "--api-key", "b"]
    argv += [
        "--no-auth",
        "--idle-timeout",
        "2.5",
        "--fault",
        "fragment=3",
        "--max-connections",
        "9",
    ]
    assert main_serve(argv) == 0
    assert capsys.readouterr().out == "dgproto emulator listening on ws://h:1/v1/listen\n"
    config = seen["config"]
    assert config.accepted_keys == frozenset({"a", "b"})
    assert config.require_auth is False
    assert config.idle_timeout == 2.5
    assert seen["faults"] == FaultPlan(fragment=3)
    assert (seen["host"], seen["port"], seen["max_connections"]) == ("::1", 0, 9)

    seen.clear()
    assert main_serve(["--idle-timeout", "0"]) == 0
    assert seen["config"].idle_timeout is None
    assert seen["faults"] is None
    assert seen["port"] == 8765


def test_main_serve_exits_0_on_an_early_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(server_module, "run", interrupted)
    assert main_serve([]) == 0


def test_main_serve_rejects_a_bad_idle_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_serve(["--idle-timeout", "-1"])
    assert exc.value.code == 2
    assert "idle_timeout" in capsys.readouterr().err


# ---------------------------------------------------------------------- the pytest plugin


def test_fixture_deepgram_emulator(deepgram_emulator: ThreadedEmulatorServer) -> None:
    client = Client(deepgram_emulator)
    assert isinstance(client.handshake(), AcceptConnection)
    client.close_socket()


def test_fixture_deepgram_emulator_factory(deepgram_emulator_factory: Any) -> None:
    strict = deepgram_emulator_factory(config=EmulatorConfig(accepted_keys={"right"}))
    refusing = deepgram_emulator_factory(faults=FaultPlan(reject_status=402))
    assert strict.port != refusing.port
    client = Client(strict)
    assert isinstance(client.handshake(), RejectConnection)  # "test-key" is not accepted
    client.close_socket()
    client = Client(refusing)
    rejected = client.handshake()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 402
    client.close_socket()


def test_emulators_stop_when_the_block_ends() -> None:
    threads = threading.active_count()
    with pytest_plugin.emulators() as start:
        first, second = start(), start(seed=1)
        assert threading.active_count() == threads + 2
    assert threading.active_count() == threads
    for running in (first, second):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((running.host, running.port), timeout=TIMEOUT)


def test_the_plugin_works_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_url(deepgram_emulator):
            assert deepgram_emulator.url.startswith("ws://127.0.0.1:")
            socket.create_connection((deepgram_emulator.host, deepgram_emulator.port)).close()

        def test_factory(deepgram_emulator_factory):
            a, b = deepgram_emulator_factory(), deepgram_emulator_factory()
            assert a.port != b.port
        """
    )
    registered = any(ep.name == "dgproto" for ep in metadata.entry_points(group="pytest11"))
    args = [] if registered else ["-p", "dgproto.transports.pytest_plugin"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
