"""Reconnects after a final whose window ends partway into a word.

Deepgram puts a word that straddles a final window's end into the *next* window, so the
end of the last final can fall inside a word the server had started to hear. A replay
that starts there gives the new socket only the word's tail. These tests cut windows the
way Deepgram does (``Segmenter._cut_point`` patched to cut at the window's end even
mid-word), drop the socket right after such a final, and want the exact transcript at
the times one socket gives, with the app's ``Results``, its ``Utterance`` events and
``stream.stats`` all built from the same finals.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dgproto import (
    Connected,
    Event,
    FluxReplayBuffer,
    Reconnected,
    Reconnecting,
    Results,
    TurnInfo,
    Utterance,
)
from dgproto._resume import REPLAY_MARGIN, ReplayBuffer, StreamView, rebase
from dgproto._utterances import UtteranceTracker
from dgproto.emulator import FaultPlan, silence, synthesize
from dgproto.emulator._codec import layout
from dgproto.emulator._session import Segmenter

from .adapter_drivers import DRIVERS, Driver
from .test_flux_adapters import FAST as FLUX_FAST
from .test_flux_adapters import FLUX, ends, send_all
from .test_flux_adapters import POLICY as FLUX_POLICY
from .test_flux_adapters import emulator as flux_emulator
from .test_reconnect import WORDS, emulator, spoken, stream_all
from .test_resume import results, word


@contextlib.contextmanager
def deepgram_cuts() -> Iterator[None]:
    """Over-long windows end where the audio ends, even mid-word (as Deepgram's do)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Segmenter, "_cut_point", lambda self, end: end)
        yield


def run(driver: Driver, plans: Sequence[FaultPlan | None]) -> tuple[Any, list[Event]]:
    with deepgram_cuts(), emulator(plans) as srv:
        stream, _closed, events = driver.run(lambda d: stream_all(d, srv.url, pace=0.01))
    return stream, events


_REFERENCE: list[Any] = []


def reference() -> tuple[list[tuple[str, float, float]], list[Results]]:
    """One socket, no fault: the words and times, and the finals that cut a word."""
    if not _REFERENCE:
        _, events = run(DRIVERS["asyncio"](), [])
        _REFERENCE.append(spoken(events))
        _REFERENCE.append([e for e in events if isinstance(e, Results) and e.is_final])
    return _REFERENCE[0], _REFERENCE[1]


def test_the_reference_run_really_cuts_words() -> None:
    """The scenario is real: some final window ends inside a word of the next one."""
    words, finals = reference()
    assert [w for w, _, _ in words] == WORDS
    cutting = [
        n
        for n, (final, after) in enumerate(itertools.pairwise(finals), 1)
        if after.alternatives[0].words and after.alternatives[0].words[0].start < final.end
    ]
    assert cutting[:3] == [1, 2, 3]


@pytest.mark.parametrize("driver_name", list(DRIVERS))
@pytest.mark.parametrize("drop_after", [1, 2, 3, 4])
def test_a_drop_after_a_final_that_ends_mid_word_loses_no_word(
    driver_name: str, drop_after: int
) -> None:
    words, _ = reference()
    stream, events = run(DRIVERS[driver_name](), [FaultPlan(drop_after_messages=drop_after)])
    assert any(isinstance(e, Reconnected) for e in events)
    got = spoken(events)
    assert [w for w, _, _ in got] == WORDS
    for (w, s, e), (_rw, rs, re_) in zip(got, words, strict=True):
        assert abs(s - rs) <= 0.02, (w, s, rs)
        assert abs(e - re_) <= 0.02, (w, e, re_)
    # the Utterances are built from exactly the finals the app saw, and say the same words
    finals = [e for e in events if isinstance(e, Results) and e.is_final]
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert " ".join(u.transcript for u in utterances).split() == WORDS
    used = [r for u in utterances for r in u.results]
    assert used == [r for r in finals if r.alternatives[0].words]
    # the stats counted the same events
    stats = stream.stats
    assert stats.finals_received == len(finals)
    assert stats.results_received == sum(isinstance(e, Results) for e in events)
    assert stats.reconnects == stream.reconnects == 1


# --------------------------------------------------------------------------- the rules, unit


def buffer_ms(margin: float = REPLAY_MARGIN) -> ReplayBuffer:
    """1000 bytes a second (positions read as ms), ten seconds of audio recorded."""
    buffer = ReplayBuffer(bytes_per_second=1000, margin=margin)
    buffer.record(bytes(10_000))
    return buffer


def test_a_window_that_ends_mid_word_replays_from_the_last_final_words_end() -> None:
    buffer = buffer_ms()
    buffer.observe(results(0.0, 1.0, [word("One", 0.1, 0.4), word("two", 0.45, 0.8)]))
    assert (buffer.watermark, buffer.replay_from) == (1.0, 0.8)
    assert buffer.seconds_buffered == pytest.approx(9.2)  # 0.8 s on is kept
    buffer.resume()
    assert buffer.offset == 0.8
    # the new socket hears "two" again (re-recognized a little differently), then the
    # word the old window's end cut, "three" (0.85-1.3): only "three" is new
    event = buffer.observe(
        results(0.0, 0.7, [word("two", -0.345, 0.005), word("three", 0.05, 0.5)])
    )
    assert [w.punctuated_word for w in event.alternatives[0].words] == ["three"]
    assert event.transcript == "three"
    assert event.alternatives[0].words[0].start == pytest.approx(0.85)
    assert (event.start, event.end) == (1.0, pytest.approx(1.5))  # windows stay contiguous


def test_after_a_long_silence_the_replay_starts_margin_seconds_before_the_final_end() -> None:
    buffer = buffer_ms()
    buffer.observe(results(0.0, 1.0, [word("Hi", 0.1, 0.4)]))
    buffer.observe(results(1.0, 5.0))  # silence up to 6 s
    assert buffer.replay_from == pytest.approx(4.0)
    buffer.observe(results(6.0, 0.5))
    assert buffer.replay_from == pytest.approx(4.5)
    assert buffer.seconds_buffered == pytest.approx(5.5)


def test_the_replay_never_starts_past_the_final_end() -> None:
    """A word reported past its window's end (jitter) does not push the replay past it."""
    buffer = buffer_ms()
    buffer.observe(results(0.0, 1.0, [word("Late", 0.5, 1.02)]))
    assert buffer.replay_from == 1.0


def test_margin_zero_replays_from_the_watermark_and_cuts_the_word() -> None:
    buffer = buffer_ms(margin=0)
    buffer.observe(results(0.0, 1.0, [word("One", 0.1, 0.4)]))
    assert buffer.replay_from == buffer.watermark == 1.0


def test_multichannel_replays_from_the_channel_furthest_behind() -> None:
    buffer = buffer_ms()
    buffer.observe(results(0.0, 2.0, [word("Left", 0.2, 1.5)], channel=(0, 2)))
    buffer.observe(results(0.0, 1.0, [word("Right", 0.2, 0.6)], channel=(1, 2)))
    assert buffer.replay_from == 0.6
    buffer.resume()
    # channel 0 gets the cut at its own last word; channel 1 at its own
    left = buffer.observe(results(0.0, 1.4, [word("Left", -0.4, 0.9)], channel=(0, 2)))
    assert (left.transcript, left.start, left.duration) == ("", 2.0, 0.0)
    right = buffer.observe(results(0.0, 0.9, [word("More", 0.1, 0.5)], channel=(1, 2)))
    assert right.transcript == "More"
    assert right.start == 1.0


def test_the_view_is_none_until_a_replay_needs_one_and_is_immutable() -> None:
    buffer = buffer_ms()
    assert buffer.view is None
    buffer.resume()
    assert buffer.view is None  # offset 0, nothing final: events pass as they are
    buffer.observe(results(0.0, 1.0, [word("One", 0.1, 0.4)]))
    buffer.resume()
    view = buffer.view
    assert view == StreamView(offset=0.4, cuts=((0, 0.4, 1.0),))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        view.offset = 0.0  # type: ignore[misc]
    later = results(0.7, 0.5, [word("Later", 0.8, 1.0)])
    assert view(later) == rebase(later, 0.4)  # past the cut: only rebased


def test_margin_is_checked() -> None:
    with pytest.raises(ValueError, match="margin must be a finite number"):
        ReplayBuffer(bytes_per_second=1000, margin=-1)


def test_flux_buffer_has_no_view_and_settles_what_the_socket_sent() -> None:
    buffer = FluxReplayBuffer(bytes_per_second=1000)
    assert buffer.view is None
    hello = Connected(request_id="r", headers=(), subprotocol=None)
    assert buffer.settle(hello) is hello


# --------------------------------------------------------------------------- the rules, random

JITTER = 0.01  # how far a re-recognized word's times move (seconds)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[tuple[str, float, float]], float]:
    """Words (name, start, end) on a ms grid: 0.05-1 s long, 5 ms-3 s apart."""
    t = draw(st.integers(0, 3000))
    words = []
    for i in range(draw(st.integers(1, 12))):
        length = draw(st.integers(50, 1000))
        words.append((f"w{i}", t / 1000, (t + length) / 1000))
        t += length + draw(st.integers(5, 3000))
    return words, t / 1000


def socket_finals(
    words: Sequence[tuple[str, float, float]],
    t0: float,
    total: float,
    cuts: Sequence[float],
    rng: random.Random,
) -> list[Results]:
    """What a server says for audio from stream time ``t0`` on, on its own clock: windows
    end at ``cuts`` (anywhere, mid-word too); a word goes to the window its end is in; a
    word the socket heard only the tail of is lost; times move by up to ``JITTER``, but a
    word's reported end never passes the next word's start (Deepgram's words do not
    overlap; a replay starts at the last final word's end and relies on it)."""
    heard = [w for w in words if w[1] >= t0 - 1e-9]
    onsets = {name: nxt[1] for (name, _, _), nxt in itertools.pairwise(words)}
    bounds = [*sorted({c for c in cuts if t0 < c < total}), total]
    finals, start = [], t0
    for end in bounds:
        inside = [
            word(
                name,
                s - t0 + rng.uniform(-JITTER, JITTER),
                min(e + rng.uniform(-JITTER, JITTER), onsets.get(name, math.inf)) - t0,
            )
            for name, s, e in heard
            if start < e <= end
        ]
        finals.append(results(start - t0, end - start, inside))
        start = end
    return finals


@given(
    timeline=timelines(),
    sockets=st.lists(
        st.tuples(st.lists(st.integers(0, 30_000), max_size=8), st.integers(0, 6)), max_size=4
    ),
    seed=st.integers(0, 2**32),
)
@example(  # found in CI: a 1 ms final window before a drop was repeated on replay
    timeline=([("w0", 0.0, 0.05)], 0.055), sockets=[([1], 1)], seed=0
)
@settings(max_examples=200, deadline=None)
def test_every_word_exactly_once_in_order_on_the_stream_clock(
    timeline: tuple[list[tuple[str, float, float]], float],
    sockets: list[tuple[list[int], int]],
    seed: int,
) -> None:
    """Random words, random window ends (mid-word too), random drops after k finals:
    the app's finals and the utterances built from them say every word once, in order,
    at its stream time, with contiguous windows."""
    words, total = timeline
    rng = random.Random(seed)
    buffer = ReplayBuffer(bytes_per_second=1000, max_seconds=total + 1)
    buffer.record(bytes(round(total * 1000)))
    seen: list[Results] = []
    plans = [*sockets, ([], -1)]  # the last socket lives to the end
    for cuts, drop_after in plans:
        buffer.resume()
        finals = socket_finals(words, buffer.offset, total, [c / 1000 for c in cuts], rng)
        if drop_after >= 0:
            finals = finals[:drop_after]
        seen += [buffer.observe(f) for f in finals]
    got = [w for r in seen for w in r.alternatives[0].words]
    assert [w.word for w in got] == [name for name, _, _ in words]
    for w, (_, start, end) in zip(got, words, strict=True):
        assert abs(w.start - start) <= JITTER + 1e-6
        assert abs(w.end - end) <= JITTER + 1e-6
    assert seen[0].start == 0.0
    for before, after in itertools.pairwise(seen):
        assert after.start == pytest.approx(before.end, abs=1e-6)
    assert seen[-1].end == pytest.approx(total)
    tracker = UtteranceTracker(timeout=None)
    utterances = [u for i, r in enumerate(seen) for u in tracker.handle_event(r, now=i)]
    utterances += tracker.close()
    assert " ".join(u.transcript for u in utterances).split() == [n for n, _, _ in words]
    assert [r for u in utterances for r in u.results] == [r for r in seen if r.transcript]


# --------------------------------------------------------------------------- Flux

#: Messages up to the first EndOfTurn (Connected, TurnInfos): the drop comes right after it.
FLUX_DROP = 7

#: "Three" starts 0.3 s after "two." ends; the emulator's EndOfTurn for "One two." comes
#: on its 80 ms grid after "Three" began, so that turn's audio_window_end cuts "Three".
FLUX_TEXT = ("One two.", "Three four five.")
FLUX_AUDIO = (
    synthesize(FLUX_TEXT[0])[: round(layout(FLUX_TEXT[0])[-1].end * 16000) * 2]
    + silence(0.3)
    + synthesize(FLUX_TEXT[1])
    + silence(0.6)
)


async def stream_flux_audio(d: Driver, url: str, **kwargs: Any) -> list[Event]:
    async with d.connect(options=FLUX, url=url, config=FLUX_FAST, **kwargs) as stream:
        await send_all(d, stream, FLUX_AUDIO, pace=0.005)
        await stream.close()
        return await d.collect(stream)


def test_flux_reference_end_of_turn_cuts_the_next_turns_first_word() -> None:
    with flux_emulator() as srv:
        events = DRIVERS["asyncio"]().run(lambda d: stream_flux_audio(d, srv.flux_url))
    first, second = ends(events)
    assert [first.transcript, second.transcript] == list(FLUX_TEXT)
    three = second.words[0]
    assert three.start is not None
    assert three.start < first.audio_window_end < (three.end or 0.0)


@pytest.mark.parametrize("driver_name", list(DRIVERS))
def test_flux_a_drop_after_an_end_of_turn_that_cuts_a_word_loses_no_word(
    driver_name: str,
) -> None:
    with flux_emulator([FaultPlan(drop_after_messages=FLUX_DROP)]) as srv:
        events = DRIVERS[driver_name]().run(
            lambda d: stream_flux_audio(d, srv.flux_url, reconnect=FLUX_POLICY)
        )
    # the first socket dropped right after the EndOfTurn whose window end cut "Three"
    drop = next(i for i, e in enumerate(events) if isinstance(e, Reconnecting))
    before = [e for e in events[:drop] if isinstance(e, TurnInfo)]
    assert (before[-1].event, before[-1].transcript) == ("EndOfTurn", FLUX_TEXT[0])
    first, second = ends(events)
    assert [first.transcript, second.transcript] == list(FLUX_TEXT)
    assert [first.turn_index, second.turn_index] == [0, 1]
    # the second turn's window starts where the first ended, as over one socket
    turns = [e for e in events if isinstance(e, TurnInfo)]
    assert all(
        t.audio_window_start >= first.audio_window_end for t in turns[turns.index(first) + 1 :]
    )
    assert second.words[0].start == pytest.approx(layout_start(), abs=0.02)


def layout_start() -> float:
    """Where "Three" starts in ``FLUX_AUDIO``."""
    head = round(layout(FLUX_TEXT[0])[-1].end * 16000) / 16000
    return head + 0.3 + layout(FLUX_TEXT[1])[0].start
