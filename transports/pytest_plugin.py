"""pytest fixtures that run the Deepgram emulator for your own tests.

Installed as a ``pytest11`` entry point, so with dgproto installed the fixtures are
simply there:

.. code-block:: python

    def test_my_app_transcribes(deepgram_emulator):
        app = MyApp(deepgram_url=deepgram_emulator.url, api_key="any-key")
        ...

    def test_my_app_survives_a_drop(deepgram_emulator_factory):
        server = deepgram_emulator_factory(faults=FaultPlan(drop_after_messages=2))
        ...

Each server runs in one background thread with its own event loop (``serve_in_thread``),
so the fixtures work the same in sync, asyncio and trio tests. Everything they start is
stopped, and its thread joined, when the test ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Protocol

import attrs
import pytest

from dgproto._recording import Recording
from dgproto.emulator import EmulatorConfig, FaultPlan

from ._record import load_recordings
from .server import DEFAULT_MAX_CONNECTIONS, ThreadedEmulatorServer, serve_in_thread

__all__ = [
    "EmulatorFactory",
    "ReplayFactory",
    "deepgram_emulator",
    "deepgram_emulator_factory",
    "deepgram_replay",
    "emulators",
]


class EmulatorFactory(Protocol):
    """Starts one more emulator; it stops when the test ends."""

    def __call__(
        self,
        *,
        config: EmulatorConfig | None = None,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        seed: int | None = None,
    ) -> ThreadedEmulatorServer:
        """Start an emulator (arguments as for ``serve_in_thread``); it is listening."""
        ...


class ReplayFactory(Protocol):
    """Serves one recorded session (a file path or a ``Recording``) until the test ends."""

    def __call__(
        self, recording: str | os.PathLike[str] | Recording, *, config: EmulatorConfig | None = None
    ) -> ThreadedEmulatorServer: ...


@contextlib.contextmanager
def emulators() -> Iterator[EmulatorFactory]:
    """The factory behind ``deepgram_emulator_factory``, usable without pytest."""
    with contextlib.ExitStack() as stack:

        def start(
            *,
            config: EmulatorConfig | None = None,
            faults: FaultPlan | None = None,
            host: str = "127.0.0.1",
            port: int = 0,
            max_connections: int = DEFAULT_MAX_CONNECTIONS,
            seed: int | None = None,
        ) -> ThreadedEmulatorServer:
            server = serve_in_thread(
                host,
                port,
                config=config,
                faults=faults,
                max_connections=max_connections,
                seed=seed,
            )
            return stack.enter_context(server)

        yield start


@pytest.fixture
def deepgram_emulator() -> Iterator[ThreadedEmulatorServer]:
    """A running emulator with default settings (any non-empty API key is accepted).

    Connect to ``deepgram_emulator.url``; inspect ``deepgram_emulator.connections``.
    """
    with serve_in_thread() as server:
        yield server


@pytest.fixture
def deepgram_emulator_factory() -> Iterator[EmulatorFactory]:
    """Call it with ``config=``/``faults=`` (keyword arguments) to start more emulators."""
    with emulators() as start:
        yield start


@pytest.fixture
def deepgram_replay() -> Iterator[ReplayFactory]:
    """Call it with a recording (``connect(..., record=...)``) to serve it back: every
    client gets the recorded handshake answer, then the recorded messages at the same
    audio-clock positions of its own audio (see ``dgproto.emulator.ReplayConnection``).
    A file with several sockets (a reconnecting stream) is served one socket per
    connection, in order."""
    with emulators() as start:

        def replay(
            recording: str | os.PathLike[str] | Recording, *, config: EmulatorConfig | None = None
        ) -> ThreadedEmulatorServer:
            loaded = (
                recording if isinstance(recording, Recording) else tuple(load_recordings(recording))
            )
            base = config if config is not None else EmulatorConfig()
            return start(config=attrs.evolve(base, replay=loaded))

        yield replay
