"""Exceptions, split the h11 way: what *you* did wrong versus what the *peer* did wrong.

``LocalProtocolError`` is raised synchronously when the caller misuses the API and the
call changes nothing. ``RemoteProtocolError`` is never raised by ``receive_*``: a peer
that breaks the protocol ends the session, and the error rides on ``Closed.error``.
Adapters add ``HandshakeError`` and ``ConnectionClosedError``. No message here ever
carries a secret: none of these classes is handed one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import Closed, HandshakeRejected
    from ._state import State

__all__ = [
    "ConnectionClosedError",
    "DgProtoError",
    "HandshakeError",
    "LocalProtocolError",
    "RemoteProtocolError",
]


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


class HandshakeError(DgProtoError):
    """The server refused the WebSocket upgrade (raised by the adapters' ``connect``).

    Carries the parsed ``HandshakeRejected`` fields so callers can branch on
    ``status_code`` (401 bad key, 429 too many streams, ...) without the raw response.
    """

    def __init__(self, rejected: HandshakeRejected) -> None:
        self.rejected = rejected
        self.status_code = rejected.status_code
        self.err_code = rejected.err_code
        self.err_msg = rejected.err_msg
        self.request_id = rejected.request_id
        self.dg_error = rejected.dg_error
        message = f"handshake rejected with HTTP {rejected.status_code}"
        details = [d for d in (rejected.err_code, rejected.err_msg or rejected.dg_error) if d]
        if details:
            message += ": " + "; ".join(details)
        if rejected.request_id:
            message += f" (request_id={rejected.request_id})"
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        """True for statuses where trying again later can succeed (429, 408, 5xx)."""
        return self.rejected.retryable


class ConnectionClosedError(DgProtoError):
    """The stream is closed; raised by an adapter when you send after ``Closed``.

    ``closed`` is the ``Closed`` event that ended the stream (code, reason,
    error_code, retryable), so the caller can decide whether to reconnect.
    """

    def __init__(self, closed: Closed) -> None:
        self.closed = closed
        reason = f" ({closed.reason})" if closed.reason else ""
        code = f" {closed.error_code}" if closed.error_code else ""
        super().__init__(
            f"connection closed by {closed.initiator} with code {closed.code}{code}{reason}"
        )
