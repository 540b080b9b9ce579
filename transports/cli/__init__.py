"""The ``dgproto`` command line: ``transcribe``, ``serve``, ``synth`` and ``demo``.

``transcribe`` streams a WAV file, raw audio or stdin to Deepgram (or any compatible
server, such as the emulator) and shows what comes back; ``demo`` does the same against
an in-process emulator with a script that shows every part of a live session.

It lives on the I/O side (``dgproto.transports``) because it reads files, clocks and
signals. Its modules, each importing only those above it: ``shared`` (exit statuses,
``CliError``), ``sources`` (audio in), ``session`` (what to send when, what arrived),
``views`` (text and JSON out), ``runtime`` (the three adapters), ``commands`` (one
``register_*``/``cmd_*`` pair per command) and ``app`` (``main``).
"""

from __future__ import annotations

from .app import build_parser, main
from .session import Summary
from .shared import CliError, OutputClosed
from .sources import AudioFormat, AudioSource, open_source
from .views import JsonView, TextView, event_json

__all__ = [
    "AudioFormat",
    "AudioSource",
    "CliError",
    "JsonView",
    "OutputClosed",
    "Summary",
    "TextView",
    "build_parser",
    "event_json",
    "main",
    "open_source",
]
