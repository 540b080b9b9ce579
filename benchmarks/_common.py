"""What every benchmark shares: interleaved timing, percentiles, the machine, the fixtures.

**Timing on a shared, noisy machine.** Every comparison runs side by side in one process:
the variants take turns in short batches (a few milliseconds, shorter than a scheduler
time slice), many rounds over, so background load hits them alike. Each variant's
absolute time is reported as its fastest batch (the least disturbed one, as ``timeit``
advises) with the median batch alongside, as context only. **Ratios are paired**: in
every round the variants ran back to back, so each round gives one ratio, and the
median of those is reported. That holds steady when the load drifts during the run,
where a ratio of two minimums taken minutes apart need not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import timeit
from array import array
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
FIXTURE_DIRS = (
    ROOT / "tests" / "fixtures" / "deepgram",
    ROOT.parent / "shared" / "fixtures" / "deepgram",
)


def fixture_text(name: str) -> str:
    """A real Deepgram payload from the in-repo copy (or ``shared/`` beside the clone)."""
    for folder in FIXTURE_DIRS:
        path = folder / name
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
    raise SystemExit(f"fixture {name} not found in {[str(d) for d in FIXTURE_DIRS]}")


# --------------------------------------------------------------------------- timing


class Timings:
    """Seconds per call of each variant, one sample per round (see ``compare``)."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        self.samples = samples

    def __contains__(self, name: str) -> bool:
        return name in self.samples

    def names(self) -> list[str]:
        return list(self.samples)

    def best(self, name: str) -> float:
        """The fastest round's seconds per call: the least disturbed measurement."""
        return min(self.samples[name])

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, numerator: str, denominator: str) -> float:
        """``numerator``'s time over ``denominator``'s, paired round by round.

        Both ran back to back in every round, under the same background load, so the
        median of the per-round ratios is steadier than a ratio of two minimums when the
        machine's load drifts.
        """
        pairs = zip(self.samples[numerator], self.samples[denominator], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def row(self, name: str) -> dict[str, float]:
        return {
            "us_best": round(self.best(name) * 1e6, 3),
            "us_median": round(self.median(name) * 1e6, 3),
            "rounds": len(self.samples[name]),
        }


_warmed = False


def warm_up(funcs: Mapping[str, Callable[[], object]], seconds: float = 2.0) -> None:
    """Run the variants for a while before timing anything, once per process.

    On the virtual machines this was built on, a process's first second or two of busy
    CPU runs up to 2x slower (the host ramps the vCPU up), which would skew whichever
    variant happened to be timed first.
    """
    global _warmed
    if _warmed:
        return
    _warmed = True
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for func in funcs.values():
            for _ in range(50):
                func()


def compare(
    funcs: Mapping[str, Callable[[], object]],
    *,
    seconds: float,
    batch_seconds: float = 0.003,
    timer: Callable[[], float] = time.perf_counter,
) -> Timings:
    """Time ``funcs`` side by side for about ``seconds`` in total.

    Each round runs one batch of every function (in rotating order); a batch is as many
    calls as take about ``batch_seconds``, shorter than a scheduler time slice.
    ``timer=time.thread_time`` counts this thread's CPU time instead of wall time, so
    time spent descheduled on a busy machine does not count.
    """
    names = list(funcs)
    warm_up(funcs)
    sizes: dict[str, int] = {}
    for name in names:  # calibrate: calls per batch (and warm up caches)
        func = funcs[name]
        count = 1
        while True:
            elapsed = timeit.Timer(func, timer=timer).timeit(number=count)
            if elapsed >= batch_seconds / 2 or count >= 1 << 20:
                break
            count *= 2
        sizes[name] = max(1, round(count * batch_seconds / max(elapsed, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.perf_counter() + seconds
    rounds = 0
    while rounds < 5 or (time.perf_counter() < deadline and rounds < 100_000):
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            number = sizes[name]
            samples[name].append(timeit.Timer(funcs[name], timer=timer).timeit(number) / number)
        rounds += 1
    return Timings(samples)


def compare_trials(
    make: Callable[[], Mapping[str, Callable[[], object]]],
    *,
    seconds: float,
    trials: int,
    timer: Callable[[], float] = time.perf_counter,
) -> Timings:
    """``compare`` in ``trials`` separate trials, each with freshly built variants.

    Fresh objects land at fresh addresses: a variant that happens to get an unlucky
    memory placement (cache or allocator effects that can slow a loop down by half)
    spoils one trial, not the result. Samples of all trials are pooled.
    """
    pooled: dict[str, list[float]] = {}
    for _ in range(max(1, trials)):
        timings = compare(make(), seconds=seconds / max(1, trials), timer=timer)
        for name in timings.names():
            pooled.setdefault(name, []).extend(timings.samples[name])
    return Timings(pooled)


# --------------------------------------------------------------------------- distributions


class Histogram:
    """Fixed-size histogram of durations, so recording costs no memory as it grows.

    Buckets are ``resolution`` seconds wide up to ``limit``; anything above lands in the
    last bucket and is also tracked exactly as ``maximum``.
    """

    def __init__(self, *, resolution: float = 0.0001, limit: float = 5.0) -> None:
        self.resolution = resolution
        self.size = int(limit / resolution) + 1
        self.counts = array("q", bytes(8 * self.size))
        self.count = 0
        self.maximum = 0.0
        self.total = 0.0

    def add(self, value: float) -> None:
        if value < 0.0:
            value = 0.0
        index = int(value / self.resolution)
        self.counts[index if index < self.size else self.size - 1] += 1
        self.count += 1
        self.total += value
        if value > self.maximum:
            self.maximum = value

    def merge(self, other: Histogram) -> None:
        for index, value in enumerate(other.counts):
            if value:
                self.counts[index] += value
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)

    def percentile(self, fraction: float) -> float | None:
        if not self.count:
            return None
        rank = fraction * (self.count - 1)
        seen = 0
        for index, value in enumerate(self.counts):
            seen += value
            if seen > rank:
                if index == self.size - 1:
                    return index * self.resolution  # overflow: "at least the limit"
                return min((index + 0.5) * self.resolution, self.maximum)
        return self.maximum  # pragma: no cover - the loop always reaches the rank

    def summary(self) -> dict[str, float | int | str | None]:
        """Count, p50, p99 and max, in milliseconds; a percentile past the histogram's
        range reads ``">LIMIT"``."""
        limit = (self.size - 1) * self.resolution

        def ms(value: float | None) -> float | str | None:
            if value is None:
                return None
            if value >= limit:
                return f">{limit * 1000:.0f}"
            return round(value * 1000, 3)

        return {
            "count": self.count,
            "p50_ms": ms(self.percentile(0.50)),
            "p99_ms": ms(self.percentile(0.99)),
            "max_ms": round(self.maximum * 1000, 3) if self.count else None,
        }


# --------------------------------------------------------------------------- the process


def rss_bytes() -> int:
    """This process's resident set size now (Linux ``/proc``; else the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident set size of this process image.

    Linux's ``VmHWM``, not ``ru_maxrss``: the latter survives ``execve``, so a child
    started from a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def cpu_seconds() -> float:
    """User + system CPU seconds used by this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, IndexError):
        return None


def raise_fd_limit(needed: int) -> int:
    """Raise the soft open-files limit to at least ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# --------------------------------------------------------------------------- the machine


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def code_version() -> str:
    """The git commit measured (read-only git calls), noting uncommitted changes."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "dgproto", "transports"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + (" + uncommitted changes in dgproto/ or transports/" if dirty else "")


def machine_info() -> dict[str, Any]:
    """Where and with what the numbers were measured."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        import websockets.speedups  # noqa: F401

        websockets_c = True
    except ImportError:
        websockets_c = False
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average_at_start": load,
        "packages": {
            name: _version(name)
            for name in ("dgproto", "wsproto", "websockets", "deepgram-sdk", "orjson", "trio")
        },
        "websockets_c_speedups": websockets_c,
        "code": code_version(),
    }


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far by kind (Linux ``/proc/stat``'s ``cpu`` line), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    return [int(value) for value in fields[1:]]


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of the machine's CPU time the hypervisor gave to other guests in between.

    A virtual machine's "steal" time: on a shared host it can swing from nothing to a
    third within minutes, and every timing taken meanwhile pays for it (latencies and
    the knee most of all). Recorded per section so a result can be read against it.
    """
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(spent[:8])  # user nice system idle iowait irq softirq steal
    return round(100 * spent[7] / total, 1) if total > 0 else None


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def standalone_main(run: Callable[..., Any], doc: str | None) -> None:
    """``python -m benchmarks.bench_x [--quick]``: run one benchmark, JSON on stdout."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(dump_json(run(quick=parser.parse_args().quick)))
