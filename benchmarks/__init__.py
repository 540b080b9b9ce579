"""dgproto's benchmarks: ``python -m benchmarks`` (``make bench``); see README.md here."""

from __future__ import annotations
