"""``State``: where a connection is in its life. The ground floor of the core.

It imports nothing from dgproto, so every other module can name a state: the errors
(``LocalProtocolError.state``), the transition tables in ``_state`` and the connections.
The import order of the ground floor is ``_lifecycle`` -> ``_exceptions`` -> ``_events``
-> ``_errors`` / ``_state``; no module imports one above it, even for type hints.
"""

from __future__ import annotations

import enum

__all__ = ["State"]


class State(enum.Enum):
    """Where a connection (``ListenConnection``, ``FluxConnection``) is in its life."""

    #: Created; ``connect()`` not called yet.
    IDLE = "IDLE"
    #: The HTTP upgrade request is out; waiting for ``101 Switching Protocols``.
    CONNECTING = "CONNECTING"
    #: Streaming: audio and control messages may be sent.
    OPEN = "OPEN"
    #: ``CloseStream`` sent; results still flow until the server closes.
    CLOSING = "CLOSING"
    #: ``Closed`` has been emitted; flush ``data_to_send()`` and close the socket.
    CLOSED = "CLOSED"
