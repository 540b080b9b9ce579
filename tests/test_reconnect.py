"""Built-in reconnect (``connect(..., reconnect=...)``) over the three adapters.

Against the emulator on loopback, with a fault plan per socket: the first sockets
drop, stall or close with a retryable code; later ones behave. The transcript must
equal the synthesized text, each word once, on one audio clock.
"""

from __future__ import annotations

import contextlib
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
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Results,
)
from dgproto.emulator import EmulatorConfig, FaultPlan, synthesize
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .adapter_drivers import DRIVERS, Driver
from .test_adapters import settle

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
        srv.plans = queue  # type: ignore[attr-defined]
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
    for (w, s, e), (_rw, rs, re_) in zip(words, reference, strict=True):
        assert abs(s - rs) <= 0.02, (w, s, rs)
        assert abs(e - re_) <= 0.02, (w, e, re_)
    assert closed.code == 1000
    assert closed.metadata is not None
    assert isinstance(events[-1], Closed)
    assert sum(isinstance(e, Closed) for e in events) == 1
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


def test_first_connect_never_retries_a_401(driver: Driver) -> None:
    reject = FaultPlan(reject_status=401)
    with emulator([reject, None]) as srv:

        async def scenario(d: Driver) -> None:
            with pytest.raises(HandshakeError) as info:
                async with d.connect(options=OPTIONS, url=srv.url, config=FAST, reconnect=True):
                    raise AssertionError("opened")
            assert info.value.status_code == 401

        driver.run(scenario)
        assert len(srv.connections) == 1


def test_a_401_while_reconnecting_gives_up_at_once(driver: Driver) -> None:
    plans = [FAULTS["fin"], FaultPlan(reject_status=401)]
    with emulator(plans) as srv:
        stream, closed, events = driver.run(lambda d: stream_all(d, srv.url))
        assert len(srv.connections) == 2
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Reconnecting") == 1
    assert "Reconnected" not in kinds
    assert closed.code == 1006
    assert closed.initiator == "transport"
    assert events[-1] is closed
    assert stream.closed is closed
    assert stream.reconnects == 0
    assert len(stream.request_ids) == 1


def test_finalize_across_an_outage_completes_once(driver: Driver) -> None:
    reference = reference_words()
    with emulator([FaultPlan(drop_after_messages=1)]) as srv:

        async def scenario(d: Driver) -> Any:
            async with d.connect(
                options=OPTIONS, url=srv.url, config=FAST, reconnect=POLICY
            ) as stream:
                for i in range(0, len(AUDIO), CHUNK):
                    await stream.send_audio(AUDIO[i : i + CHUNK])
                done = await stream.finalize()
                closed = await stream.close()
                return stream, done, closed, await d.collect(stream)

        stream, done, closed, events = driver.run(scenario)
    assert done.reason in ("from_finalize", "covered")
    assert [e for e in events if isinstance(e, FinalizeComplete)] == [done]
    check_lossless(stream, closed, events, reference)
    assert stream.reconnects >= 1


def test_a_policy_that_gives_up_ends_with_the_last_closed(driver: Driver) -> None:
    policy = ReconnectPolicy(initial_delay=0.01, jitter=0.0, max_attempts=2)
    plans = [FAULTS["fin"]] + [FaultPlan(reject_status=503)] * 2
    with emulator(plans) as srv:
        stream, closed, events = driver.run(lambda d: stream_all(d, srv.url, policy=policy))
    attempts = [e.attempt for e in events if isinstance(e, Reconnecting)]
    assert attempts == [1, 2]
    assert closed.code == 1006
    assert events[-1] is closed
    assert stream.closed is closed


def test_abort_and_leaving_the_block_during_backoff_leak_nothing(driver: Driver) -> None:
    from .adapter_drivers import open_fds

    policy = ReconnectPolicy(initial_delay=30.0, jitter=0.0)
    drop_soon = FaultPlan(drop_after_seconds=0.05)
    with emulator([drop_soon]) as srv:

        async def scenario(d: Driver) -> Any:
            before = open_fds(), d.tasks()
            for _ in range(3):
                async with d.connect(
                    options=OPTIONS, url=srv.url, config=FAST, reconnect=policy
                ) as stream:
                    seen = []
                    async for event in stream:
                        seen.append(event)
                        if isinstance(event, Reconnecting):
                            break
                    started = time.monotonic()
                    closed = await stream.abort()
                    assert time.monotonic() - started < 1.0
                    assert closed.code == 1006
                    with pytest.raises(ConnectionClosedError):
                        await stream.send_audio(b"\0\0")
                srv.plans.append(drop_soon)  # type: ignore[attr-defined]
            return before, (open_fds(), d.tasks())

        (fds, tasks), (fds_after, tasks_after) = driver.run(scenario)
    assert fds_after <= fds
    assert tasks_after <= tasks
    assert not [t for t in __import__("threading").enumerate() if t.name.startswith("dgproto-sync")]


