"""The client process of the end-to-end benchmarks: N concurrent streams of one client.

``python -m benchmarks.e2e_client --client asyncio --streams 100 --duration 20 --url ws://...``
prints one JSON object (its last stdout line) with what it measured. One process per
run, so ``resource.getrusage`` and the peak RSS belong to that run alone.

A run: open N streams (at most ``OPEN_CONCURRENCY`` handshakes at a time), wait until
all are open, then every stream sends one 20 ms linear16 frame every 20 ms on its own
schedule (phases staggered across the 20 ms, each frame's time fixed in advance so
lateness never accumulates) for ``--duration`` seconds while one consumer per stream
takes every event, then CloseStream and drain. The measured window is from "go" until
the last stream sent its last frame; CPU is ``getrusage`` user+system over that window.

A run **kept real time** when every frame was sent, 99% of frames left within
``SEND_LAG_P99`` of their schedule and no stream's last frame was more than
``LAST_FRAME_SLACK`` late. A stream ``GIVE_UP_LAG`` behind stops the run (the client
cannot keep up; catching up would only stretch the run); CPU per stream-minute is then
still per audio actually sent.

The harness is the same for every client (a task or thread per stream, pacing with the
runtime's own sleep); only the library calls differ:

* ``asyncio`` / ``trio`` / ``sync``: dgproto's adapters (``send_audio``, iterate, ``close``);
  with ``--record``, each stream also records (``record=`` a file and its audio sidecar in
  a temporary folder, removed at exit): issue 15's whole-path cost of recording
  (``asyncio-record`` is ``asyncio --record``);
* ``sdk``: deepgram-sdk 7.x ``AsyncDeepgramClient().listen.v1.connect(...)``
  (``send_media``, iterate, ``send_close_stream``), pointed at the server through its
  ``DeepgramClientEnvironment``;
* ``null``: the asyncio harness with no library and no socket (the pacing loop alone),
  to show how much of a run's CPU is the harness itself;
* ``raw``: the **raw-socket floor**: an ``asyncio.Protocol`` that writes a hand-made
  upgrade request, then only frames (with dgproto's frame writer: the C mask when
  installed) and writes audio; incoming frames are split by hand and Results parsed with
  ``json.loads``. No library, no state machine: what any asyncio client must at least pay;
* ``websockets``: a hand-written client on ``websockets.asyncio.client.connect`` (17.x,
  its C mask), ``send(bytes)``, ``async for`` + ``json.loads``: what an app writing its own
  Deepgram client on the most used WebSocket library would cost.

``--chunk-ms MS`` sends MS ms frames every MS ms instead (100: 3200 B frames).

Other modes: ``--idle SECONDS`` opens the streams and holds them idle (memory per idle
stream); ``--hour SECONDS`` streams that much audio through one stream as fast as the
server takes it, sampling RSS (memory growth over a long stream).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import itertools
import json
import os
import shutil
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ._common import (
    Histogram,
    cpu_seconds,
    cpu_ticks,
    peak_rss_bytes,
    process_cpu_seconds,
    raise_fd_limit,
    rss_bytes,
    steal_percent,
)

FRAME_SECONDS = 0.02  # --chunk-ms sets both
CHUNK = bytes(640)  # 20 ms of 16 kHz linear16 silence
#: ``--record``: the folder every dgproto stream records into (``record=``, one file and
#: audio sidecar per stream; issue 15: what recording costs on the whole path)
RECORD_FOLDER: str | None = None
API_KEY = "bench-key"
OPEN_CONCURRENCY = 50
OPEN_TIMEOUT = 90.0
CLOSE_TIMEOUT = 30.0
#: A run "kept real time" when every frame was sent, no stream's last frame left later
#: than LAST_FRAME_SLACK (no backlog built up) and 99% of frames left within
#: SEND_LAG_P99 of their schedule (jitter stayed within a few frames).
LAST_FRAME_SLACK = 0.5
SEND_LAG_P99 = 0.2
#: A stream this far behind its schedule stops the run: the client cannot keep real time,
#: and letting it catch up would only stretch the run (CPU is still per audio sent).
GIVE_UP_LAG = 5.0
CLIENTS = (
    "asyncio",
    "asyncio-record",
    "trio",
    "sync",
    "sdk",
    "null",
    "null-trio",
    "raw",
    "websockets",
)
QUERY = "model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true"
CLOSE_STREAM = '{"type":"CloseStream"}'
MiB = 1024 * 1024


class Recorder:
    """What the streams report, shared by all of them."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.latency = Histogram(resolution=0.0001, limit=10.0)
        self.lag = Histogram(resolution=0.0001, limit=GIVE_UP_LAG + 1.0)
        self.final_lag = Histogram(resolution=0.001, limit=10.0)
        self.results = 0
        self.bad_stamps = 0
        self.frames = 0
        self.behind = False  # some stream fell GIVE_UP_LAG behind: everyone stops
        self.opened = 0
        self.failed = 0
        self.finished = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()  # only the sync client's threads need it

    def late(self, lag: float) -> bool:
        """Record a frame's send lag; True once the run has fallen too far behind."""
        self.lag.add(lag)
        if lag > GIVE_UP_LAG:
            self.behind = True
        return self.behind

    def stamp(self, word: str) -> None:
        """A Results arrived at the app; its newest word is the server's send time."""
        now = time.monotonic()
        self.results += 1
        try:
            sent = float(word)
        except ValueError:
            self.bad_stamps += 1
            return
        self.latency.add(now - sent)

    def error(self, exc: BaseException) -> None:
        if len(self.errors) < 5:
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
            at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
            self.errors.append((text + at)[:300])


