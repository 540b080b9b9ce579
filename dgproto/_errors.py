"""Every exception dgproto raises, in one place for ``from dgproto._errors import ...``.

The protocol errors (``DgProtoError``, ``LocalProtocolError``, ``RemoteProtocolError``)
are defined below the events, in ``_exceptions``; the two defined here carry events
(``HandshakeRejected``, ``Closed``), so they sit above ``_events``: the ground floor has
one order and no cycle. Adapters raise ``HandshakeError`` and ``ConnectionClosedError``.
No message here ever carries a secret: none of these classes is handed one.
"""

from __future__ import annotations

from ._events import Closed, HandshakeRejected
from ._exceptions import DgProtoError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "ConnectionClosedError",
    "DgProtoError",
    "HandshakeError",
    "LocalProtocolError",
    "RemoteProtocolError",
]


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
