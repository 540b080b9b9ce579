"""Runtimes: one ``Job`` run on the asyncio, trio or blocking adapter, and every failure
turned into a one-line ``CliError``.

The runtimes only interpret ``session.requests()``: ``_drive_async`` for asyncio and trio
(each behind a three-method ``_AsyncRuntime``), ``_drive_sync`` for the blocking adapter
(receiving in a second thread, as that adapter allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import attrs

from dgproto._config import Config
from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import Closed, Event
from dgproto._flux_options import FluxOptions
from dgproto._options import LiveOptions
from dgproto._stats import StreamStats

from ..asyncio import connect as connect_asyncio
from ..sync import connect as connect_sync
from .session import Command, Request, Send, Session, Sleep, Step
from .session import requests as plan_requests
from .shared import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, CliError, reason, where
from .target import KeyChoice, rejection_hint

__all__ = ["Job", "describe_close", "stream"]

#: The adapters' wire trace message for bytes written (see ``transports._common``).


class _AsyncStream(Protocol):
    """What the CLI uses of ``dgproto.transports.asyncio``/``.trio``'s ``ListenStream``."""

    @property
    def stats(self) -> StreamStats: ...

    async def send_audio(self, chunk: bytes) -> None: ...
    async def close(self) -> Closed: ...
    def __aiter__(self) -> AsyncIterator[Event]: ...


class _AsyncRuntime(Protocol):
    def connect(self, job: Job) -> AbstractAsyncContextManager[_AsyncStream]: ...
    async def sleep(self, seconds: float) -> None: ...
    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None: ...


@attrs.frozen(kw_only=True)
class Job:
    """One stream to run: where, how, and what to send."""

    options: LiveOptions | FluxOptions
    url: str
    key: KeyChoice
    config: Config
    session: Session
    steps: Iterable[Step]
    speed: float | None
    #: ``--reconnect``: the adapters' built-in lossless reconnect (``ReconnectPolicy()``).
    reconnect: bool = False
    #: ``--record FILE``: ``connect(..., record=FILE)``.
    record: str | None = None

    def requests(self) -> Iterator[Request]:
        return plan_requests(self.session, self.steps, self.speed)

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"api_key": self.key.key, "url": self.url, "config": self.config}
        if self.reconnect:
            kwargs["reconnect"] = True
        if self.record is not None:
            kwargs["record"] = self.record
        return kwargs


def _finalize(stream: Any) -> Any:
    """``stream.finalize()`` (only the demo's scripted steps ask; Flux has no Finalize)."""
    return stream.finalize()


async def _drive_async(runtime: _AsyncRuntime, job: Job) -> None:
    """Run ``job`` on an async adapter: the sender interprets requests, the receiver
    hands every event to the session."""
    async with runtime.connect(job) as stream:
        job.session.attach(lambda: stream.stats)

        async def send() -> None:
            with contextlib.suppress(ConnectionClosedError):  # Closed tells the story
                for request in job.requests():
                    if isinstance(request, Sleep):
                        await runtime.sleep(request.seconds)
                    elif isinstance(request, Send):
                        await stream.send_audio(request.chunk)
                    elif request is Command.FINALIZE:
                        await _finalize(stream)
            await stream.close()

        async def receive() -> None:
            async for event in stream:
                job.session.event(event, now=time.monotonic())

        await runtime.both(send, receive)


class _Asyncio:
    def connect(self, job: Job) -> AbstractAsyncContextManager[_AsyncStream]:
        return connect_asyncio(job.options, **job.connect_kwargs())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None:
        tasks = [asyncio.ensure_future(first()), asyncio.ensure_future(second())]
        try:
            await asyncio.gather(*tasks)  # the first failure propagates as itself
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _Trio:
    def __init__(self) -> None:
        import trio

        self._trio = trio

    def connect(self, job: Job) -> AbstractAsyncContextManager[_AsyncStream]:
        from ..trio import connect

        return connect(job.options, **job.connect_kwargs())

    async def sleep(self, seconds: float) -> None:
        await self._trio.sleep(seconds)

    async def both(
        self, first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]]
    ) -> None:
        errors: list[Exception] = []
        async with self._trio.open_nursery() as nursery:

            async def guarded(function: Callable[[], Awaitable[None]]) -> None:
                try:
                    await function()
                except Exception as exc:  # re-raised below as itself, not in a group
                    errors.append(exc)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(guarded, first)
            nursery.start_soon(guarded, second)
        if errors:
            raise errors[0]


