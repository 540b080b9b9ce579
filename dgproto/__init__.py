"""dgproto: a sans-I/O client for Deepgram live speech-to-text (``/v1/listen``, and Flux
on ``/v2/listen``).

The cores, ``ListenConnection`` and ``FluxConnection``, are pure state machines on one
shared WebSocket session: bytes and time in, bytes to send, events and a timer deadline
out; both offer the ``StreamConnection`` driver surface. Adapters in
``dgproto.transports`` (asyncio, trio, blocking sockets) drive them; ``dgproto.emulator``
is a local Deepgram-compatible server for tests and demos. Everything in ``__all__`` is public.
"""

from __future__ import annotations

from ._config import Config
from ._connection import USER_AGENT, ListenConnection, __version__, classify_close
from ._errors import (
    ConnectionClosedError,
    DgProtoError,
    HandshakeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from ._events import (
    Alternative,
    Closed,
    ConfigureFailure,
    ConfigureSuccess,
    Connected,
    Event,
    FinalizeComplete,
    FluxConnected,
    HandshakeRejected,
    MalformedMessage,
    Metadata,
    Reconnected,
    Reconnecting,
    Results,
    ServerError,
    ServerWarning,
    SpeechStarted,
    TurnInfo,
    TurnWord,
    UnknownMessage,
    Utterance,
    UtteranceEnd,
    Word,
)
from ._flux import FluxConnection
from ._flux_options import FluxOptions
from ._flux_resume import FluxReplayBuffer, rebase_turn
from ._options import Auth, LiveOptions
from ._pacing import Pacer
from ._reconnect import ReconnectPolicy
from ._resume import ReplayBuffer, rebase, reconnect_delays, should_reconnect
from ._session import StreamConnection
from ._state import State
from ._stats import StreamStats

__all__ = [
    "TurnWord",
    "TurnInfo",
    "StreamConnection",
    "ServerWarning",
    "FluxOptions",
    "FluxConnection",
    "FluxConnected",
    "USER_AGENT",
    "Alternative",
    "Auth",
    "Closed",
    "Config",
    "ConfigureFailure",
    "ConfigureSuccess",
    "Connected",
    "ConnectionClosedError",
    "DgProtoError",
    "Event",
    "FinalizeComplete",
    "HandshakeError",
    "HandshakeRejected",
    "ListenConnection",
    "LiveOptions",
    "LocalProtocolError",
    "MalformedMessage",
    "Metadata",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "Pacer",
    "RemoteProtocolError",
    "ReplayBuffer",
    "FluxReplayBuffer",
    "Results",
    "ServerError",
    "SpeechStarted",
    "State",
    "StreamStats",
    "UnknownMessage",
    "Utterance",
    "UtteranceEnd",
    "Word",
    "__version__",
    "classify_close",
    "rebase",
    "rebase_turn",
    "reconnect_delays",
    "should_reconnect",
]
