"""How fragmented an incoming WebSocket message may be, for the client and the emulator.

RFC 6455 lets a peer split a message into any number of frames, empty ones included.
Each frame costs a parse (about 10 us in wsproto) whatever it carries, and empty frames
never count towards a size limit, so without a bound a flood of empty continuation
frames is CPU with no end (a fuzzer found 2 MiB of them costing 10-14 s). Allowing one
frame per payload byte, plus ``FRAGMENT_ALLOWANCE``, keeps the cost of any message
proportional to its bytes on the wire; both cores close with 1009 beyond it.
"""

from __future__ import annotations

__all__ = ["FRAGMENT_ALLOWANCE", "too_fragmented"]

#: Frames a message may have beyond one per byte of its payload.
FRAGMENT_ALLOWANCE = 1024


def too_fragmented(frames: int, payload_bytes: int) -> bool:
    """True when ``frames`` frames so far carried too little (``payload_bytes``) for them."""
    return frames > FRAGMENT_ALLOWANCE + payload_bytes
