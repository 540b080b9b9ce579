"""The transition table is the lifecycle: test it as data."""

from __future__ import annotations

import pytest

from dgproto import LocalProtocolError, State
from dgproto._state import TRANSITIONS, Input, next_state

ORDER = [State.IDLE, State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED]


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in State for e in TRANSITIONS[s]])
def test_states_only_move_forward(state: State, event: Input) -> None:
    assert ORDER.index(next_state(state, event)) >= ORDER.index(state)


def test_abort_is_legal_everywhere_and_ends_in_closed() -> None:
    for state in State:
        assert next_state(state, Input.ABORT) is State.CLOSED


def test_closed_is_terminal() -> None:
    assert set(TRANSITIONS[State.CLOSED].values()) == {State.CLOSED}


@pytest.mark.parametrize("event", [Input.SEND_AUDIO, Input.FINALIZE, Input.CONFIGURE])
def test_streaming_commands_only_when_open(event: Input) -> None:
    legal = {s for s in State if event in TRANSITIONS[s]}
    assert legal == {State.OPEN}


def test_illegal_move_raises_naming_the_state() -> None:
    with pytest.raises(LocalProtocolError, match="cannot send_audio in state CLOSING") as info:
        next_state(State.CLOSING, Input.SEND_AUDIO)
    assert info.value.state is State.CLOSING
