"""Recording overhead (issue 15): the send and inbound paths with and without a WireTap.

* send: ``send_audio(640 B) + data_to_send()``, then (recording) ``tap.sent(data)`` with
  the line written to a real file;
* send + socket: the same, then the bytes written to a loopback socketpair and read back
  (the system calls every adapter makes per frame), so the ratio is per frame as an
  adapter pays it;
* inbound: one socket read of a real ``Results`` frame through ``receive_data`` +
  ``next_event``, then (recording) ``tap.received(data)``.

Target (issue 15): recording adds < 10% CPU per frame. Ratios are paired round by round
(see ``_common``). Run alone: ``python -m benchmarks.bench_record [--quick]``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from dgproto._wiretap import WireTap

from ._common import compare_trials, fixture_text, standalone_main
from ._peers import open_dgproto, server_text_frame

TARGET = 1.10
RESULTS = "listen_v1_results_interim_with_words_wire_capture.json"


def _tap(file: Any) -> WireTap:
    tap = WireTap(file.write)
    tap.sent(b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 0.0)
    return tap


def variants(
    file: Any, pair: tuple[socket.socket, socket.socket]
) -> dict[str, Callable[[], object]]:
    chunk = os.urandom(640)
    frame = server_text_frame(fixture_text(RESULTS))
    plain, _ = open_dgproto()
    taped, _ = open_dgproto()
    tap = _tap(file)

    def send() -> object:
        plain.send_audio(chunk, now=1.0)
        return plain.data_to_send()

    def send_recorded() -> object:
        taped.send_audio(chunk, now=1.0)
        data = taped.data_to_send()
        tap.sent(data, 1.0)
        return data

    writer, reader = pair
    write, read = writer.send, reader.recv

    def send_socket() -> object:
        plain.send_audio(chunk, now=1.0)
        write(plain.data_to_send())
        return read(65536)

    def send_socket_recorded() -> object:
        taped.send_audio(chunk, now=1.0)
        data = taped.data_to_send()
        tap.sent(data, 1.0)
        write(data)
        return read(65536)

    def inbound() -> object:
        plain.receive_data(frame, now=1.0)
        return plain.next_event()

    def inbound_recorded() -> object:
        tap.received(frame, 1.0)
        taped.receive_data(frame, now=1.0)
        return taped.next_event()

    return {
        "send 640 B": send,
        "send 640 B + recording": send_recorded,
        "send 640 B + socket": send_socket,
        "send 640 B + socket + recording": send_socket_recorded,
        "inbound Results": inbound,
        "inbound Results + recording": inbound_recorded,
    }


def run(*, quick: bool = False) -> dict[str, Any]:
    seconds = 1.5 if quick else 6.0
    pair = socket.socketpair()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as file, pair[0], pair[1]:
        timings = compare_trials(
            lambda: variants(file, pair), seconds=seconds, trials=1 if quick else 3
        )
    rows = [{"variant": name, **timings.row(name)} for name in timings.names()]
    targets = []
    for path in ("send 640 B", "send 640 B + socket", "inbound Results"):
        ratio = timings.ratio(f"{path} + recording", path)
        targets.append(
            {
                "name": f"{path}: CPU with recording / without",
                "measured": round(ratio, 2),
                "target": f"<= {TARGET}x",
                "met": ratio <= TARGET,
            }
        )
    return {"rows": rows, "targets": targets}


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