def test_without_reconnect_a_silent_peer_unblocks_every_call(driver: Driver) -> None:
    """A server that completes the upgrade, then neither reads nor answers: the sender
    blocks on the full socket, and the ping timeout ends the stream and wakes it."""
    import socket
    import threading

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            ws.receive_data(conn.recv(65536))
            if any(isinstance(e, Request) for e in ws.events()):
                break
        conn.sendall(ws.send(AcceptConnection()))
        stop.wait(10)  # never reads again
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
    config = Config(ping_interval=0.2, ping_timeout=0.3, keepalive_interval=None)
    try:

        async def scenario(d: Driver) -> Any:
            async with d.connect(options=OPTIONS, url=url, config=config) as stream:
                started = time.monotonic()

                async def flood() -> None:
                    while time.monotonic() - started < 8:
                        await stream.send_audio(bytes(64 * 1024))

                with pytest.raises(ConnectionClosedError) as info:
                    await flood()
                elapsed = time.monotonic() - started
                closed = await stream.close()
                return info.value.closed, closed, elapsed

        raised, closed, elapsed = driver.run(scenario)
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert raised == closed
    assert (closed.code, closed.initiator, closed.retryable) == (1006, "timeout", True)
    assert elapsed < 3.0


def test_trio_default_config_detects_a_silent_peer_within_20_s() -> None:
    """Default ``Config`` (pings on) on trio's virtual clock: the silent emulator is
    noticed at most ping_interval + ping_timeout = 15 s after it went quiet."""
    import trio
    import trio.testing

    from dgproto.transports import trio as trio_adapter

    with emulator([FaultPlan(stall_after_seconds=0)]) as srv:

        async def main() -> tuple[Closed, float]:
            async with trio_adapter.connect(OPTIONS, url=srv.url) as stream:
                started = trio.current_time()
                events = [e async for e in stream]
                assert isinstance(events[-1], Closed)
                return events[-1], trio.current_time() - started

        closed, elapsed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.05))
    assert (closed.code, closed.initiator, closed.retryable) == (1006, "timeout", True)
    assert elapsed <= 20.0


#: Soak runs per adapter; ``DGPROTO_SOAK_RUNS`` raises it (e.g. 1000 for a long soak).
SOAK_RUNS = int(os.environ.get("DGPROTO_SOAK_RUNS", "70"))
#: Reconnecting open/drop/close cycles per adapter in the leak test (1000: DGPROTO_LEAK_CYCLES).
LEAK_CYCLES = int(os.environ.get("DGPROTO_LEAK_CYCLES", "40"))
SOAK_TEXT = "alpha bravo charlie delta echo foxtrot"
SOAK_AUDIO = synthesize(SOAK_TEXT)
SOAK_POLICY = ReconnectPolicy(initial_delay=0.005, max_delay=0.02, jitter=0.5, max_attempts=6)
SOAK_CONFIG = Config(
    keepalive_interval=0.2, open_timeout=3.0, close_timeout=3.0, ping_interval=0.1, ping_timeout=0.2
)


def soak_fault(rng: random.Random) -> FaultPlan:
    """One random way for a socket to end early (a drop point)."""
    kind = rng.choice(["fin", "fin", "close", "time", "reject", "stall"])
    if kind == "fin":
        return FaultPlan(drop_after_messages=rng.randint(0, 4))
    if kind == "close":
        code, reason = rng.choice([(1011, "NET-0001"), (1011, "NET-0000"), (1012, ""), (1001, "")])
        return FaultPlan(
            close_after_messages=rng.randint(0, 4), close_code=code, close_reason=reason
        )
    if kind == "time":
        return FaultPlan(drop_after_seconds=rng.uniform(0, 0.1))
    if kind == "reject":
        return FaultPlan(reject_status=rng.choice([429, 500, 502, 503]))
    return FaultPlan(stall_after_messages=rng.randint(1, 3))


