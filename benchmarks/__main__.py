"""``python -m benchmarks`` (``make bench``): run every benchmark, write the results.

    python -m benchmarks                      # everything; writes benchmarks/results/
    python -m benchmarks --quick              # a fast smoke run; writes nothing
    python -m benchmarks --only send,decode   # a subset; writes nothing unless --write
    python -m benchmarks --only e2e --streams 100 --clients asyncio,sdk --profile-dir /tmp/p

Sections: send, decode, inbound, frames (micro-benchmarks, in this process), e2e, knee,
memory and record (separate server and client processes on 127.0.0.1; record also has
in-process rows). Results files are written only by
a full run (every section, not ``--quick``), or when ``--write`` asks for it; profiled
runs never write them (profiling distorts the CPU figures).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import (
    _report,
    bench_decode,
    bench_e2e,
    bench_frames,
    bench_inbound,
    bench_memory,
    bench_record,
    bench_send,
)
from ._common import RESULTS_DIR, cpu_ticks, dump_json, machine_info, steal_percent

SECTIONS = ("send", "decode", "inbound", "frames", "e2e", "knee", "memory", "record")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="dgproto benchmarks (see benchmarks/README.md)"
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run; writes nothing")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--clients", help="e2e clients (default asyncio,trio,sync,sdk)")
    parser.add_argument("--streams", help="e2e N values, comma-separated (default 10,100,500)")
    parser.add_argument("--duration", type=float, help="e2e seconds per run (default 20)")
    parser.add_argument("--server", choices=("auto", "emulator", "lite"), default="auto")
    parser.add_argument("--profile-dir", type=Path, help="cProfile the asyncio and sdk e2e runs")
    parser.add_argument("--write", action="store_true", help="write results even for a subset")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)

    sections = tuple(s for s in (args.only or ",".join(SECTIONS)).split(",") if s)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    full = set(sections) == set(SECTIONS) and not args.quick and args.clients is None
    full = full and args.streams is None and args.duration is None and args.server == "auto"
    write = (full or args.write) and args.profile_dir is None and not args.quick
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks", *given])
    if full and not given:
        command = "make bench (= python -m benchmarks)"

    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command,
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine_info(),
        "sections": {},
    }
    _log(f"dgproto benchmarks: {', '.join(sections)}{' (quick)' if args.quick else ''}")
    for name in sections:
        section_started = time.monotonic()
        ticks = cpu_ticks()
        _log(f"[{name}]")
        if name == "send":
            result = bench_send.run(quick=args.quick)
        elif name == "decode":
            result = bench_decode.run(quick=args.quick)
        elif name == "inbound":
            result = bench_inbound.run(quick=args.quick)
        elif name == "frames":
            result = bench_frames.run(quick=args.quick)
        elif name == "e2e":
            result = bench_e2e.run(
                quick=args.quick,
                clients=tuple(args.clients.split(",")) if args.clients else bench_e2e.CLIENTS,
                streams=tuple(int(n) for n in args.streams.split(",")) if args.streams else None,
                duration=args.duration,
                server=args.server,
                profile_dir=args.profile_dir,
                log=_log,
            )
        elif name == "knee":
            result = bench_e2e.knee(
                steps=bench_e2e.KNEE_QUICK_STEPS if args.quick else bench_e2e.KNEE_STEPS,
                duration=bench_e2e.QUICK_DURATION if args.quick else bench_e2e.KNEE_DURATION,
                log=_log,
            )
        elif name == "memory":
            result = bench_memory.run(quick=args.quick, log=_log)
        else:
            result = bench_record.run(quick=args.quick, log=_log)
        result["section_seconds"] = round(time.monotonic() - section_started, 1)
        result["cpu_steal_percent"] = steal = steal_percent(ticks, cpu_ticks())
        if steal is not None:
            _log(f"  CPU steal during [{name}]: {steal}% (the hypervisor's other guests)")
        results["sections"][name] = result
        for target in result.get("targets", []):
            status = {True: "met", False: "NOT MET", None: "context"}[target.get("met")]
            _log(
                f"  target: {target['name']}: {target['measured']} (want {target['target']}) "
                f"{status}"
            )
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    _log(f"done in {results['wall_seconds']:.0f} s")
    if args.profile_dir is not None:
        _summarize_profiles(args.profile_dir)
    if write:
        for path in _report.write(results, args.out):
            _log(f"wrote {path}")
    else:
        print(dump_json(results))
        _log(
            "results not written (a full run writes them, or --write; never --quick or "
            "--profile-dir runs)"
        )
    return 0


def _summarize_profiles(folder: Path) -> None:
    """Next to each ``.prof``, a ``.txt`` with the top functions by own time."""
    import io
    import pstats

    for path in sorted(folder.glob("*.prof")):
        buffer = io.StringIO()
        stats = pstats.Stats(str(path), stream=buffer)
        stats.strip_dirs().sort_stats("tottime").print_stats(30)
        path.with_suffix(".txt").write_text(buffer.getvalue(), encoding="utf-8")
        _log(f"profile summary: {path.with_suffix('.txt')}")


if __name__ == "__main__":
    sys.exit(main())