# --------------------------------------------------------------------------- asyncio family


class AsyncClient:
    """How one asyncio-based client opens, sends, consumes and closes a stream."""

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def send(self, handle: Any, chunk: bytes) -> None:
        raise NotImplementedError

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        raise NotImplementedError

    async def close(self, handle: Any) -> None:
        raise NotImplementedError


_recordings = itertools.count(1)


def recording() -> dict[str, str]:
    """``connect``'s ``record=`` for the next stream when the run records, else nothing."""
    if RECORD_FOLDER is None:
        return {}
    return {"record": os.path.join(RECORD_FOLDER, f"stream-{next(_recordings)}.jsonl")}


def start_recording() -> None:
    """Record every dgproto stream of this run into a temporary folder (removed at exit)."""
    global RECORD_FOLDER
    RECORD_FOLDER = tempfile.mkdtemp(prefix="dgproto-bench-record-")
    atexit.register(shutil.rmtree, RECORD_FOLDER, True)


class DgprotoAsyncio(AsyncClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        from dgproto import LiveOptions
        from dgproto.transports.asyncio import connect

        self._connect = connect
        self._options = LiveOptions(
            model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True
        )

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._connect(self._options, url=self.url, api_key=API_KEY, **recording())

    async def send(self, handle: Any, chunk: bytes) -> None:
        await handle.send_audio(chunk)

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        from dgproto import Results

        async for event in handle:
            if type(event) is Results:
                words = event.alternatives[0].words
                if words:
                    recorder.stamp(words[-1].word)

    async def close(self, handle: Any) -> None:
        await handle.close()


class OfficialSdk(AsyncClient):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        warnings.simplefilter("ignore", DeprecationWarning)  # websockets.legacy
        from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

        base = url.split("/v1/listen", 1)[0]
        environment = DeepgramClientEnvironment(
            base=base.replace("ws://", "http://", 1),
            production=base,
            agent=base,
            agent_rest=base.replace("ws://", "http://", 1),
        )
        self._client = AsyncDeepgramClient(api_key=API_KEY, environment=environment)

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        opened: contextlib.AbstractAsyncContextManager[Any] = self._client.listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=16000, interim_results="true"
        )
        return opened

    async def send(self, handle: Any, chunk: bytes) -> None:
        await handle.send_media(chunk)

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        with contextlib.suppress(Exception):  # the iterator raises on an abnormal close
            async for message in handle:
                if getattr(message, "type", None) == "Results":
                    words = message.channel.alternatives[0].words
                    if words:
                        recorder.stamp(words[-1].word)

    async def close(self, handle: Any) -> None:
        await handle.send_close_stream()


