"""Flux (``/v2/listen``) through the three adapters, against the emulator on loopback.

The same pump that drives ``ListenConnection`` drives ``FluxConnection``: these scenarios
run once per runtime (``tests/adapter_drivers.py``) and check what a voice agent sees:
the turns with the right transcripts, ``configure`` answered, ``force_end_turn`` ending
the turn, a fatal ``Error`` then ``Closed``, no ``finalize``/``send_keepalive`` at all,
a lossless reconnect (each ``EndOfTurn`` once, on one clock and one turn count) and a
CONNECT proxy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dgproto import (
    Closed,
    Config,
    ConfigureSuccess,
    Connected,
    Event,
    FluxConnected,
    FluxConnection,
    FluxOptions,
    ListenConnection,
    LiveOptions,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    ServerError,
    State,
    TurnInfo,
)
from dgproto.emulator import EmulatorConfig, FaultPlan, silence, synthesize
from dgproto.transports import asyncio as asyncio_adapter
from dgproto.transports import sync as sync_adapter
from dgproto.transports import trio as trio_adapter
from dgproto.transports._common import FLUX_URL, make_plan
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .adapter_drivers import DRIVERS, Driver
from .test_adapters import settle
from .test_proxy import ConnectProxy

SENTENCES = ["Hello from the adapter.", "Flux hears three turns.", "Goodbye for now."]
AUDIO = b"".join(synthesize(s) + silence(0.6) for s in SENTENCES)
CHUNK = 2560  # 80 ms of linear16 at 16 kHz
FLUX = FluxOptions(model="flux-general-en", encoding="linear16", sample_rate=16000)
FAST = Config(open_timeout=3.0, close_timeout=3.0, ping_interval=0.2, ping_timeout=1.0)
POLICY = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=0.0, max_attempts=4)
ADAPTERS = {"asyncio": asyncio_adapter, "trio": trio_adapter, "sync": sync_adapter}


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@contextlib.contextmanager
def emulator(plans: Sequence[FaultPlan | None] = ()) -> Iterator[ThreadedEmulatorServer]:
    """An emulator whose n-th connection gets ``plans[n]`` (later ones: no faults)."""
    with serve_in_thread(config=EmulatorConfig(require_auth=False)) as srv:
        server = srv.server
        make = server._make_emulator
        queue = list(plans)

        def next_emulator() -> Any:
            server.faults = queue.pop(0) if queue else None
            return make()

        server._make_emulator = next_emulator  # type: ignore[method-assign]
        yield srv
        settle(server)


def ends(events: Sequence[Event]) -> list[TurnInfo]:
    return [e for e in events if isinstance(e, TurnInfo) and e.event == "EndOfTurn"]


def inner(stream: Any) -> Any:
    """The adapter's own stream (the sync driver wraps it in an awaitable view)."""
    return getattr(stream, "stream", stream)


async def send_all(d: Driver, stream: Any, audio: bytes = AUDIO, pace: float = 0.0) -> None:
    for i in range(0, len(audio), CHUNK):
        await stream.send_audio(audio[i : i + CHUNK])
        if pace:
            await d.sleep(pace)


# ---------------------------------------------------------------------------- no network


def test_flux_options_pick_v2_listen_and_the_flux_core() -> None:
    plan = make_plan(
        FLUX,
        api_key="k",
        access_token=None,
        auth=None,
        url=None,
        config=None,
        ssl_context=None,
        extra_headers=(),
        proxy=None,
    )
    assert isinstance(plan.conn, FluxConnection)
    assert FLUX_URL == "wss://api.deepgram.com/v2/listen"
    assert (plan.endpoint.host, plan.endpoint.port, plan.endpoint.tls) == (
        "api.deepgram.com",
        443,
        True,
    )
    assert plan.endpoint.target == "/v2/listen"
    kwargs: dict[str, Any] = {
        "api_key": None,
        "access_token": None,
        "auth": None,
        "config": None,
        "ssl_context": None,
        "extra_headers": (),
        "proxy": None,
    }
    # A url without a path gets the endpoint's path; one with a path keeps it.
    assert make_plan(FLUX, url="ws://h:1", **kwargs).endpoint.target == "/v2/listen"
    assert make_plan(FLUX, url="ws://h:1/flux", **kwargs).endpoint.target == "/flux"
    listen = make_plan(LiveOptions(model="nova-3"), url=None, **kwargs)
    assert isinstance(listen.conn, ListenConnection)
    assert listen.endpoint.target == "/v1/listen"
    assert make_plan(None, url="ws://h:1", **kwargs).endpoint.target == "/v1/listen"


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_flux_streams_have_no_finalize_or_keepalive(name: str) -> None:
    adapter = ADAPTERS[name]
    for kind in (adapter.FluxStream, adapter.FluxReconnectingStream):
        assert not hasattr(kind, "finalize")
        assert not hasattr(kind, "send_keepalive")
        assert not hasattr(kind, "metadata")
        assert hasattr(kind, "force_end_turn")
    assert hasattr(adapter.ListenStream, "finalize")
    assert not hasattr(adapter.ListenStream, "force_end_turn")


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_flux_reconnect_needs_raw_audio(name: str) -> None:
    """Containerized audio cannot be replayed mid-stream: refused before any network."""
    options = FluxOptions(model="flux-general-en")

    async def scenario(d: Driver) -> None:
        with pytest.raises(ValueError, match="FluxReplayBuffer needs raw audio"):
            async with d.connect(options=options, url="ws://127.0.0.1:9", reconnect=True):
                raise AssertionError("opened")

    DRIVERS[name]().run(scenario)


