"""``UtteranceTracker``: one ``Utterance`` per run of final words, on a virtual clock."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto import (
    Alternative,
    Closed,
    Config,
    Event,
    FinalizeComplete,
    Metadata,
    Results,
    Utterance,
    UtteranceEnd,
    Word,
    rebase,
)
from dgproto._messages import decode_message
from dgproto._utterances import UtteranceTracker

from .helpers import fixture_text


def final(
    start: float,
    text: str,
    *,
    speech_final: bool = False,
    is_final: bool = True,
    channel: int = 0,
    total: int = 1,
    word_seconds: float = 0.4,
    duration: float | None = None,
) -> Results:
    """A Results window whose words start at ``start``, ``word_seconds`` each."""
    words = tuple(
        Word(
            word=w.lower().strip(".,"),
            punctuated_word=w,
            start=start + i * word_seconds,
            end=start + (i + 1) * word_seconds,
            confidence=0.9,
        )
        for i, w in enumerate(text.split())
    )
    length = duration if duration is not None else max(len(words) * word_seconds, 0.5)
    return Results(
        channel_index=(channel, total),
        start=start,
        duration=length,
        is_final=is_final,
        speech_final=speech_final,
        from_finalize=False,
        alternatives=(Alternative(transcript=text, confidence=0.9, words=words),),
    )


def closed() -> Closed:
    return Closed(code=1000, initiator="server", clean=True)


def feed(tracker: UtteranceTracker, events: list[Event], now: float = 0.0) -> list[Utterance]:
    return [u for e in events for u in tracker.handle_event(e, now=now)]


def brief(utterances: list[Utterance]) -> list[tuple[int, str, str]]:
    return [(u.channel, u.transcript, u.reason) for u in utterances]


def test_speech_final_ends_the_utterance_with_every_final_joined() -> None:
    tracker = UtteranceTracker()
    first = final(0.0, "Hello there,")
    second = final(0.8, "how are you?", speech_final=True)
    out = feed(tracker, [final(0.0, "hello", is_final=False), first, second])
    assert brief(out) == [(0, "Hello there, how are you?", "speech_final")]
    (utterance,) = out
    assert utterance.start == 0.0
    assert utterance.end == pytest.approx(2.0)
    assert utterance.results == (first, second)
    assert tracker.deadline() is None


def test_speech_final_then_utterance_end_for_the_same_words_gives_one() -> None:
    tracker = UtteranceTracker()
    out = feed(
        tracker,
        [
            final(0.0, "one two", speech_final=True),
            UtteranceEnd(channel=(0, 1), last_word_end=0.8),
            final(0.8, "", speech_final=True),
            closed(),
        ],
    )
    assert brief(out) == [(0, "one two", "speech_final")]


def test_utterance_end_ends_finals_without_speech_final() -> None:
    tracker = UtteranceTracker()
    assert feed(tracker, [final(0.0, "one two"), final(1.0, "")]) == []
    out = tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=0.8), now=1.5)
    assert brief(out) == [(0, "one two", "utterance_end")]
    # the speech_final that comes late for the same words is not a second utterance
    assert feed(tracker, [final(1.5, "", speech_final=True), closed()]) == []


def test_utterance_end_that_overtakes_its_final_waits_for_it() -> None:
    tracker = UtteranceTracker()
    assert feed(tracker, [final(0.0, "one")]) == []
    # the words up to 1.2 s are only in interims so far
    assert tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=1.2), now=1.0) == []
    out = tracker.handle_event(final(0.4, "two three"), now=1.1)
    assert brief(out) == [(0, "one two three", "utterance_end")]


def test_utterance_end_waits_for_final_windows_not_exact_word_times() -> None:
    """Final word times can differ from the interim ones the UtteranceEnd was timed on."""
    tracker = UtteranceTracker()
    tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=1.3), now=1.0)
    # words end at 1.2 (not 1.3), but the window reaches 1.5: nothing before 1.3 is missing
    out = tracker.handle_event(final(0.0, "one two three", duration=1.5), now=1.1)
    assert brief(out) == [(0, "one two three", "utterance_end")]
    # the same with the words in one final and the covering window empty
    tracker.handle_event(final(2.0, "four", duration=0.4), now=3.0)
    assert tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=2.6), now=3.1) == []
    out = tracker.handle_event(final(2.4, "", duration=0.5), now=3.2)
    assert brief(out) == [(0, "four", "utterance_end")]


def test_utterance_end_for_words_that_never_become_final_ends_what_was_heard() -> None:
    tracker = UtteranceTracker()
    feed(tracker, [final(0.0, "one")])
    tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=1.2), now=1.0)
    # the next final with words starts well after the announced end: a new utterance
    out = tracker.handle_event(final(5.0, "later words"), now=6.0)
    assert brief(out) == [(0, "one", "utterance_end")]
    assert brief(tracker.handle_event(closed(), now=7.0)) == [(0, "later words", "closed")]


def test_utterance_end_with_nothing_pending_waits_for_its_final() -> None:
    tracker = UtteranceTracker()
    assert tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=0.8), now=1.0) == []
    out = tracker.handle_event(final(0.0, "one two"), now=1.1)
    assert brief(out) == [(0, "one two", "utterance_end")]
    # an UtteranceEnd without a channel (not what Deepgram sends) counts as channel 0
    assert tracker.handle_event(UtteranceEnd(channel=(), last_word_end=0.8), now=1.2) == []


def test_never_an_empty_transcript() -> None:
    tracker = UtteranceTracker()
    events: list[Event] = [
        final(0.0, "", speech_final=True),
        final(1.0, "   ", speech_final=True),
        UtteranceEnd(channel=(0, 1), last_word_end=0.0),
        FinalizeComplete(channel=None, reason="covered"),
        closed(),
    ]
    assert feed(tracker, events) == []
    assert tracker.handle_timer(now=100.0) == []


def test_finalize_complete_ends_the_channels_it_covers() -> None:
    tracker = UtteranceTracker()
    feed(
        tracker,
        [final(0.0, "left", channel=0, total=2), final(0.0, "right", channel=1, total=2)],
    )
    out = tracker.handle_event(FinalizeComplete(channel=1, reason="from_finalize"), now=1.0)
    assert brief(out) == [(1, "right", "finalize")]
    feed(tracker, [final(1.0, "again", channel=1, total=2)])
    out = tracker.handle_event(FinalizeComplete(channel=None, reason="timeout"), now=2.0)
    assert brief(out) == [(0, "left", "finalize"), (1, "again", "finalize")]


def test_a_finalize_cut_short_by_the_close_leaves_the_reason_to_closed() -> None:
    tracker = UtteranceTracker()
    feed(tracker, [final(0.0, "cut off")])
    assert tracker.handle_event(FinalizeComplete(channel=None, reason="closed"), now=1.0) == []
    assert brief(tracker.close()) == [(0, "cut off", "closed")]
    assert tracker.handle_event(closed(), now=1.0) == []  # nothing left
    assert tracker.handle_event(Metadata(request_id="r"), now=1.0) == []


def test_backstop_fires_utterance_timeout_after_the_last_final_with_words() -> None:
    tracker = UtteranceTracker(timeout=3.0)
    tracker.handle_event(final(0.0, "no end"), now=10.0)
    assert tracker.deadline() == 13.0
    tracker.handle_event(final(0.8, "signal"), now=11.0)
    assert tracker.deadline() == 14.0
    # empty finals (noise, silence) do not push it
    tracker.handle_event(final(1.6, ""), now=12.0)
    assert tracker.deadline() == 14.0
    assert tracker.handle_timer(now=13.999) == []
    out = tracker.handle_timer(now=14.0)
    assert brief(out) == [(0, "no end signal", "timeout")]
    assert tracker.deadline() is None
    # a late UtteranceEnd for those words is not a second utterance ...
    assert tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=1.6), now=15.0) == []
    # ... nor the end of the next one, already under way
    tracker.handle_event(final(5.0, "next one"), now=16.0)
    assert tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=1.6), now=16.5) == []
    out = tracker.handle_event(UtteranceEnd(channel=(0, 1), last_word_end=5.8), now=17.0)
    assert brief(out) == [(0, "next one", "utterance_end")]


def test_interim_with_new_words_pushes_the_backstop() -> None:
    tracker = UtteranceTracker(timeout=2.0)
    tracker.handle_event(final(0.0, "still"), now=1.0)
    assert tracker.deadline() == 3.0
    tracker.handle_event(final(0.4, "talking", is_final=False), now=2.5)
    assert tracker.deadline() == 4.5
    # the same interim again is no news; an interim with no words neither
    tracker.handle_event(final(0.4, "talking", is_final=False), now=3.5)
    tracker.handle_event(final(0.4, "", is_final=False), now=3.6)
    assert tracker.deadline() == 4.5
    # interim words before any final: nothing pending, nothing to push
    other = UtteranceTracker(timeout=2.0)
    other.handle_event(final(0.0, "hi", is_final=False), now=0.5)
    assert other.deadline() is None


def test_no_backstop_when_disabled() -> None:
    tracker = UtteranceTracker(timeout=None)
    feed(tracker, [final(0.0, "words"), final(0.4, "more", is_final=False)])
    assert tracker.deadline() is None
    assert tracker.handle_timer(now=1e9) == []


def test_config_default_and_validation() -> None:
    assert Config().utterance_timeout == 3.0
    assert Config(utterance_timeout=None).utterance_timeout is None
    with pytest.raises(ValueError, match="utterance_timeout"):
        Config(utterance_timeout=0)
    assert Config().utterance_max_seconds == 60.0
    assert Config(utterance_max_seconds=None).utterance_max_seconds is None
    with pytest.raises(ValueError, match="utterance_max_seconds"):
        Config(utterance_max_seconds=-1.0)


def unbroken(tracker: UtteranceTracker, seconds: int, now_step: float = 0.01) -> list[Utterance]:
    """Finals of one word a second with no end signal, arriving faster than real time
    (so the wall-clock backstop never fires: each final pushes it back)."""
    out: list[Utterance] = []
    for k in range(seconds):
        out += tracker.handle_event(final(float(k), f"w{k}", word_seconds=1.0), now=k * now_step)
    return out


def test_unbroken_speech_ends_an_utterance_at_max_seconds() -> None:
    tracker = UtteranceTracker(timeout=3.0, max_seconds=10.0)
    out = unbroken(tracker, 25)
    # ends as soon as its words span 10 s: after w9, after w19; w20..w24 still open
    assert [(u.start, u.end, u.reason, len(u.results)) for u in out] == [
        (0.0, 10.0, "timeout", 10),
        (10.0, 20.0, "timeout", 10),
    ]
    assert out[1].transcript == " ".join(f"w{k}" for k in range(10, 20))
    assert brief(tracker.close()) == [(0, "w20 w21 w22 w23 w24", "closed")]


def test_the_cap_gives_way_to_a_real_end_signal_in_the_same_results() -> None:
    tracker = UtteranceTracker(timeout=3.0, max_seconds=2.0)
    tracker.handle_event(final(0.0, "one", word_seconds=1.0), now=0.0)
    out = tracker.handle_event(final(1.0, "two", word_seconds=1.0, speech_final=True), now=0.1)
    assert brief(out) == [(0, "one two", "speech_final")]


def test_a_finalize_reply_past_the_cap_leaves_the_end_to_the_finalize() -> None:
    tracker = UtteranceTracker(timeout=3.0, max_seconds=1.0)
    reply = attrs.evolve(final(0.0, "one two three", word_seconds=1.0), from_finalize=True)
    assert tracker.handle_event(reply, now=0.0) == []
    out = tracker.handle_event(FinalizeComplete(channel=None, reason="from_finalize"), now=0.0)
    assert brief(out) == [(0, "one two three", "finalize")]


def test_without_the_cap_an_unbroken_stream_is_one_utterance() -> None:
    tracker = UtteranceTracker(timeout=3.0, max_seconds=None)
    assert unbroken(tracker, 200) == []
    (utterance,) = tracker.close()
    assert len(utterance.results) == 200


def test_default_connection_holds_at_most_a_minute_of_finals() -> None:
    """The default ``Config`` bounds what an endless utterance holds (memory, issue 13):
    an hour of finals, one a second, at 100x real time."""
    tracker = UtteranceTracker(
        timeout=Config().utterance_timeout, max_seconds=Config().utterance_max_seconds
    )
    out = unbroken(tracker, 3630)
    assert len(out) == 60  # 0-60, ..., 3540-3600; 3600.. still open
    assert all(u.reason == "timeout" and len(u.results) == 60 for u in out)
    assert [len(state.results) for state in tracker._channels.values()] == [30]


def test_multichannel_utterances_are_independent() -> None:
    tracker = UtteranceTracker(timeout=3.0)
    tracker.handle_event(final(0.0, "agent speaks", channel=1, total=2), now=1.0)
    out = tracker.handle_event(final(0.0, "caller", channel=0, total=2, speech_final=True), now=1.5)
    assert brief(out) == [(0, "caller", "speech_final")]
    tracker.handle_event(final(2.0, "caller again", channel=0, total=2), now=2.5)
    assert tracker.deadline() == 4.0
    out = tracker.handle_event(UtteranceEnd(channel=(1, 2), last_word_end=0.8), now=3.0)
    assert brief(out) == [(1, "agent speaks", "utterance_end")]
    assert brief(tracker.handle_timer(now=5.5)) == [(0, "caller again", "timeout")]
    assert "pending_channels=[]" in repr(tracker)


def test_timeouts_on_several_channels_come_in_deadline_order() -> None:
    tracker = UtteranceTracker(timeout=1.0)
    tracker.handle_event(final(0.0, "second", channel=0, total=2), now=0.5)
    tracker.handle_event(final(0.0, "first", channel=1, total=2), now=0.2)
    assert "pending_channels=[0, 1]" in repr(tracker)
    assert brief(tracker.handle_timer(now=2.0)) == [
        (1, "first", "timeout"),
        (0, "second", "timeout"),
    ]


def test_a_final_replayed_after_a_reconnect_reports_no_word_twice() -> None:
    """The resilience layer rebases a new session onto the stream clock; audio the old
    session had not finalized on every channel is replayed, so a final can repeat words."""
    tracker = UtteranceTracker()
    feed(tracker, [final(10.0, "one two three")])  # words end at 10.4, 10.8, 11.2
    # new session, t=0 is stream time 10.8; its first final repeats "three"
    replayed = rebase(final(0.0, "Three. Four five.", word_seconds=0.4), 10.8)
    assert replayed.alternatives[0].words[0].start == pytest.approx(10.8)
    # a replay of words all taken already adds nothing
    assert feed(tracker, [rebase(final(0.0, "three"), 10.8)]) == []
    out = tracker.handle_event(attrs.evolve(replayed, speech_final=True), now=1.0)
    assert brief(out) == [(0, "one two three Four five.", "speech_final")]
    assert out[0].end == pytest.approx(12.0)
    # a replayed final without word timings: judged by its window
    bare = Results(
        channel_index=(0, 1),
        start=11.0,
        duration=1.0,
        is_final=True,
        speech_final=True,
        from_finalize=False,
        alternatives=(Alternative(transcript="five", confidence=1.0),),
    )
    assert tracker.handle_event(bare, now=2.0) == []
    later = attrs.evolve(bare, start=13.0)
    assert brief(tracker.handle_event(later, now=3.0)) == [(0, "five", "speech_final")]
    assert tracker.handle_event(attrs.evolve(bare, alternatives=()), now=4.0) == []


# ---------------------------------------------------------------- real Deepgram payloads


def decoded(name: str) -> Any:
    return decode_message(fixture_text(name))


def test_real_speech_final_capture() -> None:
    tracker = UtteranceTracker()
    results = decoded("listen_v1_results_final_speech_final_python_issue442.json")
    (utterance,) = tracker.handle_event(results, now=1.0)
    assert (utterance.transcript, utterance.reason) == ("Hello, world.", "speech_final")
    assert (utterance.start, utterance.end) == (0.0, 1.11)
    wire = decoded("listen_v1_results_final_speech_final_wire_capture.json")
    (utterance,) = tracker.handle_event(wire, now=2.0)
    assert utterance.transcript == wire.transcript
    assert utterance.start == wire.alternatives[0].words[0].start


def test_real_final_then_real_utterance_end() -> None:
    tracker = UtteranceTracker()
    results = decoded("listen_v1_results_final_not_speech_final_wire_capture.json")
    assert results.is_final
    assert not results.speech_final
    assert results.transcript
    assert tracker.handle_event(results, now=1.0) == []
    end = decoded("listen_v1_utterance_end_docs.json")
    # the docs' UtteranceEnd is for another stream: re-time it to this final's last word
    end = attrs.evolve(end, last_word_end=results.alternatives[0].words[-1].end)
    (utterance,) = tracker.handle_event(end, now=2.0)
    assert (utterance.transcript, utterance.reason) == (results.transcript, "utterance_end")
    multi = decoded("listen_v1_utterance_end_multichannel_python_pr258.json")
    assert tracker.handle_event(multi, now=3.0) == []  # channel 0 of 2: nothing pending
    empty = decoded("listen_v1_results_final_empty_transcript_python_sdk_testdata.json")
    assert tracker.handle_event(empty, now=4.0) == []


# ---------------------------------------------------------------- properties

CHANNELS = 2


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Per channel contiguous finals (some with words), interims, end signals, finalizes,
    timer ticks; a Closed at the end. Items: (kind, payload)."""
    position = [0.0] * CHANNELS
    last_word_end = [0.0] * CHANNELS
    steps: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["final", "final", "interim", "ue", "finalize", "tick"]))
        channel = draw(st.integers(0, CHANNELS - 1))
        if kind in ("final", "interim"):
            count = draw(st.integers(0, 3))
            text = " ".join(f"w{len(steps)}x{i}" for i in range(count))
            start = position[channel]
            results = final(
                start,
                text,
                channel=channel,
                total=CHANNELS,
                is_final=kind == "final",
                speech_final=kind == "final" and draw(st.booleans()),
                duration=max(count * 0.4, 0.5),
            )
            if kind == "final":
                position[channel] = results.end
                if count:
                    last_word_end[channel] = start + count * 0.4
            steps.append(("event", results))
        elif kind == "ue":
            steps.append(
                (
                    "event",
                    UtteranceEnd(channel=(channel, CHANNELS), last_word_end=last_word_end[channel]),
                )
            )
        elif kind == "finalize":
            target = draw(st.sampled_from([None, channel]))
            reason = draw(st.sampled_from(["from_finalize", "covered", "timeout"]))
            steps.append(("event", FinalizeComplete(channel=target, reason=reason)))
        else:
            steps.append(("tick", draw(st.floats(0.0, 5.0))))
    steps.append(("event", closed()))
    return steps


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from([None, 0.5, 3.0]))
def test_every_final_word_in_exactly_one_utterance_after_its_results(
    steps: list[tuple[str, Any]], timeout: float | None
) -> None:
    tracker = UtteranceTracker(timeout=timeout)
    now = 0.0
    emitted: list[Event] = []
    for kind, payload in steps:
        if kind == "tick":
            now += payload
            deadline = tracker.deadline()
            emitted += tracker.handle_timer(now=now)
            if deadline is not None and deadline <= now:
                assert tracker.deadline() is None or tracker.deadline() > deadline
        else:
            now += 0.1
            emitted.append(payload)
            emitted += tracker.handle_event(payload, now=now)
    utterances = [e for e in emitted if isinstance(e, Utterance)]
    for channel in range(CHANNELS):
        mine = [u for u in utterances if u.channel == channel]
        finals_with_words = [
            e
            for e in emitted
            if isinstance(e, Results) and e.is_final and e.transcript and e.channel == channel
        ]
        # exactly once: the utterances' results are every final with words, in order
        assert [r for u in mine for r in u.results] == finals_with_words
        for u in mine:
            assert u.transcript.strip()
            assert u.transcript == " ".join(r.transcript for r in u.results)
            assert u.start <= u.end
        # stream order: utterances of a channel follow each other on the audio clock
        assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(mine))
    # each utterance comes after the Results it is built from
    for index, event in enumerate(emitted):
        if isinstance(event, Utterance):
            for results in event.results:
                assert any(e is results for e in emitted[:index])
    assert tracker.deadline() is None  # the close ended everything