class NullClient(AsyncClient):
    """The harness alone: no library, no socket."""

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[Any]:
        yield asyncio.Event()

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._open()

    async def send(self, handle: Any, chunk: bytes) -> None:
        return None

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        await handle.wait()

    async def close(self, handle: Any) -> None:
        handle.set()


class _RawProtocol(asyncio.Protocol):
    """The raw-socket floor's connection (see the module docs)."""

    def __init__(self, host: str, target: str) -> None:
        from dgproto._framing import BinaryFrameWriter

        self.frame = BinaryFrameWriter().frame
        self.request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Token {API_KEY}\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.buffer = b""
        self.upgraded = False
        self.recorder: Recorder | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("lost during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(buffer[:40].decode("latin-1")))
                return
            self.upgraded = True
            self.opened.set_result(None)
            buffer = buffer[end + 4 :]
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            opcode, length = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                length, start = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                length, start = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), pos + 10
            if start + length > size:
                break
            if opcode == 1 and self.recorder is not None:
                message = json.loads(buffer[start : start + length])
                if message.get("type") == "Results":
                    words = message["channel"]["alternatives"][0]["words"]
                    if words:
                        self.recorder.stamp(words[-1]["word"])
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
            pos = start + length
        self.buffer = buffer[pos:]


class RawSocket(AsyncClient):
    """The raw-socket floor (see the module docs)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.target = "/" + path + ("&" if "?" in path else "?") + QUERY

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[_RawProtocol]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            lambda: _RawProtocol(self.host, self.target), self.host, self.port
        )
        try:
            await protocol.opened
            yield protocol
        finally:
            transport.close()

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._open()

    async def send(self, handle: Any, chunk: bytes) -> None:
        handle.transport.write(handle.frame(chunk))

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        handle.recorder = recorder
        await handle.closed

    async def close(self, handle: Any) -> None:
        # a masked text frame built by hand; an all-zero key leaves the payload as it is
        text = CLOSE_STREAM.encode()
        handle.transport.write(bytes((0x81, 0x80 | len(text))) + b"\0\0\0\0" + text)


class HandWrittenWebsockets(AsyncClient):
    """A hand-written client on the ``websockets`` library (see the module docs)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from websockets.asyncio.client import connect

        self._connect = connect
        self._url = url + ("&" if "?" in url else "?") + QUERY

    def open(self) -> contextlib.AbstractAsyncContextManager[Any]:
        opened: contextlib.AbstractAsyncContextManager[Any] = self._connect(
            self._url, additional_headers={"Authorization": f"Token {API_KEY}"}
        )
        return opened

    async def send(self, handle: Any, chunk: bytes) -> None:
        await handle.send(chunk)

    async def consume(self, handle: Any, recorder: Recorder) -> None:
        with contextlib.suppress(Exception):  # an abnormal close ends the iteration
            async for message in handle:
                if isinstance(message, str):
                    data = json.loads(message)
                    if data.get("type") == "Results":
                        words = data["channel"]["alternatives"][0]["words"]
                        if words:
                            recorder.stamp(words[-1]["word"])

    async def close(self, handle: Any) -> None:
        await handle.send(CLOSE_STREAM)


