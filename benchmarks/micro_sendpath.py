"""Per-frame CPU of the audio send path, in-process (issue 13 goal 4).

Three measures, interleaved, on 640 B chunks with a fake transport whose ``write`` does
nothing, ``time.thread_time`` per frame: the core (``audio_data_to_send`` when the core
has it, else ``send_audio`` + ``data_to_send``, and the split calls alone), the asyncio
adapter's ``_Stream.send_audio`` on a ``_Protocol``, and the raw floor
(``BinaryFrameWriter.frame`` + ``write``, what ``e2e_client``'s raw client does).
Uses whichever ``dgproto`` and ``transports`` the working directory holds, so a copy of
an older commit can be measured with the same script.

Run alone: ``python benchmarks/micro_sendpath.py`` from the repository root.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.getcwd())

from benchmarks._peers import open_dgproto
from dgproto._framing import BinaryFrameWriter
from transports.asyncio import _Protocol, _Stream

FRAMES = 200_000
ROUNDS = 5
CHUNK = bytes(640)


class _FakeTransport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def _per_frame(start: float) -> float:
    return (time.thread_time() - start) / FRAMES * 1e6


def core() -> float:
    conn, _ = open_dgproto()
    fused = getattr(conn, "audio_data_to_send", None)
    if fused is None:
        return core_split()
    now = 1.0
    start = time.thread_time()
    for _ in range(FRAMES):
        fused(CHUNK, now=now)
        now += 0.02
    return _per_frame(start)


def core_split() -> float:
    conn, _ = open_dgproto()
    now = 1.0
    start = time.thread_time()
    for _ in range(FRAMES):
        conn.send_audio(CHUNK, now=now)
        conn.data_to_send()
        now += 0.02
    return _per_frame(start)


def raw() -> float:
    frame = BinaryFrameWriter().frame
    transport = _FakeTransport()
    start = time.thread_time()
    for _ in range(FRAMES):
        transport.write(frame(CHUNK))
    return _per_frame(start)


async def _adapter() -> float:
    conn, _ = open_dgproto()
    protocol = _Protocol(conn, started=0.0)
    protocol.transport = _FakeTransport()  # type: ignore[assignment]
    send = _Stream(protocol, conn).send_audio
    start = time.thread_time()
    for _ in range(FRAMES):
        await send(CHUNK)
    return _per_frame(start)


def adapter() -> float:
    return asyncio.run(_adapter())


def main() -> None:
    measures: dict[str, Callable[[], float]] = {
        "raw floor": raw,
        "core": core,
        "core split": core_split,
        "asyncio adapter": adapter,
    }
    results: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(ROUNDS):
        for name, measure in measures.items():
            gc.collect()
            results[name].append(measure())
    for name, values in results.items():
        print(f"{name:16s} median {statistics.median(values):.3f} us, min {min(values):.3f} us")


if __name__ == "__main__":
    main()
