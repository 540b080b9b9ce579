"""``Utterance`` events and ``stream.stats`` on every adapter, over loopback to the
emulator: the backstop end to end (``withhold_end_signals``), and a reconnecting stream
whose utterance in progress survives a dropped socket (rebased, emitted once)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from dgproto import (
    Closed,
    Config,
    Event,
    LiveOptions,
    Reconnected,
    Results,
    Utterance,
    UtteranceEnd,
)
from dgproto.emulator import FaultPlan, silence, synthesize

from .adapter_drivers import DRIVERS, Driver
from .test_reconnect import FAST, POLICY, emulator

RATE = 16000
SPEECH = "Hello world. This is the end."
OPTIONS = LiveOptions(
    encoding="linear16",
    sample_rate=RATE,
    interim_results=True,
    utterance_end_ms=1000,
    punctuate=True,
)


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


def utterances(events: Sequence[Event]) -> list[Utterance]:
    return [e for e in events if isinstance(e, Utterance)]


def check_order(events: Sequence[Event]) -> None:
    """Each utterance comes after the finals it was built from, each final used once."""
    used: list[Results] = []
    for u in utterances(events):
        position = events.index(u)
        for r in u.results:
            assert r not in used
            used.append(r)
            # equal, not the same object: a reconnecting stream's copy on its clock
            assert r in events[:position]
    for a, b in itertools.pairwise(utterances(events)):
        assert a.end <= b.start + 0.01


def test_backstop_ends_the_utterance_when_the_server_withholds_every_end_signal(
    driver: Driver, deepgram_emulator_factory: Any
) -> None:
    """No ``speech_final``, no ``UtteranceEnd``: the core's timer ends the utterance
    ``utterance_timeout`` after its last final (a scaled 0.3 s here), before the close."""
    srv = deepgram_emulator_factory(faults=FaultPlan(withhold_end_signals=True))
    audio = synthesize(SPEECH, sample_rate=RATE) + silence(1.0, sample_rate=RATE)

    async def scenario(d: Driver) -> tuple[list[Event], Any]:
        async with d.connect(
            options=OPTIONS,
            url=srv.url,
            api_key="test-key",
            config=Config(utterance_timeout=0.3),
        ) as stream:
            await stream.send_paced(audio, speed=20.0)
            await d.sleep(1.0)  # > utterance_timeout after the last final
            await stream.close()  # what is still open now would end as "closed"
            return await d.collect(stream), stream.stats

    events, stats = driver.run(scenario)
    assert not any(isinstance(e, UtteranceEnd) for e in events)
    found = utterances(events)
    assert found
    assert [u.reason for u in found] == ["timeout"] * len(found)
    assert " ".join(u.transcript for u in found).split() == SPEECH.split()
    finals = [e for e in events if isinstance(e, Results) and e.is_final]
    assert stats.audio_bytes_sent == len(audio)
    assert stats.finals_received >= len(finals)
    assert stats.results_received >= stats.finals_received
    assert stats.first_result_latency is not None
    assert stats.result_lag_p50 is not None
    assert stats.result_lag_max is not None
    assert stats.result_lag_p50 <= stats.result_lag_max
    assert stats.connected_seconds >= 1.0
    assert stats.reconnects == 0


def test_an_utterance_survives_a_dropped_socket_and_is_reported_once(driver: Driver) -> None:
    """The socket drops mid-speech; the reconnecting stream replays and goes on. Every
    word is in exactly one ``Utterance``, on the stream's clock, and the drop ends none
    (no ``"closed"`` utterance before the real end); the stats add both sockets up."""
    audio = synthesize(SPEECH, sample_rate=RATE) + silence(2.5, sample_rate=RATE)

    async def scenario(d: Driver) -> tuple[Any, list[Event]]:
        async with d.connect(options=OPTIONS, url=srv.url, config=FAST, reconnect=POLICY) as s:
            # a reconnecting stream paces too (the replay goes out on the new socket)
            assert await s.send_paced(audio, speed=10.0, chunk_seconds=0.1) == len(audio)
            await s.close()
            return s, await d.collect(s)

    with emulator([FaultPlan(drop_after_messages=1)]) as srv:
        stream, events = driver.run(scenario)
    assert sum(isinstance(e, Reconnected) for e in events) == 1
    assert isinstance(events[-1], Closed)
    found = utterances(events)
    assert " ".join(u.transcript for u in found).split() == SPEECH.split()
    assert "closed" not in [u.reason for u in found]
    check_order(events)
    # the utterance in progress at the drop ends on the new socket, with both sockets' finals
    reconnected = next(i for i, e in enumerate(events) if isinstance(e, Reconnected))
    spans = [
        u for u in found if events.index(u.results[0]) < reconnected < events.index(u.results[-1])
    ]
    assert spans, [(u.transcript, u.reason) for u in found]
    stats = stream.stats
    assert stats.reconnects == stream.reconnects == 1
    assert stats.audio_bytes_sent >= len(audio)  # the replay is sent again
    assert stats.finals_received == sum(isinstance(e, Results) and e.is_final for e in events)
    assert stats.connected_seconds > 0
