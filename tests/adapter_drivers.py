"""One scenario, three runtimes: drivers giving the asyncio, trio and blocking adapters one
async surface, so ``tests/test_adapters.py`` writes each scenario once.

A scenario is ``async def scenario(d: Driver) -> None``. The asyncio and trio drivers run
it on their event loop and hand out the adapter's own stream. The sync driver runs it
with no event loop at all: its awaitables never suspend (``run_blocking`` checks), and
its stream view just calls the blocking methods, so the blocking adapter is exercised
exactly as a threaded app would use it. Each driver interrupts a body the native way:
asyncio cancels the task, trio cancels a scope, and blocking code gets Ctrl-C (a real
SIGINT to the main thread).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio

from dgproto._events import Event
from dgproto.transports import asyncio as asyncio_adapter
from dgproto.transports import sync as sync_adapter
from dgproto.transports import trio as trio_adapter

T = TypeVar("T")
Scenario = Callable[["Driver"], Awaitable[Any]]


def open_fds() -> int:
    """File descriptors this process holds (Linux), or -1 where that cannot be counted."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return -1


def reader_threads() -> int:
    return sum(t.name == "dgproto-sync-reader" for t in threading.enumerate())


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the sync driver's scenarios) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a blocking scenario awaited something that suspends")


class Driver:
    """What a scenario may use. Subclasses implement it per runtime."""

    name = "?"
    adapter: Any

    def run(self, scenario: Scenario) -> Any:
        raise NotImplementedError

    def connect(self, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        """``adapter.connect(**kwargs)`` as an async context manager."""
        return self.adapter.connect(**kwargs)  # type: ignore[no-any-return]

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def collect(self, stream: Any) -> list[Event]:
        """Iterate the stream to its end (``Closed``)."""
        return [event async for event in stream]

    async def interrupted(self, body: Callable[[], Awaitable[Any]], *, after: float) -> None:
        """Run ``body``, interrupt it natively after ``after`` s, assert it propagated."""
        raise NotImplementedError

    async def later(self, delay: float, job: Callable[[], Awaitable[Any]]) -> None:
        """Start ``job`` concurrently after ``delay`` s (a task, or a thread for sync)."""
        raise NotImplementedError

    def tasks(self) -> int:
        """Tasks alive in the runtime (0 for sync)."""
        return 0

    def queued(self, stream: Any) -> int:
        """Events waiting in the stream's buffer."""
        return len(stream._buffer)

    def fileno(self, stream: Any) -> int:
        """The stream's socket, for tests that break or squeeze it."""
        return stream._transport.socket.fileno()  # type: ignore[no-any-return]

    def raw_socket(self, stream: Any) -> socket.socket:
        """A duplicate of the stream's socket (close it when done): same connection."""
        return socket.socket(fileno=os.dup(self.fileno(stream)))


class AsyncioDriver(Driver):
    name = "asyncio"
    adapter = asyncio_adapter

    def __init__(self) -> None:
        self._jobs: list[asyncio.Task[Any]] = []

    def run(self, scenario: Scenario) -> Any:
        async def main() -> Any:
            try:
                return await scenario(self)
            finally:
                for job in self._jobs:
                    await job

        return asyncio.run(main())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def interrupted(self, body: Callable[[], Awaitable[Any]], *, after: float) -> None:
        task = asyncio.ensure_future(body())
        await asyncio.sleep(after)
        assert not task.done(), "the body ended before it was interrupted"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def later(self, delay: float, job: Callable[[], Awaitable[Any]]) -> None:
        async def delayed() -> None:
            await asyncio.sleep(delay)
            await job()

        self._jobs.append(asyncio.ensure_future(delayed()))

    def tasks(self) -> int:
        return len(asyncio.all_tasks())

    def queued(self, stream: Any) -> int:
        return len(stream._protocol.buffer)

    def fileno(self, stream: Any) -> int:
        return stream._protocol.transport.get_extra_info("socket").fileno()  # type: ignore[no-any-return]


class TrioDriver(Driver):
    name = "trio"
    adapter = trio_adapter

    def __init__(self, clock: Any = None) -> None:
        self._nursery: trio.Nursery | None = None
        self.clock = clock

    def run(self, scenario: Scenario) -> Any:
        async def main() -> Any:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                return await scenario(self)

        return trio.run(main, clock=self.clock)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def interrupted(self, body: Callable[[], Awaitable[Any]], *, after: float) -> None:
        with trio.move_on_after(after) as scope:
            await body()
        assert scope.cancelled_caught, "the body ended before it was interrupted"

    async def later(self, delay: float, job: Callable[[], Awaitable[Any]]) -> None:
        async def delayed() -> None:
            await trio.sleep(delay)
            await job()

        assert self._nursery is not None
        self._nursery.start_soon(delayed)

    def tasks(self) -> int:
        def count(task: trio.lowlevel.Task) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        return count(trio.lowlevel.current_root_task())


class _BlockingView:
    """The blocking stream behind awaitable methods that never suspend."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._buffer = stream._buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def __repr__(self) -> str:
        return repr(self.stream)

    async def send_audio(self, chunk: bytes) -> None:
        self.stream.send_audio(chunk)

    async def send_keepalive(self) -> None:
        self.stream.send_keepalive()

    async def send_paced(self, source: Any, **kwargs: Any) -> int:
        return self.stream.send_paced(source, **kwargs)  # type: ignore[no-any-return]

    async def configure(self, *args: Any, **kwargs: Any) -> None:
        self.stream.configure(*args, **kwargs)

    async def finalize(self, channel: int | None = None) -> Any:
        return self.stream.finalize(channel)

    async def force_end_turn(self) -> None:
        self.stream.force_end_turn()

    async def close(self) -> Any:
        return self.stream.close()

    async def abort(self) -> Any:
        return self.stream.abort()

    def __aiter__(self) -> _BlockingView:
        self._iterator = iter(self.stream)
        return self

    async def __anext__(self) -> Event:
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None


class SyncDriver(Driver):
    name = "sync"
    adapter = sync_adapter

    def __init__(self) -> None:
        self._jobs: list[threading.Thread] = []
        self._failures: list[BaseException] = []

    def run(self, scenario: Scenario) -> Any:
        try:
            return run_blocking(scenario(self))  # type: ignore[arg-type]
        finally:
            for job in self._jobs:
                job.join()
            if self._failures:
                raise self._failures[0]

    @asynccontextmanager
    async def _connect(self, **kwargs: Any) -> AsyncIterator[_BlockingView]:
        with sync_adapter.connect(**kwargs) as stream:
            yield _BlockingView(stream)

    def connect(self, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        return self._connect(**kwargs)

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def fileno(self, stream: Any) -> int:
        return stream._sock.fileno()  # type: ignore[no-any-return]

    async def interrupted(self, body: Callable[[], Awaitable[Any]], *, after: float) -> None:
        main = threading.main_thread().ident
        assert main == threading.get_ident(), "Ctrl-C reaches the main thread only"
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            pytest.skip("SIGINT does not raise KeyboardInterrupt here (ignored, as under nohup)")
        timer = threading.Timer(after, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                await body()
        finally:
            timer.cancel()
            timer.join()

    async def later(self, delay: float, job: Callable[[], Awaitable[Any]]) -> None:
        def delayed() -> None:
            time.sleep(delay)
            try:
                run_blocking(job())  # type: ignore[arg-type]
            except BaseException as exc:  # re-raised by run()
                self._failures.append(exc)

        thread = threading.Thread(target=delayed, name="test-later")
        thread.start()
        self._jobs.append(thread)


DRIVERS: dict[str, Callable[[], Driver]] = {
    "asyncio": AsyncioDriver,
    "trio": TrioDriver,
    "sync": SyncDriver,
}
