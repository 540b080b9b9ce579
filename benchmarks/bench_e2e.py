"""End-to-end: N concurrent real-time streams per client, over loopback sockets.

For each N and each client, one fresh client process (``benchmarks.e2e_client``) opens
N streams to a separate server process (``benchmarks.e2e_server``), streams 20 ms
frames at real time with interim results for the run's duration, and reports client CPU
seconds per stream-minute (``getrusage``), p50/p99 latency from the server sending a
Results to the app receiving the event, peak RSS, and whether real time was kept.

Server mode per N (``--server auto``): the emulator with its cheap recognizer
(``StampRecognizer``) up to ``EMULATOR_MAX_STREAMS`` streams, the lite server above that,
where the emulator's per-frame work (~70 us) would need more than one core. Every row
says which mode it used and how busy the server was.

Beside dgproto's adapters and the SDK: the **raw-socket floor** (``raw``: an
``asyncio.Protocol`` that only frames and writes) and a **hand-written websockets
client** (``websockets``). Clients run one after the other per N (interleaved, so drifting
load from other work on the machine hits them alike), and every row records the load
average before it ran (``loadavg_1m``).

**The knee** (``--knee``): for each of ``KNEE_CLIENTS``, N is stepped up through
``KNEE_STEPS`` (lite server, ``KNEE_DURATION`` s a run) until a run no longer keeps real
time; the knee is the largest N that did, reported with its p99 send lateness.

Run alone: ``python -m benchmarks.bench_e2e [--quick] [--clients asyncio,sdk] [--streams 100]``
or ``python -m benchmarks.bench_e2e --knee --clients asyncio,raw``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ._common import dump_json, raise_fd_limit
from ._procs import ServerProcess, run_client

CLIENTS = ("asyncio", "trio", "sync", "sdk", "raw", "websockets")
KNEE_CLIENTS = ("asyncio", "raw")
KNEE_STEPS = (200, 350, 500, 600, 750, 1000)
KNEE_QUICK_STEPS = (20, 50)
KNEE_DURATION = 10.0
FULL_STREAMS = (10, 100, 500)
QUICK_STREAMS = (5, 20)
FULL_DURATION = 20.0
QUICK_DURATION = 3.0
EMULATOR_MAX_STREAMS = 100
#: Clients measured at one N only, to keep the full run short: the harness alone.
BASELINE_STREAMS = {"null": (100, 500), "null-trio": (100,)}
LABELS = {
    "asyncio": "dgproto asyncio",
    "asyncio-record": "dgproto asyncio with record= (a file + audio sidecar per stream)",
    "trio": "dgproto trio",
    "sync": "dgproto sync (threads)",
    "sdk": "deepgram-sdk 7 async",
    "null": "harness alone (no client)",
    "null-trio": "trio harness alone (no client): what trio.sleep_until pacing costs",
    "raw": "raw asyncio socket floor (frames + writes only)",
    "websockets": "hand-written websockets 17 client",
}


def server_mode(streams: int, choice: str) -> str:
    if choice != "auto":
        return choice
    return "emulator" if streams <= EMULATOR_MAX_STREAMS else "lite"


def sdk_missing() -> str | None:
    try:
        import deepgram  # noqa: F401
    except ImportError:
        return "deepgram-sdk is not installed (pip install 'deepgram-sdk>=7,<8')"
    return None


def websockets_missing() -> str | None:
    try:
        import websockets.asyncio.client  # noqa: F401
    except ImportError:
        return "websockets >= 13 is not installed"
    return None


def trio_missing() -> str | None:
    try:
        import trio  # noqa: F401
    except ImportError:
        return "trio is not installed"
    return None


def run(
    *,
    quick: bool = False,
    clients: tuple[str, ...] = CLIENTS,
    streams: tuple[int, ...] | None = None,
    duration: float | None = None,
    server: str = "auto",
    baselines: bool = True,
    profile_dir: Path | None = None,
    log: Any = print,
) -> dict[str, Any]:
    counts = streams or (QUICK_STREAMS if quick else FULL_STREAMS)
    seconds = duration or (QUICK_DURATION if quick else FULL_DURATION)
    raise_fd_limit(4 * max(counts) + 256)
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    skip = {
        "sdk": sdk_missing(),
        "trio": trio_missing(),
        "null-trio": trio_missing(),
        "websockets": websockets_missing(),
    }
    plan: list[tuple[int, str]] = [(n, c) for n in counts for c in clients]
    if baselines and not quick:
        plan += [(n, c) for c, ns in BASELINE_STREAMS.items() for n in ns if n in counts]
    plan.sort(key=lambda item: item[0])
    rows: list[dict[str, Any]] = []
    servers: dict[str, ServerProcess] = {}
    try:
        for n, client in plan:
            mode = server_mode(n, server)
            row: dict[str, Any] = {
                "client": client,
                "label": LABELS[client],
                "streams": n,
                "server_mode": mode,
            }
            reason = skip.get(client)
            if reason is not None:
                rows.append({**row, "skipped": reason})
                log(f"  e2e {client:8s} N={n:<4d} skipped: {reason}")
                continue
            if mode not in servers:
                servers[mode] = ServerProcess(mode).start()
            srv = servers[mode]
            row["loadavg_1m"] = round(os.getloadavg()[0], 2)
            profile = None
            if profile_dir is not None:
                profile = profile_dir / f"e2e-{client}-{n}.prof"
            started = time.monotonic()
            result = run_client(
                [
                    "--client",
                    client,
                    "--url",
                    srv.url,
                    "--streams",
                    str(n),
                    "--duration",
                    str(seconds),
                    "--server-pid",
                    str(srv.pid),
                ],
                timeout=seconds + 200.0,
                profile=profile,
            )
            result.pop("client", None)
            result.pop("streams", None)
            rows.append({**row, **result, "run_seconds": round(time.monotonic() - started, 1)})
            log(f"  e2e {client:8s} N={n:<4d} {_describe(result)}")
            time.sleep(1.0)  # let the last run's sockets close
    finally:
        for srv in servers.values():
            srv.stop()
    return {
        "machine_load": "2 shared cores; loadavg_1m per row is the 1-minute load before it ran",
        "duration": seconds,
        "frame": "20 ms linear16 16 kHz (640 B), one Results per second of audio",
        "server_modes": {
            "emulator": "dgproto emulator, EmulatorConfig(recognizer=StampRecognizer): "
            "no tone decoding, full per-frame emulator work",
            "lite": "benchmarks/e2e_server.py lite server: frame headers parsed, audio "
            "skipped unmasked, Results rendered with the emulator's JSON writer",
        },
        "rows": rows,
        "targets": targets(rows),
    }


def _describe(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    latency = result.get("latency", {})
    return (
        f"cpu/stream-min {result.get('cpu_seconds_per_stream_minute')} s, "
        f"p50/p99 {latency.get('p50_ms')}/{latency.get('p99_ms')} ms, "
        f"peak {result.get('rss_peak_mib')} MiB, realtime {result.get('realtime_sustained')}, "
        f"server cpu {result.get('server_cpu_fraction_of_one_core')}"
    )


def _find(rows: list[dict[str, Any]], client: str, streams: int) -> dict[str, Any] | None:
    for row in rows:
        if row["client"] == client and row["streams"] == streams and "skipped" not in row:
            return row
    return None


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    ours = _find(rows, "asyncio", 100)
    sdk = _find(rows, "sdk", 100)
    null = _find(rows, "null", 100)
    if (
        ours
        and sdk
        and ours.get("cpu_seconds_per_stream_minute")
        and sdk.get("cpu_seconds_per_stream_minute")
    ):
        ratio = sdk["cpu_seconds_per_stream_minute"] / ours["cpu_seconds_per_stream_minute"]
        target: dict[str, Any] = {
            "name": "e2e N=100: SDK client CPU per stream / dgproto asyncio's",
            "measured": round(ratio, 2),
            "target": ">= 5x",
            "met": ratio >= 5.0,
        }
        if null and null.get("cpu_seconds_per_stream_minute") is not None:
            harness = null["cpu_seconds_per_stream_minute"]
            net_ours = ours["cpu_seconds_per_stream_minute"] - harness
            net_sdk = sdk["cpu_seconds_per_stream_minute"] - harness
            if net_ours > 0:
                target["net_of_harness"] = round(net_sdk / net_ours, 2)
        found.append(target)
    trio = _find(rows, "trio", 100)
    if ours and trio and ours.get("cpu_seconds_per_stream_minute"):
        ours_cpu = ours["cpu_seconds_per_stream_minute"]
        trio_cpu = trio.get("cpu_seconds_per_stream_minute") or 0.0
        found_trio: dict[str, Any] = {
            "name": "e2e N=100: dgproto trio CPU per stream / dgproto asyncio's",
            "measured": round(trio_cpu / ours_cpu, 2),
            "target": "<= 1.3x, real time held",
            "met": trio_cpu / ours_cpu <= 1.3 and bool(trio.get("realtime_sustained")),
        }
        # Each runtime's harness (its own sleep per frame) subtracted: the adapters alone.
        null_trio = _find(rows, "null-trio", 100)
        if null and null_trio:
            net_ours = ours_cpu - null["cpu_seconds_per_stream_minute"]
            net_trio = trio_cpu - null_trio["cpu_seconds_per_stream_minute"]
            if net_ours > 0:
                found_trio["net_of_each_harness"] = round(net_trio / net_ours, 2)
        found.append(found_trio)
    floor = _find(rows, "raw", 100)
    if ours and floor and floor.get("cpu_seconds_per_stream_minute"):
        ratio = ours["cpu_seconds_per_stream_minute"] / floor["cpu_seconds_per_stream_minute"]
        found.append(
            {
                "name": "e2e N=100: dgproto asyncio CPU per stream / the raw-socket floor's",
                "measured": round(ratio, 2),
                "target": "<= 1.1x",
                "met": ratio <= 1.1,
            }
        )
    return found


def knee(
    *,
    clients: tuple[str, ...] = KNEE_CLIENTS,
    steps: tuple[int, ...] = KNEE_STEPS,
    duration: float = KNEE_DURATION,
    log: Any = print,
) -> dict[str, Any]:
    """The largest N of real-time streams each client holds (see the module docs)."""
    raise_fd_limit(4 * max(steps) + 256)
    rows: list[dict[str, Any]] = []
    knees: dict[str, dict[str, Any]] = {}
    live = [c for c in clients if (sdk_missing() if c == "sdk" else None) is None]
    srv = ServerProcess("lite").start()
    try:
        for n in steps:
            for client in list(live):  # interleaved: every client at this N, then the next N
                load = round(os.getloadavg()[0], 2)
                result = run_client(
                    [
                        *("--client", client, "--url", srv.url, "--streams", str(n)),
                        *("--duration", str(duration), "--server-pid", str(srv.pid)),
                    ],
                    timeout=duration + 200.0,
                )
                held = bool(result.get("realtime_sustained"))
                p99 = result.get("send_lag", {}).get("p99_ms")
                rows.append(
                    {
                        "client": client,
                        "streams": n,
                        "loadavg_1m": load,
                        "realtime_sustained": held,
                        "send_lag_p99_ms": p99,
                        "cpu_fraction_of_one_core": result.get("cpu_fraction_of_one_core"),
                        "latency_p99_ms": result.get("latency", {}).get("p99_ms"),
                        "error": result.get("error"),
                    }
                )
                log(
                    f"  knee {client:8s} N={n:<5d} realtime {held}, send lag p99 {p99} ms, "
                    f"load {load}"
                )
                if held:
                    knees[client] = {"streams": n, "send_lag_p99_ms": p99}
                else:
                    live.remove(client)
                time.sleep(1.0)
            if not live:
                break
    finally:
        srv.stop()
    found = [
        {
            "name": f"e2e knee: largest N of real-time streams, {LABELS[c]} (lite server)",
            "measured": "none held"
            if c not in knees
            else f"N={knees[c]['streams']} (send lag p99 {knees[c]['send_lag_p99_ms']} ms)",
            "target": ">= 600" if c == "asyncio" else "context",
            "met": (c in knees and knees[c]["streams"] >= 600) if c == "asyncio" else None,
        }
        for c in clients
    ]
    return {"steps": steps, "duration": duration, "rows": rows, "knees": knees, "targets": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--streams", help="comma-separated N values")
    parser.add_argument("--duration", type=float)
    parser.add_argument("--server", choices=("auto", "emulator", "lite"), default="auto")
    parser.add_argument("--profile-dir", type=Path)
    parser.add_argument("--knee", action="store_true", help="find each client's knee instead")
    args = parser.parse_args()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.knee:
        clients = (
            tuple(c for c in args.clients.split(",") if c)
            if "--clients" in sys.argv
            else KNEE_CLIENTS
        )
        print(
            dump_json(
                knee(
                    clients=clients,
                    steps=tuple(int(n) for n in args.streams.split(","))
                    if args.streams
                    else (KNEE_QUICK_STEPS if args.quick else KNEE_STEPS),
                    duration=args.duration or (QUICK_DURATION if args.quick else KNEE_DURATION),
                    log=log,
                )
            )
        )
        return
    result = run(
        quick=args.quick,
        clients=tuple(c for c in args.clients.split(",") if c),
        streams=tuple(int(n) for n in args.streams.split(",")) if args.streams else None,
        duration=args.duration,
        server=args.server,
        profile_dir=args.profile_dir,
        log=log,
    )
    print(dump_json(result))


if __name__ == "__main__":
    main()
