"""Memory: RSS per idle open stream, and RSS growth over a simulated six-hour stream.

* **Idle streams**: a fresh client process opens (and closes) one warm-up stream, then
  opens K more to the emulator and holds them idle (dgproto sends its KeepAlives; the
  hold is shorter than the emulator's 10 s idle timeout, so the SDK's streams, which
  send none, stay open too). RSS after minus before, over K. Every client is measured.
* **Core only** (in process, ``tracemalloc``): bytes allocated per ``ListenConnection``
  past its handshake, without any socket or adapter.
* **Six hours** (issue 13: "flat over a 6-hour stream"): one dgproto asyncio stream sends
  six hours of 20 ms frames to the emulator (cheap recognizer mode, so it answers with
  one Results per audio second and a final every 5 s, never an end of utterance) as
  fast as the sockets take them, no pacing; RSS is sampled 20 times. Growth is measured from the
  first sample past 10% of the stream (after warm-up) to the end.

Targets: < 64 KiB per idle stream; no growth over the six hours.

Run alone: ``python -m benchmarks.bench_memory [--quick]``.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from ._common import raise_fd_limit, standalone_main
from ._peers import open_dgproto
from ._procs import ServerProcess, run_client
from .bench_e2e import sdk_missing, trio_missing

CLIENTS = ("asyncio", "trio", "sync", "sdk")
IDLE_TARGET_KIB = 64.0
#: Growth allowed over the stream before we call it growth: allocator noise is ~100-200 KiB.
GROWTH_TOLERANCE_KIB = 256.0


def core_bytes_per_connection(count: int) -> float:
    """``tracemalloc`` bytes per open ``ListenConnection`` (its wsproto peer discarded)."""
    open_dgproto()  # warm-up: first-use caches
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    conns = [open_dgproto()[0] for _ in range(count)]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(conns) == count
    return (after - before) / count


def run(*, quick: bool = False, log: Any = print) -> dict[str, Any]:
    idle_streams = 20 if quick else 200
    hold = 1.0 if quick else 2.0
    hour = 300.0 if quick else 6 * 3600.0
    raise_fd_limit(4 * idle_streams + 256)
    skip = {"sdk": sdk_missing(), "trio": trio_missing()}
    idle: list[dict[str, Any]] = []
    with ServerProcess("emulator") as server:
        for client in CLIENTS:
            if skip.get(client):
                idle.append({"client": client, "skipped": skip[client]})
                continue
            result = run_client(
                [
                    "--client",
                    client,
                    "--url",
                    server.url,
                    "--streams",
                    str(idle_streams),
                    "--idle",
                    str(hold),
                ],
                timeout=180.0,
            )
            result["client"] = client
            idle.append(result)
            log(f"  memory idle {client:8s} {result.get('rss_per_idle_stream_kib')} KiB/stream")
        long_run = run_client(
            ["--client", "asyncio", "--url", server.url, "--hour", str(hour)], timeout=600.0
        )
        log(
            f"  memory {hour:.0f} s stream: growth "
            f"{long_run.get('rss_growth_after_warmup_kib')} KiB, "
            f"{long_run.get('speed_x_realtime')}x real time"
        )
    core = core_bytes_per_connection(100 if quick else 1000)
    log(f"  memory core ListenConnection: {core / 1024:.1f} KiB")
    targets: list[dict[str, Any]] = []
    ours = next((r for r in idle if r["client"] == "asyncio"), None)
    if ours and ours.get("rss_per_idle_stream_kib") is not None:
        value = ours["rss_per_idle_stream_kib"]
        targets.append(
            {
                "name": "memory: RSS per idle open stream (dgproto asyncio)",
                "measured": f"{value} KiB",
                "target": f"< {IDLE_TARGET_KIB:.0f} KiB",
                "met": value < IDLE_TARGET_KIB,
            }
        )
    growth = long_run.get("rss_growth_after_warmup_kib")
    if growth is not None:
        targets.append(
            {
                "name": f"memory: RSS growth over a {hour / 3600:g}-hour stream (after warm-up)",
                "measured": f"{growth} KiB",
                "target": f"no growth (<= {GROWTH_TOLERANCE_KIB:.0f} KiB of allocator noise)",
                "met": growth <= GROWTH_TOLERANCE_KIB,
            }
        )
    return {
        "idle": idle,
        "core_kib_per_connection": round(core / 1024, 2),
        "long_stream": long_run,
        "targets": targets,
    }


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
