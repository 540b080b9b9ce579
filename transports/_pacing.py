"""``send_paced`` for each runtime: stream a whole source at ``speed`` times real time.

The schedule is the core's ``Pacer``; this module only reads the source and sleeps on
the runtime's clock (``loop.time()``; ``trio.current_time()``, so trio's ``MockClock``
works; ``time.monotonic()``). trio is imported only when its helper runs (it is
optional). A source is bytes, a binary file object (read one chunk at a time, so a long
file is never loaded whole), or an iterable of chunks (async iterables too, on asyncio
and trio), sent as they come: their sizes set their durations. On asyncio and trio a file
object is read on the event loop (fine for local files; wrap a slow one in an async
iterator).
Each stream's ``send_paced(...)`` method calls these with ``stream.send_audio``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from typing import IO, Protocol

from dgproto._flux_options import FluxOptions
from dgproto._options import LiveOptions
from dgproto._pacing import DEEPGRAM_MAX_SPEED, DEFAULT_CHUNK_SECONDS, Pacer, chunk_size

__all__ = ["AudioSource", "send_paced_asyncio", "send_paced_sync", "send_paced_trio"]

BytesLike = bytes | bytearray | memoryview
#: What ``send_paced`` accepts (``AsyncIterable`` only on asyncio and trio).
AudioSource = BytesLike | IO[bytes] | Iterable[BytesLike] | AsyncIterable[BytesLike]


class _Stream(Protocol):
    """What the helpers need of an adapter's stream: its options (the audio format)."""

    @property
    def options(self) -> LiveOptions | FluxOptions | None: ...


def _plan(
    stream: _Stream,
    speed: float,
    max_speed: float,
    chunk_seconds: float,
    bytes_per_second: int | None,
) -> tuple[Pacer, int]:
    options = stream.options
    if isinstance(options, FluxOptions):  # the same audio format, as the pacer reads it
        options = LiveOptions(encoding=options.encoding, sample_rate=options.sample_rate)
    options = options or LiveOptions()
    size = chunk_size(options, chunk_seconds, bytes_per_second=bytes_per_second)
    if bytes_per_second is None:
        pacer = Pacer.for_options(options, speed=speed, max_speed=max_speed)
    else:
        pacer = Pacer(bytes_per_second=bytes_per_second, speed=speed, max_speed=max_speed)
    return pacer, size


def _chunks(source: BytesLike | IO[bytes] | Iterable[BytesLike], size: int) -> Iterator[BytesLike]:
    """The source cut into chunks: bytes sliced, files read, iterables as they are."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for offset in range(0, len(view), size):
            yield view[offset : offset + size]
        return
    if isinstance(source, str):  # type: ignore[unreachable]  # a common mistake all the same
        raise TypeError("send_paced() takes audio bytes, a binary file or chunks, not str")
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(size):
            yield chunk
        return
    yield from source


async def _achunks(source: AudioSource, size: int) -> AsyncIterable[BytesLike]:
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            yield chunk
    else:
        for chunk in _chunks(source, size):
            yield chunk


async def _send_paced_async(
    send: Callable[[BytesLike], Awaitable[None]],
    source: AudioSource,
    pacer: Pacer,
    size: int,
    clock: Callable[[], float],
    sleep_until: Callable[[float], Awaitable[None]],
) -> int:
    total = 0
    async for chunk in _achunks(source, size):
        if not chunk:
            continue
        due = pacer.due()
        if due is not None and due > clock():
            await sleep_until(due)
        await send(chunk)
        pacer.sent(len(chunk), now=clock())
        total += len(chunk)
    return total


async def send_paced_asyncio(
    stream: _Stream,
    source: AudioSource,
    *,
    speed: float = 1.0,
    max_speed: float = DEEPGRAM_MAX_SPEED,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    bytes_per_second: int | None = None,
) -> int:
    """Send ``source`` through an asyncio stream at ``speed`` x real time; bytes sent.

    Does not close the stream: call ``await stream.close()`` after it for the last results.
    """
    pacer, size = _plan(stream, speed, max_speed, chunk_seconds, bytes_per_second)
    loop = asyncio.get_running_loop()

    async def sleep_until(at: float) -> None:
        await asyncio.sleep(at - loop.time())

    return await _send_paced_async(
        stream.send_audio,  # type: ignore[attr-defined]
        source,
        pacer,
        size,
        loop.time,
        sleep_until,
    )


async def send_paced_trio(
    stream: _Stream,
    source: AudioSource,
    *,
    speed: float = 1.0,
    max_speed: float = DEEPGRAM_MAX_SPEED,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    bytes_per_second: int | None = None,
) -> int:
    """Send ``source`` through a trio stream at ``speed`` x real time; bytes sent."""
    import trio

    pacer, size = _plan(stream, speed, max_speed, chunk_seconds, bytes_per_second)
    return await _send_paced_async(
        stream.send_audio,  # type: ignore[attr-defined]
        source,
        pacer,
        size,
        trio.current_time,
        trio.sleep_until,
    )


def send_paced_sync(
    stream: _Stream,
    source: BytesLike | IO[bytes] | Iterable[BytesLike],
    *,
    speed: float = 1.0,
    max_speed: float = DEEPGRAM_MAX_SPEED,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    bytes_per_second: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Send ``source`` through a blocking stream at ``speed`` x real time; bytes sent.

    ``clock``/``sleep`` are for tests (a fake clock); the stream's reader thread keeps
    the connection serviced while this sleeps.
    """
    pacer, size = _plan(stream, speed, max_speed, chunk_seconds, bytes_per_second)
    send = stream.send_audio  # type: ignore[attr-defined]
    total = 0
    for chunk in _chunks(source, size):
        if not chunk:
            continue
        wait = pacer.delay(clock())
        if wait > 0:
            sleep(wait)
        send(chunk)
        pacer.sent(len(chunk), now=clock())
        total += len(chunk)
    return total