def test_seeded_random_soak_loses_and_duplicates_no_word(driver: Driver) -> None:
    """Random drop points, random outages of 0-2 sockets in a row: every run's
    transcript is the text, each word once, and timestamps keep increasing."""
    seed = int(os.environ.get("DGPROTO_SOAK_SEED", "9"))
    rng = random.Random(f"{seed}-{driver.name}")
    expected = SOAK_TEXT.split()
    lost = duplicated = 0
    with emulator([]) as srv:
        queue: list[FaultPlan | None] = srv.plans  # type: ignore[attr-defined]

        async def scenario(d: Driver) -> int:
            nonlocal lost, duplicated
            reconnects = 0
            for run in range(SOAK_RUNS):
                queue[:] = [soak_fault(rng) for _ in range(rng.choice([0, 1, 1, 2]))]
                chunk = rng.choice([640, 3200, 8000])
                async with d.connect(
                    options=OPTIONS, url=srv.url, config=SOAK_CONFIG, reconnect=SOAK_POLICY
                ) as stream:
                    for i in range(0, len(SOAK_AUDIO), chunk):
                        await stream.send_audio(SOAK_AUDIO[i : i + chunk])
                    closed = await stream.close()
                    events = await d.collect(stream)
                words = [w for w, _, _ in spoken(events)]
                lost += sum(1 for w in expected if w not in words)
                duplicated += len(words) - len(set(words))
                starts = [s for _, s, _ in spoken(events)]
                assert words == expected, (run, words, queue)
                assert starts == sorted(starts), run
                # a drop after the Metadata is no loss: Deepgram had flushed everything
                assert closed.metadata is not None, (run, closed)
                assert events[-1] is closed
                reconnects += stream.reconnects
            return reconnects

        started = time.monotonic()
        reconnects = driver.run(scenario)
        elapsed = time.monotonic() - started
    assert (lost, duplicated) == (0, 0)
    assert reconnects > SOAK_RUNS // 3  # the faults really happened
    print(f"soak {driver.name}: {SOAK_RUNS} runs, {reconnects} reconnects, {elapsed:.1f} s")


def test_reconnecting_cycles_and_cancellation_during_backoff_leave_nothing(
    driver: Driver,
) -> None:
    from .adapter_drivers import open_fds

    cycles = LEAK_CYCLES
    slow = ReconnectPolicy(initial_delay=30.0, jitter=0.0)
    drop = FaultPlan(drop_after_seconds=0.02)
    with emulator([]) as srv:
        queue: list[FaultPlan | None] = srv.plans  # type: ignore[attr-defined]

        async def scenario(d: Driver) -> Any:
            async with d.connect(options=OPTIONS, url=srv.url, config=FAST, reconnect=True) as s:
                await s.close()  # warm up lazily created runtime state
            settle(srv.server)
            before = (open_fds(), d.tasks())
            for _ in range(cycles):  # each cycle: one drop, one reconnect, a clean close
                queue[:] = [drop]
                async with d.connect(
                    options=OPTIONS, url=srv.url, config=FAST, reconnect=POLICY
                ) as stream:
                    await stream.send_audio(AUDIO[:CHUNK])
                    async for event in stream:
                        if isinstance(event, Reconnected):
                            break
                    closed = await stream.close()
                    assert closed.code == 1000
                    assert stream.reconnects == 1

            async def body() -> None:  # cancelled while waiting 30 s to reconnect
                queue[:] = [drop]
                async with d.connect(
                    options=OPTIONS, url=srv.url, config=FAST, reconnect=slow
                ) as stream:
                    async for _ in stream:
                        pass

            await d.interrupted(body, after=0.5)
            settle(srv.server)
            deadline = time.monotonic() + 3
            while (open_fds(), d.tasks()) != before and time.monotonic() < deadline:
                await d.sleep(0.01)
            return before, (open_fds(), d.tasks())

        before, after = driver.run(scenario)
    assert after == before
    threads = [t.name for t in __import__("threading").enumerate()]
    assert not [name for name in threads if name.startswith("dgproto-sync")]