async def run_asyncio_family(
    client: AsyncClient, streams: int, duration: float, window: Window
) -> Recorder:
    loop = asyncio.get_running_loop()
    recorder = Recorder(streams)
    frames = round(duration / FRAME_SECONDS)
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    settled = asyncio.Event()  # every stream opened or failed
    go = asyncio.Event()
    done = asyncio.Event()  # every stream sent its last frame (or failed)
    t0 = 0.0

    def settle() -> None:
        if recorder.opened + recorder.failed >= streams:
            settled.set()

    def finish() -> None:
        recorder.finished += 1
        if recorder.finished >= streams:
            done.set()

    async def one(index: int) -> None:
        opened = sent_all = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with gate:
                    handle = await stack.enter_async_context(client.open())
                recorder.opened += 1
                opened = True
                settle()
                consumer = asyncio.create_task(client.consume(handle, recorder))
                await go.wait()
                start = t0 + index * FRAME_SECONDS / streams
                target = start
                for k in range(frames):
                    target = start + k * FRAME_SECONDS
                    now = loop.time()
                    if target > now:
                        await asyncio.sleep(target - now)
                        now = loop.time()
                    if recorder.late(now - target):
                        break
                    await client.send(handle, CHUNK)
                    recorder.frames += 1
                recorder.final_lag.add(loop.time() - target)
                sent_all = True
                finish()
                await client.close(handle)
                await asyncio.wait_for(consumer, CLOSE_TIMEOUT)
        except Exception as exc:
            recorder.error(exc)
            if not opened:
                recorder.failed += 1
                settle()
            elif not sent_all:
                finish()

    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    try:
        await asyncio.wait_for(settled.wait(), OPEN_TIMEOUT)
    except asyncio.TimeoutError:
        recorder.error(TimeoutError(f"only {recorder.opened} streams opened in time"))
    window.opened()
    t0 = loop.time() + 0.05
    window.start()
    go.set()
    if recorder.opened:
        try:
            await asyncio.wait_for(done.wait(), duration + 60.0)
        except asyncio.TimeoutError:
            recorder.error(TimeoutError("streams did not finish sending in time"))
    window.stop()
    _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT + 5.0)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5.0)
    return recorder


# --------------------------------------------------------------------------- trio


