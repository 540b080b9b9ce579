"""Write a run's results: JSON (everything), Markdown (the tables) and the CPU plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import dump_json

PLOT = "cpu_per_stream.png"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _targets(results: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for section in results["sections"].values():
        for target in section.get("targets", []):
            met = target.get("met")
            extra = ""
            if "net_of_harness" in target:
                extra = f" (net of the harness: {target['net_of_harness']}x)"
            rows.append(
                [
                    target["name"],
                    f"{target['measured']}{extra}",
                    target["target"],
                    "context" if met is None else ("met" if met else "**not met**"),
                ]
            )
    return rows


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    sections = results["sections"]
    out = [
        "# dgproto benchmark results",
        "",
        f"- Command: `{results['command']}`",
        f"- Started: {results['started']}; wall time {results['wall_seconds']:.0f} s"
        + (" (quick run: not for publishing)" if results["quick"] else ""),
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['platform']}; "
        f"load average at start {machine['load_average_at_start']}",
        f"- Python: {machine['python']}; packages: "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v),
        f"- Code measured: {machine.get('code')}; "
        f"websockets C speedups: {machine['websockets_c_speedups']}",
        "",
        "Ratios are measured side by side in one run (see benchmarks/README.md for how); "
        "absolute times are context only: this machine is shared and noisy.",
        "",
        "CPU steal per section (the share of the machine's CPU time the hypervisor gave "
        "to other guests while it ran; latencies and the knee suffer most from it): "
        + ", ".join(
            f"{name} {_cell(section.get('cpu_steal_percent'))}%"
            for name, section in sections.items()
        ),
        "",
        "## Targets",
        "",
        *_table(["target", "measured", "wanted", "status"], _targets(results)),
    ]
    if "send" in sections:
        out += ["## 1. Audio send path (frames/s relative to wsproto)", ""]
        out += _table(
            ["payload", "client", "us/frame (best)", "us/frame (median)", "x wsproto fps"],
            [
                [r["payload"], r["client"], r["us_best"], r["us_median"], r["x_wsproto_fps"]]
                for r in sections["send"]["rows"]
            ],
        )
    if "decode" in sections:
        d = sections["decode"]
        out += [f"## 2. Results decode ({d['fixture']}, {d['bytes']} B, 9 words)", ""]
        out += _table(
            ["variant", "us (best)", "us (median)", "x json.loads"],
            [[r["variant"], r["us_best"], r["us_median"], r["x_json_loads"]] for r in d["rows"]],
        )
    if "inbound" in sections:
        d = sections["inbound"]
        out += [
            f"## 3. Inbound frames ({d['messages']} messages, mean {d['mean_message_bytes']} B)",
            "",
        ]
        out += _table(
            ["reads", "variant", "us/message", "messages/s", "x wsproto framing", "x wsproto+json"],
            [
                [
                    r["reads"],
                    r["variant"],
                    r["us_per_message_best"],
                    r["messages_per_second"],
                    r["x_wsproto_framing"],
                    r["x_wsproto_json"],
                ]
                for r in d["rows"]
            ],
        )
    if "frames" in sections:
        from .bench_frames import markdown as frames_markdown

        out += frames_markdown(sections["frames"])
    if "e2e" in sections:
        d = sections["e2e"]
        out += [
            f"## 4. End to end: N real-time streams for {d['duration']:g} s ({d['frame']})",
            "",
        ]
        rows = []
        for r in d["rows"]:
            if "skipped" in r or "error" in r:
                rows.append(
                    [r["label"], r["streams"], r["server_mode"]]
                    + ["-"] * 7
                    + [f"skipped: {r['skipped']}" if "skipped" in r else f"error: {r['error']}"]
                )
                continue
            latency = r.get("latency", {})
            lag = r.get("send_lag", {})
            rows.append(
                [
                    r["label"],
                    r["streams"],
                    r["server_mode"],
                    r.get("cpu_seconds_per_stream_minute"),
                    f"{r.get('cpu_fraction_of_one_core')}"
                    + (" (saturated)" if r.get("saturated") else ""),
                    f"{_cell(latency.get('p50_ms'))} / {_cell(latency.get('p99_ms'))}",
                    f"{_cell(lag.get('p50_ms'))} / {_cell(lag.get('p99_ms'))}",
                    r.get("realtime_sustained"),
                    r.get("rss_peak_mib"),
                    r.get("server_cpu_fraction_of_one_core"),
                    "; ".join(r.get("errors", [])[:2]),
                ]
            )
        out += _table(
            [
                "client",
                "N",
                "server",
                "CPU s per stream-minute",
                "client CPU (cores)",
                "latency p50/p99 ms",
                "send lag p50/p99 ms",
                "kept real time",
                "peak RSS MiB",
                "server CPU (cores)",
                "notes",
            ],
            rows,
        )
        out += [f"![CPU per stream vs N]({PLOT})", ""]
        out += [f"Machine load: {d.get('machine_load', '')}", ""]
    if "knee" in sections:
        d = sections["knee"]
        out += [
            f"## 4b. The knee: largest N of real-time streams ({d['duration']:g} s runs, "
            "lite server, N stepped up, clients interleaved)",
            "",
        ]
        out += _table(
            ["client", "N", "kept real time", "send lag p99 ms", "client CPU (cores)", "load 1m"],
            [
                [
                    r["client"],
                    r["streams"],
                    r["realtime_sustained"],
                    r.get("send_lag_p99_ms"),
                    r.get("cpu_fraction_of_one_core"),
                    r.get("loadavg_1m"),
                ]
                for r in d["rows"]
            ],
        )
    if "memory" in sections:
        d = sections["memory"]
        out += ["## 5. Memory", ""]
        out += _table(
            ["client", "idle streams", "RSS per idle stream KiB", "notes"],
            [
                [
                    r["client"],
                    r.get("idle_streams"),
                    r.get("rss_per_idle_stream_kib"),
                    r.get("skipped") or r.get("error") or "",
                ]
                for r in d["idle"]
            ],
        )
        long_run = d["long_stream"]
        out += [
            f"- Core only: {d['core_kib_per_connection']} KiB per open ``ListenConnection`` "
            "(tracemalloc).",
            f"- Long stream: {long_run.get('audio_seconds')} s of audio in "
            f"{long_run.get('wall_seconds')} s ({long_run.get('speed_x_realtime')}x real time), "
            f"{long_run.get('results_received')} Results; RSS growth after warm-up "
            f"{long_run.get('rss_growth_after_warmup_kib')} KiB; samples (audio s, MiB): "
            f"{long_run.get('rss_mib_samples')}",
            "",
        ]
    if "record" in sections:
        out += _record_markdown(sections["record"])
    return "\n".join(out)


def _record_markdown(d: dict[str, Any]) -> list[str]:
    """Issue 15's recording cost: the live whole path, then the flat-out rows."""
    out = ["## 6. Recording (`record=`): what it adds per frame", ""]
    out += _table(
        [
            "live whole path",
            "CPU s per stream-minute, plain",
            "with record=",
            "record / plain per round",
            "median",
            "kept real time",
            "CPU steal % per run",
            "notes",
        ],
        [
            [
                r["name"],
                " ".join(_cell(v) for v in r["cpu_s_per_stream_minute"]["plain"]),
                " ".join(_cell(v) for v in r["cpu_s_per_stream_minute"]["record"]),
                " ".join(_cell(v) for v in r["round_ratios"]),
                r["ratio"],
                r["realtime_sustained"],
                " ".join(_cell(v) for v in r.get("cpu_steal_percent", [])),
                "; ".join(r["errors"]),
            ]
            for r in d["live"]
        ],
    )
    out += _table(
        ["flat out, in this process (thread CPU)", "ratio (median of paired rounds)"],
        [[r["name"], r["ratio"]] for r in d["ratios"]],
    )
    return out