def _drive_sync(job: Job) -> None:
    """Run ``job`` on the blocking adapter: send here, receive in a second thread."""
    failures: list[BaseException] = []
    with connect_sync(job.options, **job.connect_kwargs()) as stream:
        job.session.attach(lambda: stream.stats)

        def receive() -> None:
            try:
                for event in stream:
                    job.session.event(event, now=time.monotonic())
            except BaseException as exc:  # re-raised in the main thread
                failures.append(exc)

        receiver = threading.Thread(target=receive, name="dgproto-cli-receiver", daemon=True)
        receiver.start()
        try:
            with contextlib.suppress(ConnectionClosedError):
                for request in job.requests():
                    if failures:
                        break
                    if isinstance(request, Sleep):
                        time.sleep(request.seconds)
                    elif isinstance(request, Send):
                        stream.send_audio(request.chunk)
                    elif request is Command.FINALIZE:
                        _finalize(stream)
            if not failures:
                stream.close()
        finally:
            stream.abort()  # a no-op after close(); otherwise it ends the receiver's loop
            receiver.join()
    if failures:
        raise failures[0]


def _run_job(transport: str, job: Job) -> None:
    if transport == "sync":
        _drive_sync(job)
    elif transport == "trio":
        try:
            runtime = _Trio()
        except ImportError:
            raise CliError("--transport trio needs trio: pip install 'dgproto[trio]'") from None
        runtime._trio.run(_drive_async, runtime, job)
    else:
        asyncio.run(_drive_async(_Asyncio(), job))


@contextlib.contextmanager
def _graceful_interrupt(session: Session) -> Iterator[None]:
    """First Ctrl-C: stop sending, CloseStream, drain, summary. Second: quit at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        session.interrupt()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stream(transport: str, job: Job) -> int:
    """Run ``job``, report the summary, and turn every failure into a ``CliError``."""
    session = job.session
    endpoint = where(job.url)
    try:
        with _graceful_interrupt(session):
            _run_job(transport, job)
    except HandshakeError as exc:
        raise CliError(
            f"{endpoint} refused the stream: {_describe_rejection(exc)}",
            status=EXIT_FAILURE,
            hint=rejection_hint(job.key, exc.status_code, job.url),
        ) from None
    except ConnectionClosedError as exc:  # during the opening handshake
        raise CliError(
            f"connection lost during the handshake with {endpoint}: {describe_close(exc.closed)}",
            status=EXIT_FAILURE,
        ) from None
    except TimeoutError as exc:
        raise CliError(f"timed out connecting to {endpoint}: {exc}", status=EXIT_FAILURE) from None
    except OSError as exc:
        raise CliError(
            f"cannot connect to {endpoint}: {reason(exc)}", status=EXIT_FAILURE
        ) from None
    session.view.summary(session.summary())
    closed = session.closed
    if session.interrupted:
        return EXIT_INTERRUPTED
    if closed is None or not session.close_sent or closed.code != 1000 or not closed.clean:
        raise CliError(
            f"connection lost: {describe_close(closed)}, after {session.audio_seconds:.2f} s "
            "of audio",
            status=EXIT_FAILURE,
        )
    return EXIT_OK


def _describe_rejection(exc: HandshakeError) -> str:
    """``HTTP 401, err_code=..., err_msg='...', request_id=...``: what support asks for."""
    parts = [f"HTTP {exc.status_code}"]
    if exc.err_code:
        parts.append(f"err_code={exc.err_code}")
    message = exc.err_msg or exc.dg_error
    if message:
        parts.append(f"err_msg={message!r}")
    if exc.request_id:
        parts.append(f"request_id={exc.request_id}")
    return ", ".join(parts)


def describe_close(closed: Closed | None) -> str:
    if closed is None:  # pragma: no cover - every stream ends with a Closed
        return "no close reported"
    text = f"close code {closed.code}"
    if closed.error_code:
        text += f" {closed.error_code}"
    if closed.reason:
        text += f" ({closed.reason})"
    if closed.initiator == "timeout":
        text += ", timed out"
    return text
