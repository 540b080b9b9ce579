"""dgproto: a sans-I/O client for Deepgram live speech-to-text (``/v1/listen``).

The core, ``ListenConnection``, is a pure state machine: bytes and time in, bytes to
send, events and a timer deadline out. Adapters in ``dgproto.transports`` (asyncio,
trio, blocking sockets) drive it; ``dgproto.emulator`` is a local Deepgram-compatible
server for tests and demos. Everything in ``__all__`` is public.
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
    HandshakeRejected,
    MalformedMessage,
    Metadata,
    Results,
    ServerError,
    SpeechStarted,
    UnknownMessage,
    Utterance,
    UtteranceEnd,
    Word,
)
from ._options import Auth, LiveOptions
from ._pacing import Pacer
from ._resume import ReplayBuffer, rebase, reconnect_delays, should_reconnect
from ._state import State
from ._stats import StreamStats

__all__ = [
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
    "Pacer",
    "RemoteProtocolError",
    "ReplayBuffer",
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
    "reconnect_delays",
    "should_reconnect",
]
