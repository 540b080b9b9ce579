"""``FluxReplayBuffer``: Flux turns on one clock and one turn count across connections."""

from __future__ import annotations

import pytest

from dgproto import FluxOptions, FluxReplayBuffer, TurnInfo, rebase_turn
from dgproto._events import FluxConnected, TurnWord

RATE = 32000  # linear16 at 16 kHz


def turn(event: str, index: int, start: float, end: float, *words: TurnWord) -> TurnInfo:
    return TurnInfo(
        event=event,
        turn_index=index,
        audio_window_start=start,
        audio_window_end=end,
        transcript=" ".join(w.word for w in words),
        words=words,
    )


def test_rebase_turn_moves_times_and_index_and_keeps_missing_word_times() -> None:
    info = turn(
        "Update",
        0,
        0.0,
        1.0,
        TurnWord(word="hi", confidence=0.9, start=0.2, end=0.4),
        TurnWord(word="x", confidence=0.5),
    )
    assert rebase_turn(info, 0.0, 0) is info
    moved = rebase_turn(info, 2.5, 3)
    assert (moved.turn_index, moved.audio_window_start, moved.audio_window_end) == (3, 2.5, 3.5)
    assert [(w.start, w.end) for w in moved.words] == [(2.7, 2.9), (None, None)]


def test_end_of_turn_settles_audio_and_a_resume_replays_the_rest() -> None:
    buffer = FluxReplayBuffer.for_flux(
        FluxOptions(model="flux-general-en", encoding="linear16", sample_rate=16000)
    )
    buffer.record(b"\1" * RATE * 2)  # 2 s sent
    hello = FluxConnected(request_id="r")
    assert buffer.observe(hello) is hello
    buffer.observe(turn("Update", 0, 0.0, 0.5))
    assert buffer.seconds_buffered == 2.0  # an Update settles nothing
    end = buffer.observe(
        turn("EndOfTurn", 0, 0.0, 1.6, TurnWord(word="a", confidence=1.0, start=0.5, end=0.79))
    )
    assert end.audio_window_end == 1.6
    assert buffer.turns == 1
    # kept from the turn's last word on: the window's end may cut the next turn's first word
    assert buffer.replay_from == pytest.approx(0.79)
    buffer.observe(turn("EndOfTurn", 0, 0.0, 1.6, TurnWord(word="a", confidence=1.0, end=0.8)))
    assert buffer.turns == 1  # the same turn again (it moves nothing back)
    assert buffer.replay_from == pytest.approx(0.8)
    assert buffer.seconds_buffered == pytest.approx(1.2)
    replay = buffer.resume()  # the new connection's t=0 is stream time 0.8
    assert sum(map(len, replay)) == round(RATE * 1.2)
    assert buffer.offset == pytest.approx(0.8)
    # The new connection counts turns and time from 0; the app sees the stream's, and
    # the turn's window starts where the last EndOfTurn's ended.
    again = buffer.observe(
        turn("EndOfTurn", 0, 0.0, 1.2, TurnWord(word="b", confidence=1.0, start=0.9, end=1.0))
    )
    assert (again.turn_index, again.audio_window_start) == (1, 1.6)
    assert again.audio_window_end == pytest.approx(2.0)
    assert (again.words[0].start, again.words[0].end) == pytest.approx((1.7, 1.8))
    assert buffer.turns == 2
    assert buffer.replay_from == pytest.approx(1.8)
    assert buffer.seconds_buffered == pytest.approx(0.2)
    # an Update of replayed silence only: its window shrinks to nothing at that end
    buffer.resume()
    quiet = buffer.observe(turn("Update", 0, 0.0, 0.1))
    assert quiet.audio_window_start == quiet.audio_window_end == pytest.approx(2.0)


def test_end_of_turn_without_word_times_replays_from_its_window_end() -> None:
    buffer = FluxReplayBuffer(bytes_per_second=1000)
    buffer.record(bytes(2000))
    buffer.observe(turn("EndOfTurn", 0, 0.0, 1.5, TurnWord(word="a", confidence=1.0)))
    assert buffer.replay_from == 1.5
    assert sum(map(len, buffer.resume())) == 500


def test_containerized_flux_audio_cannot_be_replayed() -> None:
    with pytest.raises(ValueError, match="needs raw audio"):
        FluxReplayBuffer.for_flux(FluxOptions(model="flux-general-en"))
