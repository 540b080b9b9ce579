"""Inbound: a realistic stream of server text frames through the client, to events.

The stream repeats one utterance's worth of real Deepgram wire captures (SpeechStarted,
interim Results with words, a final that is not speech_final, a speech_final final,
UtteranceEnd, an empty interim; 84 B to 1.9 KB each), then ends with a Metadata. It is
fed the way sockets deliver it, in two shapes: one frame per read (a live stream:
messages arrive one by one) and 16 KiB reads (a backlog: many frames per read).

Side by side:

* dgproto ``receive_data`` + ``next_event`` until ``None`` (framing *and* decoding to
  typed events, with ``json.loads``; and with ``orjson`` via ``Config.json_loads``);
* wsproto ``receive_data`` + ``events()`` alone (framing only: the floor dgproto's
  framing sits on);
* wsproto + ``json.loads`` of each message (framing and bare parsing, no typed events).

No target in the plan; the figure of merit is dgproto's cost over the wsproto floors.

Run alone: ``python -m benchmarks.bench_inbound [--quick]``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from wsproto.events import TextMessage

from dgproto import Config, Event, Utterance

from ._common import compare_trials, fixture_text, standalone_main
from ._peers import open_dgproto, open_wsproto, server_text_frame

UTTERANCE = (
    "listen_v1_speech_started_docs.json",
    "listen_v1_results_interim_with_words_wire_capture.json",
    "listen_v1_results_interim_with_words_wire_capture.json",
    "listen_v1_results_final_not_speech_final_wire_capture.json",
    "listen_v1_results_interim_with_words_wire_capture.json",
    "listen_v1_results_final_speech_final_wire_capture.json",
    "listen_v1_utterance_end_docs.json",
    "listen_v1_results_interim_empty_wire_capture.json",
)
REPEATS = 25
END = "listen_v1_metadata_end_of_stream_wire_capture.json"
READ_SIZE = 16 * 1024
DGPROTO = "dgproto receive_data + next_event"
FRAMING = "wsproto receive_data + events (framing only)"
FRAMING_JSON = "wsproto + json.loads"


def stream_frames() -> list[bytes]:
    """The server's frames, in order: ``REPEATS`` utterances, then a Metadata."""
    texts = [fixture_text(name) for name in UTTERANCE] * REPEATS + [fixture_text(END)]
    return [server_text_frame(text) for text in texts]


def chunks(frames: list[bytes], per_read: int | None) -> list[bytes]:
    """Socket reads: one frame each (``None``), or the stream cut every ``per_read`` bytes."""
    if per_read is None:
        return frames
    data = b"".join(frames)
    return [data[i : i + per_read] for i in range(0, len(data), per_read)]


def _dgproto(reads: list[bytes], loads: Callable[[str], Any] | None) -> Callable[[], object]:
    # One connection for every pass: the stream has no close frame, so it stays open.
    conn, _ = open_dgproto(Config(json_loads=loads) if loads is not None else None)
    receive_data = conn.receive_data
    next_event = conn.next_event

    def run() -> object:
        count = 0
        for data in reads:
            receive_data(data, now=1.0)
            event: Event | None = next_event()
            while event is not None:
                # one event per server message; the Utterance a speech_final ends is
                # derived work the user pays for, drained here but not counted
                count += type(event) is not Utterance
                event = next_event()
        assert count == len(UTTERANCE) * REPEATS + 1, count
        return count

    return run


def _wsproto(reads: list[bytes], parse: bool) -> Callable[[], object]:
    ws, _ = open_wsproto()

    def run() -> object:
        count = 0
        parts: list[str] = []
        for data in reads:
            ws.receive_data(data)
            for event in ws.events():
                assert isinstance(event, TextMessage)
                # a frame cut by a read arrives in pieces: reassemble, as dgproto does
                if parse:
                    parts.append(event.data)
                    if event.message_finished:
                        json.loads("".join(parts))
                        parts.clear()
                count += event.message_finished
        assert count == len(UTTERANCE) * REPEATS + 1, count
        return count

    return run


def variants(
    reads: list[bytes], fast: Callable[[str], Any] | None
) -> dict[str, Callable[[], object]]:
    funcs: dict[str, Callable[[], object]] = {
        DGPROTO: _dgproto(reads, None),
        FRAMING: _wsproto(reads, parse=False),
        FRAMING_JSON: _wsproto(reads, parse=True),
    }
    if fast is not None:
        funcs["dgproto (orjson) receive_data + next_event"] = _dgproto(reads, fast)
    return funcs


def run(*, quick: bool = False) -> dict[str, Any]:
    frames = stream_frames()
    total_bytes = sum(len(f) for f in frames)
    messages = len(frames)
    seconds = 1.5 if quick else 8.0
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]

        fast: Callable[[str], Any] | None = orjson.loads
    except ImportError:
        fast = None
    rows: list[dict[str, Any]] = []
    for shape, per_read in (("one frame per read", None), ("16 KiB reads", READ_SIZE)):
        reads = chunks(frames, per_read)
        timings = compare_trials(
            functools.partial(variants, reads, fast), seconds=seconds, trials=1 if quick else 3
        )
        for name in timings.names():
            per_message = timings.best(name) / messages
            rows.append(
                {
                    "reads": shape,
                    "variant": name,
                    "us_per_message_best": round(per_message * 1e6, 3),
                    "messages_per_second": round(1 / per_message),
                    "MB_per_second": round(total_bytes / timings.best(name) / 1e6, 2),
                    "x_wsproto_framing": round(timings.ratio(name, FRAMING), 2),
                    "x_wsproto_json": round(timings.ratio(name, FRAMING_JSON), 2),
                }
            )
    return {
        "messages": messages,
        "bytes": total_bytes,
        "mean_message_bytes": round(total_bytes / messages),
        "rows": rows,
        "seconds_per_shape": seconds,
    }


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
