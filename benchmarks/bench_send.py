"""Audio send path: one linear16 frame from the app's chunk to the bytes for the socket.

Compared side by side, on the same payloads (20 ms = 640 B and 100 ms = 3200 B of
16 kHz linear16), each client already past its handshake:

* dgproto: ``conn.send_audio(chunk, now=t)`` + ``conn.data_to_send()``;
* wsproto: ``ws.send(BytesMessage(data=chunk))`` (what dgproto would cost without its
  dedicated frame writer, ``dgproto/_framing.py``);
* websockets (sans-I/O ``ClientProtocol``): ``send_binary(chunk)`` + ``data_to_send()``,
  whose masking runs in C when its ``speedups`` extension is built.

dgproto runs with its speedups (websockets' C ``apply_mask``, when installed: the
default) and without them (``BinaryFrameWriter(native=False)``, the pure-Python mask).

Targets: dgproto >= 2.0x wsproto's frames per second at 640 B, >= 1.0x at 3200 B; with
the speedups, at 640 B, >= websockets' sans-I/O (issue 13).

Run alone: ``python -m benchmarks.bench_send [--quick]``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from wsproto.events import BytesMessage

from dgproto._framing import BinaryFrameWriter

from ._common import compare_trials, standalone_main
from ._peers import open_dgproto, open_websockets, open_wsproto

DGPROTO = "dgproto send_audio + data_to_send"
DGPROTO_PURE = "dgproto send_audio + data_to_send (pure-Python mask)"
WEBSOCKETS = "websockets send_binary + data_to_send"
WSPROTO = "wsproto send(BytesMessage)"
SIZES = {"20 ms (640 B)": 640, "100 ms (3200 B)": 3200}
TARGETS = {640: 2.0, 3200: 1.0}


def variants(size: int) -> dict[str, Callable[[], object]]:
    chunk = os.urandom(size)
    conn, _ = open_dgproto()
    ws, _ = open_wsproto()
    send_audio = conn.send_audio
    data_to_send = conn.data_to_send

    def dgproto_send() -> object:
        send_audio(chunk, now=1.0)
        return data_to_send()

    ws_send = ws.send

    def wsproto_send() -> object:
        return ws_send(BytesMessage(data=chunk))

    writer = BinaryFrameWriter()

    def dgproto_writer_only() -> object:
        return writer.frame(chunk)

    pure, _ = open_dgproto()
    pure._frames = BinaryFrameWriter(native=False)
    pure._frame = pure._frames.frame
    pure_send_audio = pure.send_audio
    pure_data_to_send = pure.data_to_send

    def dgproto_pure_send() -> object:
        pure_send_audio(chunk, now=1.0)
        return pure_data_to_send()

    found: dict[str, Callable[[], object]] = {
        DGPROTO: dgproto_send,
        WSPROTO: wsproto_send,
    }
    if pure._frames._apply_mask is not conn._frames._apply_mask:
        found[DGPROTO_PURE] = dgproto_pure_send
    pair = open_websockets()
    if pair is not None:
        client = pair[0]
        send_binary = client.send_binary
        ws_data = client.data_to_send

        def websockets_send() -> object:
            send_binary(chunk)
            return ws_data()

        found[WEBSOCKETS] = websockets_send
    found["(dgproto BinaryFrameWriter.frame alone)"] = dgproto_writer_only
    return found


def run(*, quick: bool = False) -> dict[str, Any]:
    seconds = 1.5 if quick else 9.0
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    for label, size in SIZES.items():
        timings = compare_trials(
            functools.partial(variants, size), seconds=seconds, trials=1 if quick else 3
        )
        for name in timings.names():
            rows.append(
                {
                    "payload": label,
                    "client": name,
                    **timings.row(name),
                    "frames_per_second": round(1 / timings.best(name)),
                    "x_wsproto_fps": round(timings.ratio(WSPROTO, name), 2),
                }
            )
        ratio = timings.ratio(WSPROTO, DGPROTO)
        targets.append(
            {
                "name": f"send path {label}: dgproto fps / wsproto fps",
                "measured": round(ratio, 2),
                "target": f">= {TARGETS[size]}x",
                "met": ratio >= TARGETS[size],
            }
        )
        if size == 640 and WEBSOCKETS in timings:
            versus = timings.ratio(WEBSOCKETS, DGPROTO)
            targets.append(
                {
                    "name": f"send path {label}: dgproto fps (speedups) / websockets sans-I/O fps",
                    "measured": round(versus, 2),
                    "target": ">= 1x",
                    "met": versus >= 1.0,
                    "c_mask": conn_uses_c_mask(),
                }
            )
    return {"rows": rows, "targets": targets, "seconds_per_size": seconds}


def conn_uses_c_mask() -> bool:
    """Whether dgproto's default writer masks in C (the speedups are installed)."""
    return BinaryFrameWriter()._apply_mask is not None


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
