"""Per-frame CPU of the audio send path, in-process (issue 13 goal 4).

Three measures, interleaved, on 640 B chunks with a fake transport whose ``write`` does
nothing, ``time.thread_time`` per frame: the core (``audio_data_to_send`` when the core
has it, else ``send_audio`` + ``data_to_send``, and the split calls alone), the asyncio
adapter's ``_Stream.send_audio`` on a ``_Protocol``, and the raw floor
(``BinaryFrameWriter.frame`` + ``write``, what ``e2e_client``'s raw client does).
Uses whichever ``dgproto`` and ``transports`` the working directory holds, so a copy of
an older commit can be measured with the same script.

Run alone: ``python benchmarks/micro_sendpath.py`` from the repository root.
``--streams N`` (say 1000) sends each frame on the next of N streams in turn, for the
adapter and the raw floor: each frame then finds its stream's objects out of the CPU
caches, as in a process serving many streams (the end-to-end benchmark), where the
adapter's extra cost per frame is several times the single-stream figure.
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


STREAMS = 1  # --streams


class _RawStream:
    """The raw floor's per-stream state: a frame writer and a transport."""

    def __init__(self) -> None:
        self.frame = BinaryFrameWriter().frame
        self.transport = _FakeTransport()


def raw() -> float:
    streams = [_RawStream() for _ in range(STREAMS)]
    count = len(streams)
    start = time.thread_time()
    for k in range(FRAMES):
        stream = streams[k % count]
        stream.transport.write(stream.frame(CHUNK))
    return _per_frame(start)


async def _adapter() -> float:
    sends = []
    for _ in range(STREAMS):
        conn, _ = open_dgproto()
        protocol = _Protocol(conn, started=0.0)
        protocol.transport = _FakeTransport()  # type: ignore[assignment]
        sends.append(_Stream(protocol, conn).send_audio)
    count = len(sends)
    start = time.thread_time()
    for k in range(FRAMES):
        await sends[k % count](CHUNK)
    return _per_frame(start)


def adapter() -> float:
    return asyncio.run(_adapter())


def main() -> None:
    global STREAMS
    if "--streams" in sys.argv:
        STREAMS = int(sys.argv[sys.argv.index("--streams") + 1])
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
    print(f"{STREAMS} stream(s) in turn")
    for name, values in results.items():
        print(f"{name:16s} median {statistics.median(values):.3f} us, min {min(values):.3f} us")
    gaps = [a - r for a, r in zip(results["asyncio adapter"], results["raw floor"], strict=True)]
    print(f"adapter - raw    median {statistics.median(gaps):.3f} us (paired per round)")


if __name__ == "__main__":
    main()
