"""The protocol exceptions, split the h11 way: what *you* did wrong versus what the *peer* did.

``LocalProtocolError`` is raised synchronously when the caller misuses the API and the
call changes nothing. ``RemoteProtocolError`` is never raised by ``receive_*``: a peer
that breaks the protocol ends the session, and the error rides on ``Closed.error``.
These sit below the events (``Closed.error`` is a ``RemoteProtocolError``); the adapters'
exceptions, which carry events, live above them in ``_errors``.
"""

from __future__ import annotations

from ._lifecycle import State

__all__ = ["DgProtoError", "LocalProtocolError", "RemoteProtocolError"]


class DgProtoError(Exception):
    """Base class of every exception dgproto raises on purpose."""


class LocalProtocolError(DgProtoError):
    """The caller used the API in a way the current state does not allow.

    ``state`` is the connection state at the time of the call, so a handler can tell
    "sent audio before the handshake finished" from "sent audio after CloseStream"
    without parsing the message.
    """

    def __init__(self, message: str, *, state: State | None = None) -> None:
        super().__init__(message)
        self.state = state


class RemoteProtocolError(DgProtoError):
    """The peer broke the WebSocket or HTTP protocol (bad frame, bad handshake, ...).

    ``close_code`` is the WebSocket close code dgproto sent (or would send) because of it.
    """

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code
