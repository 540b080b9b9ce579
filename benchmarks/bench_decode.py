"""How fast is ``decode_message`` on a real 9-word Results, next to bare ``json.loads``?

Targets (from the project plan): text -> event with every word read must cost at most 2x
``json.loads`` of the same text, and be at least 5x faster than the official SDK's parser
(``json.loads`` + ``construct_type`` into its pydantic models, as its socket client does).

Run from the repository root::

    python -m benchmarks.bench_decode            # or: python benchmarks/bench_decode.py

Each variant runs in many short batches (a few ms, shorter than a scheduler time slice),
interleaved with the others so background load hits them alike; the minimum per-call time
of each is reported (the least disturbed batch).
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the checkout importable
    sys.path.insert(0, str(ROOT))

from dgproto._events import Results  # noqa: E402
from dgproto._messages import decode_message  # noqa: E402

FIXTURE = "listen_v1_results_final_speech_final_wire_capture.json"
CANDIDATES = (
    ROOT / "tests" / "fixtures" / "deepgram" / FIXTURE,
    ROOT.parent / "shared" / "fixtures" / "deepgram" / FIXTURE,
)


def load_fixture() -> str:
    for path in CANDIDATES:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
    raise SystemExit(f"fixture {FIXTURE} not found in {[str(p) for p in CANDIDATES]}")


def sdk_decoder() -> Callable[[str], Any] | None:
    """The official SDK's receive path, or None when deepgram-sdk is not installed."""
    try:
        from deepgram.core.unchecked_base_model import construct_type
        from deepgram.listen.v1.socket_client import V1SocketClientResponse
    except ImportError:
        return None

    def decode(text: str) -> Any:
        return construct_type(type_=V1SocketClientResponse, object_=json.loads(text))  # type: ignore[arg-type]

    return decode


def variants(text: str) -> dict[str, Callable[[], object]]:
    def bare_loads() -> object:
        return json.loads(text)

    def dgproto_event() -> object:
        return decode_message(text)

    def dgproto_words() -> object:
        event = decode_message(text)
        assert isinstance(event, Results)
        return [(w.word, w.start, w.end, w.confidence) for w in event.alternatives[0].words]

    found: dict[str, Callable[[], object]] = {
        "json.loads": bare_loads,
        "dgproto decode": dgproto_event,
        "dgproto decode + words read": dgproto_words,
    }
    sdk = sdk_decoder()
    if sdk is not None:

        def sdk_words() -> object:
            event = sdk(text)
            return [
                (w.word, w.start, w.end, w.confidence) for w in event.channel.alternatives[0].words
            ]

        found["deepgram-sdk decode + words read"] = sdk_words
    return found


def run(rounds: int = 200, batch: int = 100) -> dict[str, float]:
    """Seconds per call of each variant: the minimum over ``rounds`` interleaved batches."""
    text = load_fixture()
    funcs = variants(text)
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, func in funcs.items():
            n = batch if not name.startswith("deepgram") else max(1, batch // 10)
            best[name] = min(best[name], timeit.timeit(func, number=n) / n)
    return best


def main() -> None:
    best = run()
    base = best["json.loads"]
    print(f"fixture: {FIXTURE} ({len(load_fixture())} chars, 9 words)")
    for name, seconds in best.items():
        print(f"  {name:34s} {seconds * 1e6:8.2f} us   {seconds / base:5.2f}x json.loads")
    ours = best["dgproto decode + words read"]
    print(f"decode + words vs json.loads: {ours / base:.2f}x (target <= 2x)")
    sdk = best.get("deepgram-sdk decode + words read")
    if sdk is not None:
        print(f"speed-up over deepgram-sdk: {sdk / ours:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
