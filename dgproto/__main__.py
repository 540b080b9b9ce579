"""``python -m dgproto``: the command line, which lives in ``dgproto.transports.cli``.

The one module under ``dgproto/`` that may reach the I/O side. Imported by name at run
time: mypy cannot map the ``transports/`` folder to ``dgproto.transports`` from here.
"""

from __future__ import annotations

import importlib

if __name__ == "__main__":
    raise SystemExit(importlib.import_module("dgproto.transports.cli").main())