class NullTrioStream:
    """``null-trio``: a stream that sends and closes nothing."""

    async def send_audio(self, chunk: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


async def run_trio(
    url: str, streams: int, duration: float, window: Window, null: bool = False
) -> Recorder:
    """dgproto's trio adapter; with ``null``, the trio harness alone (no library, no
    socket: the pacing loop, to show what trio's own sleeping costs)."""
    import trio

    from dgproto import LiveOptions, Results
    from dgproto.transports.trio import connect

    options = LiveOptions(
        model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True
    )
    recorder = Recorder(streams)
    frames = round(duration / FRAME_SECONDS)
    gate = trio.Semaphore(OPEN_CONCURRENCY)
    settled = trio.Event()
    go = trio.Event()
    done = trio.Event()
    start_at = [0.0]

    def settle() -> None:
        if recorder.opened + recorder.failed >= streams:
            settled.set()

    def finish() -> None:
        recorder.finished += 1
        if recorder.finished >= streams:
            done.set()

    async def consume(stream: Any) -> None:
        async for event in stream:
            if type(event) is Results:
                words = event.alternatives[0].words
                if words:
                    recorder.stamp(words[-1].word)

    async def one(index: int) -> None:
        opened = sent_all = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                if null:
                    stream = NullTrioStream()
                else:
                    async with gate:
                        stream = await stack.enter_async_context(
                            connect(options, url=url, api_key=API_KEY, **recording())
                        )
                recorder.opened += 1
                opened = True
                settle()
                async with trio.open_nursery() as nursery:
                    if not null:
                        nursery.start_soon(consume, stream)
                    await go.wait()
                    start = start_at[0] + index * FRAME_SECONDS / streams
                    target = start
                    for k in range(frames):
                        target = start + k * FRAME_SECONDS
                        await trio.sleep_until(target)
                        if recorder.late(trio.current_time() - target):
                            break
                        await stream.send_audio(CHUNK)
                        recorder.frames += 1
                    recorder.final_lag.add(trio.current_time() - target)
                    sent_all = True
                    finish()
                    with trio.move_on_after(CLOSE_TIMEOUT):
                        await stream.close()
        except Exception as exc:
            recorder.error(exc)
            if not opened:
                recorder.failed += 1
                settle()
            elif not sent_all:
                finish()

    async with trio.open_nursery() as nursery:
        for i in range(streams):
            nursery.start_soon(one, i)
        with trio.move_on_after(OPEN_TIMEOUT) as scope:
            await settled.wait()
        if scope.cancelled_caught:
            recorder.error(TimeoutError(f"only {recorder.opened} streams opened in time"))
        window.opened()
        start_at[0] = trio.current_time() + 0.05
        window.start()
        go.set()
        if recorder.opened:
            with trio.move_on_after(duration + 60.0) as scope:
                await done.wait()
            if scope.cancelled_caught:
                recorder.error(TimeoutError("streams did not finish sending in time"))
        window.stop()
        nursery.cancel_scope.deadline = trio.current_time() + CLOSE_TIMEOUT + 5.0
    return recorder


# --------------------------------------------------------------------------- sync


def run_sync(url: str, streams: int, duration: float, window: Window) -> Recorder:
    from dgproto import LiveOptions, Results
    from dgproto.transports.sync import connect

    options = LiveOptions(
        model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True
    )
    recorder = Recorder(streams)
    lock = recorder.lock
    frames = round(duration / FRAME_SECONDS)
    gate = threading.BoundedSemaphore(OPEN_CONCURRENCY)
    settled = threading.Event()
    go = threading.Event()
    done = threading.Event()
    start_at = [0.0]

    def settle() -> None:
        if recorder.opened + recorder.failed >= streams:
            settled.set()

    def finish() -> None:
        recorder.finished += 1
        if recorder.finished >= streams:
            done.set()

    def consume(stream: Any) -> None:
        for event in stream:
            if type(event) is Results:
                words = event.alternatives[0].words
                if words:
                    with lock:
                        recorder.stamp(words[-1].word)

    def one(index: int) -> None:
        opened = sent_all = False
        try:
            with contextlib.ExitStack() as stack:
                with gate:
                    stream = stack.enter_context(
                        connect(options, url=url, api_key=API_KEY, **recording())
                    )
                with lock:
                    recorder.opened += 1
                    settle()
                opened = True
                consumer = threading.Thread(target=consume, args=(stream,), daemon=True)
                consumer.start()
                if not go.wait(OPEN_TIMEOUT + 10):
                    return
                start = start_at[0] + index * FRAME_SECONDS / streams
                target = start
                for k in range(frames):
                    target = start + k * FRAME_SECONDS
                    delay = target - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    lag = time.monotonic() - target
                    with lock:
                        if recorder.late(lag):
                            break
                    stream.send_audio(CHUNK)
                    with lock:
                        recorder.frames += 1
                with lock:
                    recorder.final_lag.add(time.monotonic() - target)
                    finish()
                sent_all = True
                stream.close()
                consumer.join(CLOSE_TIMEOUT)
        except Exception as exc:
            with lock:
                recorder.error(exc)
                if not opened:
                    recorder.failed += 1
                    settle()
                elif not sent_all:
                    finish()

    threads = [
        threading.Thread(target=one, args=(i,), daemon=True, name=f"stream-{i}")
        for i in range(streams)
    ]
    for thread in threads:
        thread.start()
    if not settled.wait(OPEN_TIMEOUT):
        recorder.error(TimeoutError(f"only {recorder.opened} streams opened in time"))
    window.opened()
    start_at[0] = time.monotonic() + 0.05
    window.start()
    go.set()
    if recorder.opened and not done.wait(duration + 60.0):
        recorder.error(TimeoutError("streams did not finish sending in time"))
    window.stop()
    deadline = time.monotonic() + CLOSE_TIMEOUT + 5.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return recorder


# --------------------------------------------------------------------------- the window


class Window:
    """CPU, wall time and RSS at the edges of the measured window."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.rss_baseline = rss_bytes()
        self.marks: dict[str, float] = {"begin": time.monotonic()}
        self.rss: dict[str, int] = {}
        self.cpu: dict[str, float] = {}
        self.server_cpu: dict[str, float | None] = {}
        self.faults: dict[str, int] = {}
        self.ticks: dict[str, list[int] | None] = {}

    def opened(self) -> None:
        self.marks["opened"] = time.monotonic()
        self.rss["opened"] = rss_bytes()

    def start(self) -> None:
        self.marks["start"] = time.monotonic()
        self.cpu["start"] = cpu_seconds()
        self.faults["start"] = _minor_faults()
        self.ticks["start"] = cpu_ticks()
        self.server_cpu["start"] = self._server_cpu()

    def stop(self) -> None:
        self.cpu["stop"] = cpu_seconds()
        self.faults["stop"] = _minor_faults()
        self.ticks["stop"] = cpu_ticks()
        self.marks["stop"] = time.monotonic()
        self.server_cpu["stop"] = self._server_cpu()
        self.rss["stop"] = rss_bytes()

    def _server_cpu(self) -> float | None:
        return None if self.server_pid is None else process_cpu_seconds(self.server_pid)


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def report(
    client: str, streams: int, duration: float, recorder: Recorder, window: Window
) -> dict[str, Any]:
    wall = window.marks["stop"] - window.marks["start"]
    cpu = window.cpu["stop"] - window.cpu["start"]
    audio_seconds = recorder.frames * FRAME_SECONDS
    server = None
    if window.server_cpu.get("start") is not None and window.server_cpu.get("stop") is not None:
        server = window.server_cpu["stop"] - window.server_cpu["start"]  # type: ignore[operator]
    final_lag = recorder.final_lag.maximum if recorder.final_lag.count else None
    expected_frames = streams * round(duration / FRAME_SECONDS)
    lag_p99 = recorder.lag.percentile(0.99)
    sustained = (
        recorder.opened == streams
        and recorder.frames == expected_frames
        and final_lag is not None
        and final_lag <= LAST_FRAME_SLACK
        and lag_p99 is not None
        and lag_p99 <= SEND_LAG_P99
    )
    return {
        "client": client,
        "streams": streams,
        "duration": duration,
        "frame_bytes": len(CHUNK),
        "recording": RECORD_FOLDER is not None,
        "opened": recorder.opened,
        "failed": recorder.failed,
        "open_seconds": round(window.marks["opened"] - window.marks["begin"], 2),
        "window_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_fraction_of_one_core": round(cpu / wall, 3) if wall > 0 else None,
        "saturated": wall > 0 and cpu / wall >= 0.95,
        "audio_seconds_sent": round(audio_seconds, 2),
        "cpu_seconds_per_stream_minute": round(cpu / (audio_seconds / 60), 4)
        if audio_seconds
        else None,
        "frames_sent": recorder.frames,
        "frames_expected": expected_frames,
        "send_lag": recorder.lag.summary(),
        "last_frame_lag_ms_max": None if final_lag is None else round(final_lag * 1000, 1),
        "realtime_sustained": sustained,
        "gave_up": recorder.behind,
        "results_received": recorder.results,
        "latency": recorder.latency.summary(),
        "bad_stamps": recorder.bad_stamps,
        "rss_baseline_mib": round(window.rss_baseline / MiB, 1),
        "rss_opened_mib": round(window.rss.get("opened", 0) / MiB, 1),
        "rss_end_mib": round(window.rss.get("stop", 0) / MiB, 1),
        "rss_peak_mib": round(peak_rss_bytes() / MiB, 1),
        "rss_per_stream_kib": round(
            (window.rss.get("stop", 0) - window.rss_baseline) / streams / 1024, 1
        ),
        "server_cpu_seconds": None if server is None else round(server, 3),
        "server_cpu_fraction_of_one_core": None
        if server is None or wall <= 0
        else round(server / wall, 3),
        "errors": recorder.errors,
        # first touches of memory the allocator had given back: kernel time in ``cpu``
        "minor_page_faults": window.faults["stop"] - window.faults["start"],
        "cpu_steal_percent": steal_percent(window.ticks["start"], window.ticks["stop"]),
    }


# --------------------------------------------------------------------------- memory modes


async def _idle_asyncio_family(client: AsyncClient, streams: int, hold: float) -> dict[str, Any]:
    """RSS per idle open stream: warm up with one stream, then open ``streams`` more."""
    async with client.open() as handle:  # warm-up: imports and first-use caches
        await client.send(handle, CHUNK)
    gc.collect()
    before = rss_bytes()
    async with contextlib.AsyncExitStack() as stack:
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def enter() -> None:
            async with gate:
                await stack.enter_async_context(client.open())

        await asyncio.wait_for(asyncio.gather(*(enter() for _ in range(streams))), OPEN_TIMEOUT)
        await asyncio.sleep(hold)
        gc.collect()
        after = rss_bytes()
    return {"before": before, "after": after}


async def _idle_trio(url: str, streams: int, hold: float) -> dict[str, Any]:
    import trio

    from dgproto import LiveOptions
    from dgproto.transports.trio import connect

    options = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000)
    async with connect(options, url=url, api_key=API_KEY) as stream:
        await stream.send_audio(CHUNK)
    gc.collect()
    before = rss_bytes()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(streams):
            await stack.enter_async_context(connect(options, url=url, api_key=API_KEY))
        await trio.sleep(hold)
        gc.collect()
        after = rss_bytes()
    return {"before": before, "after": after}


def _idle_sync(url: str, streams: int, hold: float) -> dict[str, Any]:
    from dgproto import LiveOptions
    from dgproto.transports.sync import connect

    options = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000)
    with connect(options, url=url, api_key=API_KEY) as stream:
        stream.send_audio(CHUNK)
    gc.collect()
    before = rss_bytes()
    with contextlib.ExitStack() as stack:
        for _ in range(streams):
            stack.enter_context(connect(options, url=url, api_key=API_KEY))
        time.sleep(hold)
        gc.collect()
        after = rss_bytes()
    return {"before": before, "after": after}


def run_idle(client: str, url: str, streams: int, hold: float) -> dict[str, Any]:
    if client == "trio":
        import trio

        measured = trio.run(_idle_trio, url, streams, hold)
    elif client == "sync":
        measured = _idle_sync(url, streams, hold)
    else:
        impl = DgprotoAsyncio(url) if client == "asyncio" else OfficialSdk(url)
        measured = asyncio.run(_idle_asyncio_family(impl, streams, hold))
    growth = measured["after"] - measured["before"]
    return {
        "client": client,
        "idle_streams": streams,
        "hold_seconds": hold,
        "rss_before_mib": round(measured["before"] / MiB, 2),
        "rss_after_mib": round(measured["after"] / MiB, 2),
        "rss_per_idle_stream_kib": round(growth / streams / 1024, 1),
    }


async def _hour(url: str, audio_seconds: float, samples: int) -> dict[str, Any]:
    from dgproto import Config, LiveOptions, Results
    from dgproto.transports.asyncio import connect

    options = LiveOptions(
        model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True
    )
    frames = round(audio_seconds / FRAME_SECONDS)
    every = max(1, frames // samples)
    points: list[tuple[float, int]] = []
    results = 0
    started = time.monotonic()
    cpu0 = cpu_seconds()
    async with connect(
        options, url=url, api_key=API_KEY, config=Config(close_timeout=60.0)
    ) as stream:

        async def consume() -> None:
            nonlocal results
            async for event in stream:
                if type(event) is Results:
                    results += 1

        consumer = asyncio.create_task(consume())
        for k in range(frames):
            await stream.send_audio(CHUNK)
            if k % 50 == 0:
                await asyncio.sleep(0)  # let the consumer run while the socket keeps up
            if k % every == 0:
                points.append((k * FRAME_SECONDS, rss_bytes()))
        await stream.close()
        await asyncio.wait_for(consumer, CLOSE_TIMEOUT)
    points.append((frames * FRAME_SECONDS, rss_bytes()))
    wall = time.monotonic() - started
    # growth after warm-up: from the first sample past 10% of the stream to the end
    warm = [p for p in points if p[0] >= 0.1 * audio_seconds]
    first, last = warm[0], warm[-1]
    return {
        "client": "asyncio",
        "audio_seconds": audio_seconds,
        "frame_bytes": len(CHUNK),
        "wall_seconds": round(wall, 2),
        "speed_x_realtime": round(audio_seconds / wall, 1),
        "cpu_seconds": round(cpu_seconds() - cpu0, 2),
        "results_received": results,
        "rss_mib_samples": [(round(t), round(r / MiB, 2)) for t, r in points],
        "rss_growth_after_warmup_kib": round((last[1] - first[1]) / 1024, 1),
        "rss_peak_mib": round(peak_rss_bytes() / MiB, 2),
    }


# --------------------------------------------------------------------------- main


def _profiled(profile: str | None, func: Callable[[], Any]) -> Any:
    if profile is None:
        return func()
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(func)
    finally:
        profiler.dump_stats(profile)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one end-to-end benchmark run (JSON out)")
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--idle", type=float, metavar="SECONDS", help="memory: hold idle")
    parser.add_argument("--hour", type=float, metavar="AUDIO_SECONDS", help="memory: long stream")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats of the run")
    parser.add_argument(
        "--record", action="store_true", help="dgproto clients: record= a file per stream"
    )
    parser.add_argument(
        "--chunk-ms", type=int, default=20, help="audio per frame (ms of 16 kHz linear16)"
    )
    args = parser.parse_args(argv)
    global FRAME_SECONDS, CHUNK
    FRAME_SECONDS, CHUNK = args.chunk_ms / 1000, bytes(32 * args.chunk_ms)
    if args.record:
        start_recording()
    raise_fd_limit(4 * args.streams + 256)
    result: dict[str, Any]
    try:
        if args.hour is not None:
            result = asyncio.run(_hour(args.url, args.hour, 20))
        elif args.idle is not None:
            result = run_idle(args.client, args.url, args.streams, args.idle)
        else:
            result = _stream(args)
    except Exception as exc:
        result = {"client": args.client, "streams": args.streams, "error": repr(exc)[:500]}
    print(json.dumps(result), flush=True)


def _stream(args: argparse.Namespace) -> dict[str, Any]:
    client: str = args.client
    # Build the client (imports and all) before the baseline RSS is taken.
    impl: AsyncClient | None = None
    if client == "asyncio":
        impl = DgprotoAsyncio(args.url)
    elif client == "asyncio-record":  # the same as --client asyncio --record
        start_recording()
        impl = DgprotoAsyncio(args.url)
    elif client == "sdk":
        impl = OfficialSdk(args.url)
    elif client == "null":
        impl = NullClient(args.url)
    elif client == "raw":
        impl = RawSocket(args.url)
    elif client == "websockets":
        impl = HandWrittenWebsockets(args.url)
    elif client in ("trio", "null-trio"):
        import trio  # noqa: F401

        import dgproto.transports.trio
    else:
        import dgproto.transports.sync  # noqa: F401
    gc.collect()
    window = Window(args.server_pid)

    def go() -> Recorder:
        if impl is not None:
            return asyncio.run(run_asyncio_family(impl, args.streams, args.duration, window))
        if client in ("trio", "null-trio"):
            import trio

            null = client == "null-trio"
            return trio.run(run_trio, args.url, args.streams, args.duration, window, null)
        return run_sync(args.url, args.streams, args.duration, window)

    recorder = _profiled(args.profile, go)
    return report(client, args.streams, args.duration, recorder, window)


if __name__ == "__main__":
    main()