# ---------------------------------------------------------------------------- loopback


def test_turns_configure_and_close(driver: Driver) -> None:
    async def scenario(d: Driver) -> Any:
        async with d.connect(options=FLUX, url=srv.flux_url, config=FAST) as stream:
            assert isinstance(inner(stream), ADAPTERS[d.name].FluxStream)
            assert stream.request_id is not None
            assert stream.state is State.OPEN
            await stream.configure(thresholds={"eot_threshold": 0.8}, keyterms=["Flux"])
            assert inner(stream).options == FLUX
            # send_paced is shared by every stream: it reads the format from FluxOptions.
            assert await stream.send_paced(AUDIO, speed=50.0) == len(AUDIO)
            assert stream.stats.audio_seconds_sent == pytest.approx(len(AUDIO) / 32000)
            closed = await stream.close()
            events = await d.collect(stream)
            assert stream.state is State.CLOSED
            assert stream.closed == closed
            assert stream.audio_seconds_sent == pytest.approx(len(AUDIO) / 32000)
            return closed, events

    with emulator() as srv:
        closed, events = driver.run(scenario)
    assert isinstance(events[0], Connected)
    assert isinstance(events[1], FluxConnected)
    assert events[-1] == closed
    assert closed.code == 1000
    (success,) = [e for e in events if isinstance(e, ConfigureSuccess)]
    assert success.thresholds["eot_threshold"] == 0.8
    assert [e.transcript for e in ends(events)] == SENTENCES
    assert [e.turn_index for e in ends(events)] == [0, 1, 2]
    kinds = {e.event for e in events if isinstance(e, TurnInfo)}
    assert {"StartOfTurn", "Update", "EndOfTurn"} <= kinds


def test_force_end_turn_ends_the_turn(driver: Driver) -> None:
    async def scenario(d: Driver) -> list[Event]:
        async with d.connect(options=FLUX, url=srv.flux_url, config=FAST) as stream:
            await send_all(d, stream, synthesize("Hold on"))
            await stream.force_end_turn()
            seen: list[Event] = []
            async for event in stream:
                seen.append(event)
                if isinstance(event, TurnInfo) and event.event == "EndOfTurn":
                    break
            await stream.close()
            return seen + await d.collect(stream)

    with emulator() as srv:
        events = driver.run(scenario)
    (end,) = ends(events)
    assert (end.transcript, end.trigger, end.turn_index) == ("Hold on", "manual", 0)


def test_a_flux_error_is_a_server_error_then_closed(driver: Driver) -> None:
    """Flux ends the session on a message it cannot parse (a KeepAlive, which the
    stream cannot send: the test reaches into the core to make the server say so)."""

    async def scenario(d: Driver) -> list[Event]:
        async with d.connect(options=FLUX, url=srv.flux_url, config=FAST) as stream:
            inner(stream).post("_send_text", '{"type":"KeepAlive"}')
            return await d.collect(stream)

    with emulator() as srv:
        events = driver.run(scenario)
    error, closed = events[-2:]
    assert isinstance(error, ServerError)
    assert error.code == "UNPARSABLE_CLIENT_MESSAGE"
    assert isinstance(closed, Closed)
    assert closed.error_code == "UNPARSABLE_CLIENT_MESSAGE"


# ---------------------------------------------------------------------------- reconnect

_REFERENCE: list[TurnInfo] = []


async def stream_flux(d: Driver, url: str, **kwargs: Any) -> Any:
    async with d.connect(options=FLUX, url=url, config=FAST, **kwargs) as stream:
        await stream.configure(thresholds={"eot_threshold": 0.8})
        await send_all(d, stream, pace=0.005)
        closed = await stream.close()
        return stream, closed, await d.collect(stream)


def reference_ends() -> list[TurnInfo]:
    """The EndOfTurns of the same audio over one socket with no fault."""
    if not _REFERENCE:
        with emulator() as srv:
            _, _, events = DRIVERS["asyncio"]().run(lambda d: stream_flux(d, srv.flux_url))
        _REFERENCE.extend(ends(events))
    return _REFERENCE


