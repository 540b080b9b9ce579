"""Connection states and the one transition table that moves between them.

Following h11, the legal moves are data, not scattered ``if`` statements: every input
the connection can see is a ``Input`` member, and ``TRANSITIONS[state][input]`` is the
next state. A missing entry means the input is illegal in that state; for a caller's
command that becomes a ``LocalProtocolError`` naming the state. States only ever move
forward (IDLE -> CONNECTING -> OPEN -> CLOSING -> CLOSED).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ._errors import LocalProtocolError

__all__ = ["Input", "State", "TRANSITIONS", "next_state"]


class State(enum.Enum):
    """Where a ``ListenConnection`` is in its life."""

    #: Created; ``connect()`` not called yet.
    IDLE = "IDLE"
    #: The HTTP upgrade request is out; waiting for ``101 Switching Protocols``.
    CONNECTING = "CONNECTING"
    #: Streaming: audio and control messages may be sent.
    OPEN = "OPEN"
    #: ``CloseStream`` sent; results and Metadata still flow until the server closes.
    CLOSING = "CLOSING"
    #: ``Closed`` has been emitted; flush ``data_to_send()`` and close the socket.
    CLOSED = "CLOSED"


class Input(enum.Enum):
    """Everything that can move the state machine: caller commands and wire happenings."""

    # caller commands
    CONNECT = "connect"
    SEND_AUDIO = "send_audio"
    SEND_KEEPALIVE = "send_keepalive"
    FINALIZE = "finalize"
    CONFIGURE = "configure"
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


_S = State
_I = Input

#: ``TRANSITIONS[state][input] -> next state``. The whole lifecycle on one screen.
TRANSITIONS: Mapping[State, Mapping[Input, State]] = {
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
        _I.SEND_KEEPALIVE: _S.OPEN,
        _I.FINALIZE: _S.OPEN,
        _I.CONFIGURE: _S.OPEN,
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


def next_state(state: State, event: Input) -> State:
    """Look up the move for ``event`` in ``state``; raise if the table has none."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise LocalProtocolError(
            f"cannot {event.value} in state {state.name}", state=state
        ) from None
