"""Regression tests for issue 10 in the three adapters, against hostile loopback servers:
what ``connect()`` raises and logs (#3), the event queue's byte bound (#5), and the DEBUG
wire trace's redaction of a ``callback`` URL (#10)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import Closed, UnknownMessage
from dgproto._options import LiveOptions
from dgproto.emulator import EmulatorConfig
from dgproto.transports import _common
from dgproto.transports.server import serve_in_thread

from .adapter_drivers import Driver
from .helpers import raw_frame
from .test_adapters import FAST, SECRET, RawServer, accept, driver, never_answer

__all__ = ["driver"]  # the fixture, shared with test_adapters.py

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _read_request(sock: socket.socket) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = sock.recv(65536)
        if not chunk:
            break
        request += chunk
    return request


def _accept_token(request: bytes) -> bytes:
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def answer_with(
    response: Callable[[bytes], bytes],
) -> Callable[[socket.socket, threading.Event], None]:
    """A server answering the upgrade with ``response(request)``, then only reading."""

    def handler(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(response(_read_request(sock)))
        never_answer(sock, stop)

    return handler


def deep_400(request: bytes) -> bytes:
    body = b"[" * 50_000
    return b"HTTP/1.1 400 Bad Request\r\ncontent-length: %d\r\n\r\n" % len(body) + body


def non_ascii_101(request: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgr\xe9ade\r\nSec-WebSocket-Accept: " + _accept_token(request) + b"\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("response", "expected"),
    [(deep_400, HandshakeError), (non_ascii_101, ConnectionClosedError)],
    ids=["deep-nested-400", "non-ascii-101"],
)
def test_3_connect_raises_only_documented_errors_and_logs_nothing_at_error(
    driver: Driver,
    caplog: pytest.LogCaptureFixture,
    response: Callable[[bytes], bytes],
    expected: type[Exception],
) -> None:
    async def scenario(d: Driver) -> None:
        with RawServer(answer_with(response)) as raw, pytest.raises(expected) as info:
            async with d.connect(url=raw.url, config=FAST):
                raise AssertionError("unreachable")
        error = info.value
        if isinstance(error, HandshakeError):
            assert error.status_code == 400
        else:
            assert isinstance(error, ConnectionClosedError)
            assert error.closed.code == 1002

    with caplog.at_level(logging.DEBUG):
        driver.run(scenario)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# --------------------------------------------------------------------------- #5

BIG = 256 * 1024
COUNT = 24


def _send_all(sock: socket.socket, data: bytes, stop: threading.Event) -> bool:
    """Send while the client reads; give up when the test ends."""
    view = memoryview(data)
    while view:
        if stop.is_set():
            return False
        _, writable, _ = select.select([], [sock], [], 0.05)
        if writable:
            view = view[sock.send(view) :]
    return True


def big_messages(sock: socket.socket, stop: threading.Event) -> None:
    """Accept, send ``COUNT`` text messages of ``BIG`` bytes each, then close with 1000."""
    accept(sock)
    for index in range(COUNT):
        text = json.dumps({"type": "Big", "index": index, "pad": "x" * BIG})
        if not _send_all(sock, raw_frame(0x1, text.encode()), stop):
            return
    if _send_all(sock, raw_frame(0x8, (1000).to_bytes(2, "big")), stop):
        never_answer(sock, stop)


def test_5_event_queue_is_bounded_by_bytes_yet_loses_nothing(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages of 256 KiB to an app that stops iterating: reading pauses near 1 MiB
    queued (before: all 24, 6 MiB, as the count limit is 256 events)."""
    monkeypatch.setattr(_common, "EVENT_QUEUE_BYTES", 1 << 20)
    monkeypatch.setattr(_common, "EVENT_QUEUE_RESUME_BYTES", 1 << 19)

    async def scenario(d: Driver) -> None:
        with RawServer(big_messages) as raw:
            async with d.connect(url=raw.url, config=FAST) as stream:
                await d.sleep(0.5)  # ample time to read 6 MiB over loopback
                held = d.queued(stream)
                events = await d.collect(stream)
        # the limit (4 messages) plus what one socket read can complete
        assert 4 <= held <= 6
        bigs = [e for e in events if isinstance(e, UnknownMessage)]
        assert [e.raw["index"] for e in bigs] == list(range(COUNT))
        assert isinstance(events[-1], Closed)
        assert events[-1].code == 1000

    driver.run(scenario)


def test_5_event_buffer_counts_the_socket_bytes_behind_its_events() -> None:
    from dgproto._connection import ListenConnection

    from .helpers import FakeServer

    buffer = _common.EventBuffer(limit=100, resume=50, limit_bytes=1000, resume_bytes=500)
    trace = _common.WireTrace(logging.getLogger("test"))
    conn = ListenConnection(host="dg.test")
    server = FakeServer()
    conn.connect(now=0)
    server.feed(conn.data_to_send())
    conn.receive_data(server.take(), now=0)
    assert buffer.collect(conn, trace)  # Connected, charged with the 101's bytes
    assert buffer.queued_bytes == conn.bytes_received
    server.send_json({"type": "Wibble", "pad": "y" * 900})
    data = server.take()
    conn.receive_data(data[:500], now=0)
    assert not buffer.collect(conn, trace)  # half a message: nothing to charge it to yet
    conn.receive_data(data[500:], now=0)
    assert buffer.collect(conn, trace)
    assert buffer.queued_bytes == conn.bytes_received > 1000
    assert not buffer.reading_allowed()  # past 1000 bytes
    buffer.pop()  # Connected: its bytes go, the big message's stay
    assert not buffer.reading_allowed()  # still above resume_bytes
    buffer.pop()
    assert buffer.queued_bytes == 0
    assert buffer.reading_allowed()
    # a new core (a reconnect) is counted from its own zero
    other = ListenConnection(host="dg.test")
    other.abort(now=0)
    assert buffer.collect(other, trace)
    assert buffer.queued_bytes == 0


# --------------------------------------------------------------------------- #10


def test_10_debug_wire_trace_never_shows_callback_credentials_or_the_key(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    callback = "https://hookuser:hookpass@hooks.example/cb?token=tok123"
    options = LiveOptions(encoding="linear16", sample_rate=16000, callback=callback)

    async def scenario(d: Driver) -> Any:
        with serve_in_thread(config=EmulatorConfig(require_auth=True)) as srv:
            async with d.connect(
                options=options, url=srv.url, api_key=SECRET, config=FAST
            ) as stream:
                await stream.send_audio(bytes(3200))
                assert "hookpass" not in repr(stream)
                return await stream.close()

    with caplog.at_level(logging.DEBUG, logger="dgproto"):
        closed = driver.run(scenario)
    assert closed.clean
    trace = "\n".join(r.getMessage() for r in caplog.records)
    assert "upgrade request" in trace
    assert "callback=https://<redacted>@hooks.example" in trace
    for leak in ("hookuser", "hookpass", "tok123", SECRET):
        assert leak not in trace
