"""The JSON parser for incoming messages when ``Config.json_loads`` is not set.

Decoding Results is the hot inbound path. ``orjson`` (the ``dgproto[speedups]`` extra)
parses a Results message about 3x faster than ``json.loads`` and, for what Deepgram
sends, returns the same Python values (tests/test_json.py checks every real payload), so
it is used whenever it is installed; nothing to configure. ``Config.json_loads`` still
wins when set. Where they differ is outside strict JSON: orjson rejects ``NaN`` and lone
surrogate escapes and reads integers beyond 64 bits as floats, and its error messages
(in ``MalformedMessage.error``) are its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["default_loads"]

Loads = Callable[[str], Any]


def default_loads(configured: Loads | None = None) -> Loads:
    """``configured`` if set, else ``orjson.loads`` when importable, else ``json.loads``."""
    if configured is not None:
        return configured
    try:
        import orjson
    except ImportError:
        return json.loads
    loads: Loads = orjson.loads
    return loads
