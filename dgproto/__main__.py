"""``python -m dgproto``: the command line (see ``dgproto.cli``)."""

from __future__ import annotations

from dgproto.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
