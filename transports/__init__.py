"""dgproto's I/O layer: the adapters that drive the sans-I/O cores on real sockets.

Installed as ``dgproto.transports`` (setuptools maps this folder). ``server`` runs the
emulator; the client adapters live beside it. Unlike ``dgproto/``, these modules may
use sockets, threads, event loops and clocks: that is their job.
"""

from __future__ import annotations

from ._proxy import ProxyError
from ._record import load_recording, load_recordings

__all__ = ["ProxyError", "load_recording", "load_recordings"]
