"""Built-in reconnect (``connect(..., reconnect=...)``) over the three adapters.

Against the emulator on loopback, with a fault plan per socket: the first sockets
drop, stall or close with a retryable code; later ones behave. The transcript must
equal the synthesized text, each word once, on one audio clock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dgproto import (
    Closed,
    Config,
    ConnectionClosedError,
    Event,
    FinalizeComplete,
    HandshakeError,
    LiveOptions,
    ReconnectPolicy,
    Reconnected,
    Reconnecting,
    Results,
)
from dgproto.emulator import EmulatorConfig, FaultPlan, synthesize
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .adapter_drivers import DRIVERS, Driver

TEXT = "one two three four five six seven eight nine ten"
WORDS = TEXT.split()
AUDIO = synthesize(TEXT)
CHUNK = 3200  # 100 ms
OPTIONS = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000)
FAST = Config(
    keepalive_interval=0.2,
    open_timeout=3.0,
    finalize_timeout=2.0,
    close_timeout=3.0,
    ping_interval=0.1,
    ping_timeout=0.3,
)
POLICY = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=4)


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@contextlib.contextmanager
def emulator(plans: Sequence[FaultPlan | None]) -> Iterator[ThreadedEmulatorServer]:
    """An emulator whose n-th connection gets ``plans[n]`` (later ones: no faults)."""
    with serve_in_thread(config=EmulatorConfig(require_auth=False, max_segment=0.5)) as srv:
        server = srv.server
        make = server._make_emulator
        queue = list(plans)

        def next_emulator() -> Any:
            server.faults = queue.pop(0) if queue else None
            return make()

        server._make_emulator = next_emulator  # type: ignore[method-assign]
        yield srv


def spoken(events: Sequence[Event]) -> list[tuple[str, float, float]]:
    return [
        (w.word, w.start, w.end)
        for e in events
        if isinstance(e, Results) and e.is_final
        for w in e.alternatives[0].words
    ]


async def stream_all(d: Driver, url: str, *, policy: Any = POLICY, pace: float = 0.0) -> Any:
    async with d.connect(options=OPTIONS, url=url, config=FAST, reconnect=policy) as stream:
        for i in range(0, len(AUDIO), CHUNK):
            await stream.send_audio(AUDIO[i : i + CHUNK])
            if pace:
                await d.sleep(pace)
        closed = await stream.close()
        events = await d.collect(stream)
        return stream, closed, events


def check_lossless(stream: Any, closed: Closed, events: list[Event], reference: Any) -> None:
    words = spoken(events)
    assert [w for w, _, _ in words] == WORDS
    for (w, s, e), (rw, rs, re_) in zip(words, reference, strict=True):
        assert abs(s - rs) <= 0.02 and abs(e - re_) <= 0.02, (w, s, rs)
    assert closed.code == 1000 and closed.metadata is not None
    assert isinstance(events[-1], Closed) and sum(isinstance(e, Closed) for e in events) == 1
    assert stream.closed == closed


_REFERENCE: list[Any] = []


def reference_words() -> Any:
    """The words and times of the same audio over one socket with no fault."""
    if not _REFERENCE:
        with emulator([]) as srv:
            _, _, events = DRIVERS["asyncio"]().run(lambda d: stream_all(d, srv.url))
        _REFERENCE.extend(spoken(events))
    return _REFERENCE


FAULTS = {
    "fin": FaultPlan(drop_after_messages=2),
    "net0001": FaultPlan(close_after_messages=2, close_code=1011, close_reason="NET-0001"),
    "stall": FaultPlan(stall_after_messages=2),
    "closed_after_handshake": FaultPlan(drop_after_seconds=0),
    "reject_503": FaultPlan(reject_status=503),
    "reject_429": FaultPlan(reject_status=429),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_reconnect_is_lossless(driver: Driver, fault: str) -> None:
    reference = reference_words()
    plan = FAULTS[fault]
    with emulator([plan, plan] if fault.startswith("reject") else [plan]) as srv:
        stream, closed, events = driver.run(lambda d: stream_all(d, srv.url, pace=0.01))
    check_lossless(stream, closed, events, reference)
    if not fault.startswith("reject"):
        assert any(isinstance(e, Reconnecting) for e in events)
        assert any(isinstance(e, Reconnected) for e in events)
        assert stream.reconnects >= 1
    assert len(stream.request_ids) == stream.reconnects + 1
