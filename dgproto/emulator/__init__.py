"""``dgproto.emulator``: a Deepgram-compatible ``/v1/listen`` server, sans-I/O.

Test an app that uses Deepgram live transcription without a network call or an API key:
``EmulatorConnection`` is the server side of one session, driven by bytes and ``now``
like the client core, and ``dgproto.transports.server`` puts it on a socket. Its default
recognizer decodes the **tone codec**: ``synthesize("Hello world.")`` makes audio that
comes back as exactly those words, with real timestamps, so dropped or reordered audio
shows up in the transcript. ``FaultPlan`` scripts the failures a client must survive.
"""

from __future__ import annotations

from ._codec import silence, synthesize
from ._config import EmulatorConfig
from ._connection import NET0001_REASON, ClientMessage, EmulatorConnection, EmulatorState
from ._faults import FaultPlan
from ._recognizer import (
    RecognizedWord,
    Recognizer,
    RecognizerFactory,
    ScriptedRecognizer,
    ToneRecognizer,
)
from ._replay import ReplayConnection

__all__ = [
    "NET0001_REASON",
    "ClientMessage",
    "EmulatorConfig",
    "EmulatorConnection",
    "EmulatorState",
    "FaultPlan",
    "RecognizedWord",
    "Recognizer",
    "RecognizerFactory",
    "ReplayConnection",
    "ScriptedRecognizer",
    "ToneRecognizer",
    "silence",
    "synthesize",
]
