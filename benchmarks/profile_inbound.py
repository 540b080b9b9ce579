"""cProfile breakdown of the inbound hot path: one real Results frame -> event + words.

``python -m benchmarks.profile_inbound [--loads json|default] [--count N]`` feeds the
9-word wire capture as a server frame to a ``ListenConnection`` past its handshake
``N`` times (``receive_data`` + ``next_event`` + ``words[-1].end``) under cProfile and
prints each function's share of the profiled time (cProfile inflates small calls, so
read the shares, not the microseconds). Not part of ``make bench``; see
benchmarks/README.md for the before/after figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

from dgproto import Config

from ._peers import open_dgproto, server_text_frame
from .bench_decode import load_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", choices=("json", "default"), default="json")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    text = load_text()
    frame = server_text_frame(text)
    config = Config(json_loads=json.loads) if args.loads == "json" else None
    conn, _ = open_dgproto(config)
    receive_data = conn.receive_data
    next_event = conn.next_event

    def run(count: int) -> None:
        for _ in range(count):
            receive_data(frame, now=1.0)
            event = next_event()
            assert event.alternatives[0].words[-1].end > 0  # type: ignore[union-attr]
            while next_event() is not None:  # a driver drains the queue (the Utterance)
                pass

    run(5_000)
    started = time.thread_time()
    run(args.count)
    per_call = (time.thread_time() - started) / args.count
    started = time.thread_time()
    for _ in range(args.count):
        json.loads(text)
    floor = (time.thread_time() - started) / args.count
    print(
        f"unprofiled: frame -> event + words {per_call * 1e6:.2f} us, json.loads "
        f"{floor * 1e6:.2f} us, ratio {per_call / floor:.2f}"
    )
    profile = cProfile.Profile()
    profile.runcall(run, args.count)
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])  # type: ignore[attr-defined]
    print(f"{'share':>6}  {'calls/frame':>11}  function (tottime)")
    for (path, line, name), (_, calls, tottime, _, _) in rows[: args.top]:
        where = (
            f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{line}" if "/" in path else path
        )
        print(f"{tottime / total:6.1%}  {calls / args.count:11.1f}  {name} ({where})")


if __name__ == "__main__":
    main()
