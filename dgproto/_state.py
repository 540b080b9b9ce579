"""The legality tables: which input moves a connection from which state to which.

Following h11, the legal moves are data, not scattered ``if`` statements: every input a
connection can see is an ``Input`` member, and ``table[state][input]`` is the next state.
A missing entry means the input is illegal in that state; for a caller's command that
becomes a ``LocalProtocolError`` naming the state. States only ever move forward
(IDLE -> CONNECTING -> OPEN -> CLOSING -> CLOSED).

The lifecycle (handshake, close, timeouts, abort) is shared by every endpoint; an
endpoint adds only the commands it allows while OPEN. ``/v1/listen`` allows KeepAlive,
Finalize and Configure (``LISTEN_TRANSITIONS``, also ``TRANSITIONS``); Flux
(``/v2/listen``) allows Configure and ForceEndTurn, and has no KeepAlive or Finalize
(sending either ends a Flux session, research/protocol.md §5.1).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from ._exceptions import LocalProtocolError
from ._lifecycle import State

__all__ = [
    "FLUX_TRANSITIONS",
    "Input",
    "LISTEN_TRANSITIONS",
    "State",
    "TRANSITIONS",
    "Table",
    "next_state",
]


class Input(enum.Enum):
    """Everything that can move the state machine: caller commands and wire happenings."""

    # caller commands
    CONNECT = "connect"
    SEND_AUDIO = "send_audio"
    SEND_KEEPALIVE = "send_keepalive"
    FINALIZE = "finalize"
    CONFIGURE = "configure"
    FORCE_END_TURN = "force_end_turn"
    CLOSE_STREAM = "close_stream"
    ABORT = "abort"
    # things that happen to the connection
    HANDSHAKE_ACCEPTED = "handshake accepted"
    HANDSHAKE_REJECTED = "handshake rejected"
    OPEN_TIMEOUT = "open timeout"
    CLOSE_TIMEOUT = "close timeout"
    PING_TIMEOUT = "ping timeout"
    REMOTE_CLOSE = "remote close frame"
    PROTOCOL_ERROR = "remote protocol error"
    TRANSPORT_EOF = "transport EOF"


Table = Mapping[State, Mapping[Input, State]]

_S = State
_I = Input


def _table(open_commands: Iterable[Input]) -> Table:
    """The shared lifecycle plus one endpoint's commands, each legal only while OPEN."""
    return {
        _S.IDLE: {
            _I.CONNECT: _S.CONNECTING,
            _I.ABORT: _S.CLOSED,
        },
        _S.CONNECTING: {
            _I.HANDSHAKE_ACCEPTED: _S.OPEN,
            _I.HANDSHAKE_REJECTED: _S.CLOSED,
            _I.OPEN_TIMEOUT: _S.CLOSED,
            _I.PROTOCOL_ERROR: _S.CLOSED,
            _I.TRANSPORT_EOF: _S.CLOSED,
            _I.ABORT: _S.CLOSED,
        },
        _S.OPEN: {
            _I.SEND_AUDIO: _S.OPEN,
            **dict.fromkeys(open_commands, _S.OPEN),
            _I.CLOSE_STREAM: _S.CLOSING,
            _I.REMOTE_CLOSE: _S.CLOSED,
            _I.PROTOCOL_ERROR: _S.CLOSED,
            _I.PING_TIMEOUT: _S.CLOSED,
            _I.TRANSPORT_EOF: _S.CLOSED,
            _I.ABORT: _S.CLOSED,
        },
        _S.CLOSING: {
            _I.REMOTE_CLOSE: _S.CLOSED,
            _I.CLOSE_TIMEOUT: _S.CLOSED,
            _I.PROTOCOL_ERROR: _S.CLOSED,
            _I.PING_TIMEOUT: _S.CLOSED,
            _I.TRANSPORT_EOF: _S.CLOSED,
            _I.ABORT: _S.CLOSED,
        },
        _S.CLOSED: {
            # abort() is the cleanup call adapters make in ``finally``: harmless when done.
            _I.ABORT: _S.CLOSED,
        },
    }


#: ``/v1/listen``: the whole lifecycle on one screen.
LISTEN_TRANSITIONS: Table = _table((_I.SEND_KEEPALIVE, _I.FINALIZE, _I.CONFIGURE))
#: The name ``ListenConnection`` has always used.
TRANSITIONS: Table = LISTEN_TRANSITIONS
#: ``/v2/listen`` (Flux): no KeepAlive, no Finalize; ForceEndTurn instead.
FLUX_TRANSITIONS: Table = _table((_I.CONFIGURE, _I.FORCE_END_TURN))


def next_state(state: State, event: Input, table: Table = LISTEN_TRANSITIONS) -> State:
    """Look up the move for ``event`` in ``state``; raise if the table has none."""
    try:
        return table[state][event]
    except KeyError:
        raise LocalProtocolError(
            f"cannot {event.value} in state {state.name}", state=state
        ) from None
