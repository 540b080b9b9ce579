"""Issue 13's building blocks: the dedicated inbound parser and the speedups, side by side.

All timings are **CPU time of this thread** (``time.thread_time``), variants interleaved
in ~3 ms batches, ratios the median of per-round ratios (see ``_common.py``).

1. **One Results frame -> event** (the real 9-word wire capture, every word's fields read),
   against bare ``json.loads`` of the same text:

   * the connection's path: ``ListenConnection.receive_data(frame)`` + ``next_event()``
     (``InboundParser`` since issue 13 was wired in), with the default loads (orjson when
     installed) and with ``Config(json_loads=orjson.loads)``;
   * its parts: ``InboundParser.feed`` + ``decode_message`` (with ``json.loads``, and
     with ``default_loads()``), without the connection's plumbing;
   * breakdown rows: ``decode_message`` alone, the new parser alone, wsproto alone;
   * the official SDK: its parse from text, and websockets' framing + its parse.

2. **Parser alone on a stream**: the 201 real messages of ``bench_inbound`` (one frame per
   read, and 16 KiB reads), ``InboundParser.feed`` against wsproto's
   ``receive_data`` + ``events()`` (framing only, both).

3. **Send path** at 640 B and 3200 B: ``BinaryFrameWriter`` with websockets' C mask and
   with the pure-Python mask, the whole ``send_audio`` + ``data_to_send`` with each,
   wsproto, and websockets' sans-I/O ``send_binary`` + ``data_to_send`` (C mask).

Run alone: ``python -m benchmarks.bench_frames [--quick]``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from wsproto.events import BytesMessage

from dgproto._framing import NATIVE_APPLY_MASK, BinaryFrameWriter
from dgproto._inbound import InboundParser
from dgproto._json import default_loads
from dgproto._messages import decode_message

from ._common import compare_trials, standalone_main
from ._peers import open_dgproto, open_websockets, open_wsproto, server_text_frame
from .bench_decode import _frame_path, _words, load_text, orjson_loads, sdk_parser
from .bench_inbound import READ_SIZE, chunks, stream_frames

JSON = "json.loads (the floor)"
TODAY = "dgproto frame -> event + words (connection, default loads)"
PROJECTED = "parts: InboundParser + decode_message + words (json.loads)"
PROJECTED_FAST = "parts: InboundParser + decode_message + words (default_loads)"
SDK = "deepgram-sdk json.loads + construct_type + words"
SDK_FRAME = "websockets frame + deepgram-sdk parse + words"
PARSER = "InboundParser.feed"
WSPROTO = "wsproto receive_data + events"
WEBSOCKETS_SEND = "websockets send_binary + data_to_send (C mask)"

CPU = time.thread_time


def _parser_path(frame: bytes, loads: Callable[[str], Any]) -> Callable[[], object]:
    feed = InboundParser(1 << 20).feed

    def run() -> object:
        ((_, text),) = feed(frame)
        return _words(decode_message(text, loads))

    return run


def message_variants(text: str) -> dict[str, Callable[[], object]]:
    frame = server_text_frame(text)
    fast = orjson_loads()
    found: dict[str, Callable[[], object]] = {JSON: lambda: json.loads(text)}
    if fast is not None:
        found["orjson.loads"] = lambda: fast(text)
    found[TODAY] = _frame_path(None, frame)
    if fast is not None:
        found["dgproto frame -> event + words (connection, orjson)"] = _frame_path(fast, frame)
    found[PROJECTED] = _parser_path(frame, json.loads)
    if default_loads() is not json.loads:
        found[PROJECTED_FAST] = _parser_path(frame, default_loads())
    found["(breakdown) decode_message + words"] = lambda: _words(decode_message(text))
    feed = InboundParser(1 << 20).feed
    found["(breakdown) InboundParser.feed alone"] = lambda: feed(frame)
    ws, _ = open_wsproto()

    def wsproto_alone() -> object:
        ws.receive_data(frame)
        return list(ws.events())

    found["(breakdown) wsproto framing alone"] = wsproto_alone
    sdk = sdk_parser()
    if sdk is not None:

        def sdk_words(data: str) -> object:
            words = sdk(data).channel.alternatives[0].words
            return [(w.word, w.start, w.end, w.confidence) for w in words]

        found[SDK] = lambda: sdk_words(text)
        pair = open_websockets()
        if pair is not None:
            client = pair[0]

            def websockets_sdk() -> object:
                client.receive_data(frame)
                return [sdk_words(m.data.decode()) for m in client.events_received()]

            found[SDK_FRAME] = websockets_sdk
    return found


def stream_variants(reads: list[bytes]) -> dict[str, Callable[[], object]]:
    parser = InboundParser(1 << 20)
    ws, _ = open_wsproto()

    def ours() -> object:
        return [parser.feed(data) for data in reads]

    def theirs() -> object:
        out = []
        for data in reads:
            ws.receive_data(data)
            out.extend(ws.events())
        return out

    return {PARSER: ours, WSPROTO: theirs}


def send_variants(size: int) -> dict[str, Callable[[], object]]:
    chunk = os.urandom(size)
    found: dict[str, Callable[[], object]] = {}
    for native in (True, False):
        if native and NATIVE_APPLY_MASK is None:
            continue
        label = "C mask" if native else "pure mask"
        conn, _ = open_dgproto()
        conn._frame = BinaryFrameWriter(native=native).frame  # the mask under test
        send_audio, data_to_send = conn.send_audio, conn.data_to_send

        def dgproto_send(send: Any = send_audio, take: Any = data_to_send) -> object:
            send(chunk, now=1.0)
            return take()

        found[f"dgproto send_audio + data_to_send ({label})"] = dgproto_send
        frame = BinaryFrameWriter(native=native).frame
        found[f"(BinaryFrameWriter.frame alone, {label})"] = functools.partial(frame, chunk)
    ws, _ = open_wsproto()
    found["wsproto send(BytesMessage)"] = lambda: ws.send(BytesMessage(data=chunk))
    pair = open_websockets()
    if pair is not None:
        client = pair[0]

        def websockets_send() -> object:
            client.send_binary(chunk)
            return client.data_to_send()

        found[WEBSOCKETS_SEND] = websockets_send
    return found


def run(*, quick: bool = False) -> dict[str, Any]:
    trials = 1 if quick else 3
    seconds = 2.0 if quick else 12.0
    text = load_text()
    timings = compare_trials(
        lambda: message_variants(text), seconds=seconds, trials=trials, timer=CPU
    )
    message_rows = [
        {"variant": name, **timings.row(name), "x_json_loads": round(timings.ratio(name, JSON), 2)}
        for name in timings.names()
    ]
    context: dict[str, float] = {}
    for ours in (TODAY, PROJECTED, PROJECTED_FAST):
        if ours in timings and SDK_FRAME in timings:
            context[f"{SDK_FRAME} / {ours}"] = round(timings.ratio(SDK_FRAME, ours), 2)
        if ours in timings and ours != TODAY:
            context[f"{TODAY} / {ours}"] = round(timings.ratio(TODAY, ours), 2)

    stream_rows = []
    frames = stream_frames()
    for shape, per_read in (("one frame per read", None), ("16 KiB reads", READ_SIZE)):
        reads = chunks(frames, per_read)
        t = compare_trials(
            functools.partial(stream_variants, reads), seconds=seconds / 2, trials=trials, timer=CPU
        )
        stream_rows.append(
            {
                "reads": shape,
                "us_per_message_parser": round(t.best(PARSER) / len(frames) * 1e6, 3),
                "us_per_message_wsproto": round(t.best(WSPROTO) / len(frames) * 1e6, 3),
                "wsproto_time_over_parser": round(t.ratio(WSPROTO, PARSER), 2),
            }
        )

    send_rows = []
    for size in (640, 3200):
        t = compare_trials(
            functools.partial(send_variants, size), seconds=seconds / 2, trials=trials, timer=CPU
        )
        reference = WEBSOCKETS_SEND if WEBSOCKETS_SEND in t else "wsproto send(BytesMessage)"
        for name in t.names():
            send_rows.append(
                {
                    "payload_bytes": size,
                    "variant": name,
                    **t.row(name),
                    "fps_over_reference": round(t.ratio(reference, name), 2),
                    "reference": reference,
                }
            )
    return {
        "timer": "thread CPU time",
        "message": {"rows": message_rows, "ratios": context},
        "stream": stream_rows,
        "send": send_rows,
        "seconds": seconds,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The section's tables, for results.md and benchmarks/README.md."""
    from ._report import _table

    message = result["message"]
    out = ["## Issue 13 building blocks: frame -> event, the parser, the C mask (CPU time)", ""]
    out += _table(
        ["one 9-word Results frame", "us (best)", "us (median)", "x json.loads"],
        [[r["variant"], r["us_best"], r["us_median"], r["x_json_loads"]] for r in message["rows"]],
    )
    out += _table(["ratio (time over time)", "x"], [[k, v] for k, v in message["ratios"].items()])
    out += _table(
        ["stream of 201 messages", "parser us/msg", "wsproto us/msg", "wsproto / parser"],
        [
            [
                r["reads"],
                r["us_per_message_parser"],
                r["us_per_message_wsproto"],
                r["wsproto_time_over_parser"],
            ]
            for r in result["stream"]
        ],
    )
    out += _table(
        ["payload", "send variant", "us (best)", "us (median)", "fps / websockets sans-I/O"],
        [
            [
                r["payload_bytes"],
                r["variant"],
                r["us_best"],
                r["us_median"],
                r["fps_over_reference"],
            ]
            for r in result["send"]
        ],
    )
    return out


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