def plot(results: dict[str, Any], path: Path) -> str | None:
    """CPU seconds per stream-minute vs N, one line per client. None, or why not."""
    e2e = results["sections"].get("e2e")
    if e2e is None:
        return "no end-to-end section in this run"
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "matplotlib is not installed (the bench extra)"
    series: dict[str, list[tuple[int, float, bool]]] = {}
    for row in e2e["rows"]:
        value = row.get("cpu_seconds_per_stream_minute")
        if value is None:
            continue
        series.setdefault(row["label"], []).append(
            (row["streams"], value, bool(row.get("saturated")))
        )
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for label, points in series.items():
        points.sort()
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        style = ":" if label.startswith("harness") else "-"
        (line,) = axes.plot(xs, ys, style, marker="o", label=label)
        for x, y, saturated in points:
            if saturated:
                axes.plot(
                    [x], [y], marker="o", markersize=12, fillstyle="none", color=line.get_color()
                )
    axes.set_xscale("log")
    axes.set_xlabel("concurrent real-time streams (N)")
    axes.set_ylabel("client CPU seconds per stream-minute")
    axes.set_ylim(bottom=0)
    axes.set_title("Client CPU per stream (lower is better; ring = one core saturated)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.text(
        0.01, 0.01, f"{results['machine']['cpu']}, {results['machine']['python']}", fontsize=6
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return None


def write(results: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = folder / "results.json"
    json_path.write_text(dump_json(results) + "\n", encoding="utf-8")
    written.append(json_path)
    problem = plot(results, folder / PLOT)
    if problem is None:
        written.append(folder / PLOT)
    else:
        results["plot"] = f"not drawn: {problem}"
    md_path = folder / "results.md"
    md_path.write_text(markdown(results) + "\n", encoding="utf-8")
    written.append(md_path)
    return written