FAULTS = {
    "drop": [FaultPlan(drop_after_messages=12)],
    "net0001": [FaultPlan(close_after_messages=20, close_code=1011, close_reason="NET-0001")],
    "twice": [FaultPlan(drop_after_messages=12), FaultPlan(drop_after_messages=12)],
    "reject_503": [FaultPlan(reject_status=503)],
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_flux_reconnect_loses_and_repeats_no_turn(driver: Driver, fault: str) -> None:
    reference = reference_ends()
    assert [e.transcript for e in reference] == SENTENCES
    with emulator(FAULTS[fault]) as srv:
        stream, closed, events = driver.run(
            lambda d: stream_flux(d, srv.flux_url, reconnect=POLICY)
        )
    assert isinstance(inner(stream), ADAPTERS[driver.name].FluxReconnectingStream)
    got = ends(events)
    assert [e.transcript for e in got] == SENTENCES
    assert [e.turn_index for e in got] == [0, 1, 2]
    for mine, theirs in zip(got, reference, strict=True):
        # a replay starts at the last EndOfTurn's last word, off the old socket's 80 ms
        # report grid: a later turn end moves by up to one frame
        assert mine.audio_window_end == pytest.approx(theirs.audio_window_end, abs=0.081)
        assert [w.start for w in mine.words] == pytest.approx(
            [w.start for w in theirs.words], abs=0.02
        )
    assert closed.code == 1000
    assert isinstance(events[-1], Closed)
    assert sum(isinstance(e, Closed) for e in events) == 1
    if fault != "reject_503":
        assert any(isinstance(e, Reconnecting) for e in events)
        assert any(isinstance(e, Reconnected) for e in events)
        assert stream.reconnects == len(FAULTS[fault])
        # The Configure in force is sent again on every socket.
        assert sum(isinstance(e, ConfigureSuccess) for e in events) == 1 + stream.reconnects
        # The stats add up over the sockets: all the audio (and the replays), the drops.
        stats = stream.stats
        assert stats.reconnects == stream.reconnects
        assert stats.audio_bytes_sent >= len(AUDIO)
        assert stats.audio_seconds_sent >= len(AUDIO) / 32000


def test_force_end_turn_during_an_outage_is_sent_after_the_replay() -> None:
    """A force_end_turn() while no socket is live waits for the replay (pure Session)."""
    from dgproto.transports._reconnect import FLUX_RESUME, Session

    session = Session(POLICY, FLUX_RESUME.replay(FLUX, 5.0), FLUX, FLUX_RESUME)
    assert session.configure({"eot_threshold": 0.8}, ["a"], None, None) is False
    assert session.configure({"eot_timeout_ms": 900}, None, ["en"], None) is False
    assert session.force_end_turn() is False
    session.audio(b"\0" * 3200)
    steps = session.open_first()
    assert next(steps) == ("open",)
    ops = [steps.send("request-id")]
    ops.extend(steps)
    assert ops == [
        ("configure", {"eot_threshold": 0.8, "eot_timeout_ms": 900}, ["a"], ["en"], None),
        ("send", b"\0" * 3200),
        ("force_end_turn",),
    ]
    assert session.live
    assert session.force_end_turn() is True


# ---------------------------------------------------------------------------- proxy


def test_flux_through_a_connect_proxy(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def scenario(d: Driver) -> list[Event]:
        async with d.connect(options=FLUX, url=srv.flux_url, config=FAST, proxy=proxy.url) as s:
            await send_all(d, s)
            await s.close()
            return await d.collect(s)

    with emulator() as srv, ConnectProxy() as proxy:
        events = driver.run(scenario)
        assert proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{srv.port} HTTP/1.1\r\n")
    assert [e.transcript for e in ends(events)] == SENTENCES


def test_force_end_turn_across_an_outage_and_after(driver: Driver) -> None:
    """Called while the stream waits to reconnect, ForceEndTurn goes out after the replay
    (the replayed turn ends, once); called live, it goes straight out."""
    policy = ReconnectPolicy(initial_delay=0.3, max_delay=0.3, jitter=0.0, max_attempts=3)

    async def scenario(d: Driver) -> list[Event]:
        seen: list[Event] = []
        async with d.connect(options=FLUX, url=srv.flux_url, config=FAST, reconnect=policy) as s:
            # An unfinished sentence, then silence: Updates but no EndOfTurn (that would
            # take eot_timeout_ms), and the socket drops after the third message.
            await send_all(d, s, synthesize("Hold on") + silence(1.0))
            async for event in s:
                seen.append(event)
                if isinstance(event, Reconnecting):
                    await s.force_end_turn()  # no socket now: sent after the replay
                if isinstance(event, TurnInfo) and event.event == "EndOfTurn":
                    break
            await send_all(d, s, synthesize("One more"))
            await s.force_end_turn()
            async for event in s:
                seen.append(event)
                if isinstance(event, TurnInfo) and event.event == "EndOfTurn":
                    break
            await s.close()
            return seen + await d.collect(s)

    with emulator([FaultPlan(drop_after_messages=3)]) as srv:
        events = driver.run(scenario)
    assert [(e.transcript, e.trigger, e.turn_index) for e in ends(events)] == [
        ("Hold on", "manual", 0),
        ("One more", "manual", 1),
    ]
    assert sum(isinstance(e, Reconnected) for e in events) == 1
