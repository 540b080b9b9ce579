"""``DGPROTO_PURE=1`` runs the tests on the pure-Python fallbacks of the speedups.

The dev group installs the ``speedups`` extra (orjson, websockets' C mask), so a plain
``make test`` runs the fast paths; ``make test-pure`` runs the tests of the affected code
again with both blocked, as on a machine without them. Read here only, never by dgproto.
"""

from __future__ import annotations

import os
import sys

PURE = os.environ.get("DGPROTO_PURE", "") not in ("", "0")

if PURE:
    sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson now fails
    sys.modules["websockets.speedups"] = None  # type: ignore[assignment]
    # the pytest plugin may have imported dgproto before this file: undo its lookup
    from dgproto import _framing

    _framing.NATIVE_APPLY_MASK = None
