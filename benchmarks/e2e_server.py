"""The server process of the end-to-end benchmarks: ``python -m benchmarks.e2e_server``.

It prints ``ws://127.0.0.1:PORT/v1/listen`` on its first line, then serves until SIGTERM,
SIGINT, or its stdin closes (so it never outlives the benchmark that started it).

Two modes, both sending the same Results cadence: one ``Results`` per second of audio
received (interim, every fifth one final, as the emulator cuts a 5 s window of silence),
each carrying the words so far; the newest word's text is the **server's
``time.monotonic()`` when it made the message**. CLOCK_MONOTONIC is one clock for every
process of a Linux machine, so the client's ``time.monotonic()`` on receiving the event
minus that word is the server-send -> app-receive latency.

* ``--mode emulator``: the real emulator (``dgproto.transports.server``) with
  ``EmulatorConfig(recognizer=StampRecognizer)``: no tone decoding, but everything else
  of the emulator still runs per audio frame (wsproto parsing and unmasking, PCM decode,
  SHA-256, energy VAD every 10 ms, segmentation). About 70 us of server CPU per 20 ms
  frame: one core carries ~250 real-time streams.
* ``--mode lite``: a minimal asyncio WebSocket server written for load: it parses frame
  headers and skips audio payloads without unmasking them, answers the handshake,
  pings, Finalize, CloseStream (Metadata + close 1000) and close frames, and renders
  Results with the emulator's own JSON writer. A few us per frame, so 500 streams fit
  beside the client on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from array import array
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dgproto.emulator import EmulatorConfig, RecognizedWord
from dgproto.emulator import _wire as wire

#: Audio seconds between Results, and how many Results make one final window.
RESULTS_EVERY = 1.0
FINAL_EVERY = 5
_MODEL = {"name": "bench-stamp", "version": "1", "arch": "dgproto-bench"}
_MODEL_UUID = "00000000-0000-4000-8000-0000000be7c5"


def stamp_word(position: float) -> RecognizedWord:
    """A word ending at ``position`` (audio seconds) whose text is this process's clock."""
    text = f"{time.monotonic():.6f}"
    return RecognizedWord(
        word=text, punctuated_word=text, start=position - 0.5, end=position, confidence=0.99
    )


class StampRecognizer:
    """The emulator's cheap recognizer mode: no decoding, one stamp word per second.

    At each whole second of audio fed it returns one word (see ``stamp_word``); the
    emulator's segmenter puts it in the interim (or final) Results it emits at the same
    10 ms VAD frame, as that window's newest word.
    """

    def __init__(self, *, channel: int, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._fed = 0
        self._next = round(RESULTS_EVERY * sample_rate)

    def feed(self, samples: array[int]) -> list[RecognizedWord]:
        self._fed += len(samples)
        if self._fed < self._next:
            return []
        self._next += round(RESULTS_EVERY * self.sample_rate)
        return [stamp_word(self._fed / self.sample_rate)]

    def flush(self) -> list[RecognizedWord]:
        return []


def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        recognizer=StampRecognizer,
        interim_interval=RESULTS_EVERY,
        max_segment=RESULTS_EVERY * FINAL_EVERY,
        model_info=_MODEL,
    )


# --------------------------------------------------------------------------- lite mode

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _server_frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return header + payload


def _unmask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


class LiteProtocol(asyncio.Protocol):
    """One client of the lite server (see the module docs)."""

    def __init__(self, server: LiteServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.closing = False
        self.request_id = str(uuid.uuid4())
        self.bytes_per_second = 32000
        self.audio = 0
        self.next_results = 0
        self.results_sent = 0
        self.words: list[RecognizedWord] = []
        self.final_end = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.live.discard(self)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    self._abort()
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._handshake(head)
            if not self.open:
                return
        self._frames()

    # -- handshake

    def _handshake(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        if len(parts) < 2 or parts[0] != "GET" or key is None:
            self._write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self._close()
            return
        query = parse_qs(urlsplit(parts[1]).query)
        rate = int(query.get("sample_rate", ["16000"])[0])
        channels = int(query.get("channels", ["1"])[0])
        self.bytes_per_second = 2 * rate * channels  # linear16
        self.next_results = round(RESULTS_EVERY * self.bytes_per_second)
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        self._write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                f"connection: Upgrade\r\nsec-websocket-accept: {accept}\r\n"
                f"dg-request-id: {self.request_id}\r\n\r\n"
            ).encode()
        )
        self.open = True

    # -- frames

    def _frames(self) -> None:
        buffer = self.buffer
        size = len(buffer)
        pos = 0
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length = second & 0x7F
            header = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
            masked = second & 0x80
            if masked:
                header += 4
            end = pos + header + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 0x2 or opcode == 0x0:
                self._audio(length)
            else:
                payload = bytes(buffer[pos + header : end])
                if masked:
                    payload = _unmask(payload, bytes(buffer[pos + header - 4 : pos + header]))
                self._control(opcode, payload)
                if self.transport is None or self.transport.is_closing():
                    return
            pos = end
        del buffer[:pos]

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x1:
            try:
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "CloseStream":
                self._close_stream()
            elif kind == "Finalize":
                self._results(final=True, from_finalize=True)
        elif opcode == 0x8:  # the client's close (or its echo of ours)
            if not self.closing:
                self._write(_server_frame(0x8, payload[:2]))
            self._close()
        elif opcode == 0x9:
            self._write(_server_frame(0xA, payload))

    def _audio(self, size: int) -> None:
        if self.closing:
            return
        self.audio += size
        while self.audio >= self.next_results:
            self.next_results += round(RESULTS_EVERY * self.bytes_per_second)
            self.words.append(stamp_word(self.audio / self.bytes_per_second))
            self.results_sent += 1
            self._results(final=self.results_sent % FINAL_EVERY == 0, from_finalize=False)

    def _results(self, *, final: bool, from_finalize: bool) -> None:
        end = self.audio / self.bytes_per_second
        if from_finalize and end <= self.final_end and not self.words:
            return
        message = wire.results(
            channel=0,
            total=1,
            start=self.final_end,
            end=end,
            is_final=final,
            speech_final=False,
            from_finalize=from_finalize,
            words=self.words,
            punctuate=False,
            request_id=self.request_id,
            model=_MODEL,
            model_uuid=_MODEL_UUID,
            extra=None,
        )
        self._write(_server_frame(0x1, wire.dumps(message).encode()))
        if final:
            self.words = []
            self.final_end = end

    def _close_stream(self) -> None:
        self._results(final=True, from_finalize=False)
        metadata = wire.metadata(
            request_id=self.request_id,
            sha256="0" * 64,
            created="2026-01-01T00:00:00.000Z",
            duration=self.audio / self.bytes_per_second,
            channels=1,
            model=_MODEL,
            model_uuid=_MODEL_UUID,
            extra=None,
        )
        self._write(_server_frame(0x1, wire.dumps(metadata).encode()))
        self._write(_server_frame(0x8, (1000).to_bytes(2, "big")))
        self.closing = True
        # the client echoes the close frame; if it does not, hang up anyway
        asyncio.get_running_loop().call_later(5.0, self._close)

    # -- transport

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class LiteServer:
    def __init__(self) -> None:
        self.live: set[LiteProtocol] = set()

    def protocol(self) -> LiteProtocol:
        return LiteProtocol(self)


async def _serve_lite(host: str, port: int, ready: Any, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    lite = LiteServer()
    server = await loop.create_server(lite.protocol, host, port, backlog=2048)
    try:
        sock = server.sockets[0]
        bound_host, bound_port = sock.getsockname()[:2]
        ready(f"ws://{bound_host}:{bound_port}/v1/listen")
        await stop.wait()
    finally:
        server.close()
        for protocol in list(lite.live):
            protocol._abort()
        await server.wait_closed()


# --------------------------------------------------------------------------- main


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when stdin reaches EOF: the benchmark that started us is gone."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    # stdin that is not a pipe (a file, /dev/null, a terminal) cannot be watched: then
    # only SIGTERM/SIGINT stop the server.
    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(fd, readable)


async def _main(mode: str, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _watch_stdin(loop, stop)

    def ready(url: str) -> None:
        print(url, flush=True)

    if mode == "lite":
        await _serve_lite(host, port, ready, stop)
        return
    from dgproto.transports.server import serve

    async with serve(host, port, config=emulator_config(), max_connections=4096) as server:
        ready(server.url)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the end-to-end benchmarks' server")
    parser.add_argument("--mode", choices=("emulator", "lite"), default="emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fd-limit", type=int, default=8192)
    args = parser.parse_args(argv)
    from ._common import raise_fd_limit

    raise_fd_limit(args.fd_limit)
    asyncio.run(_main(args.mode, args.host, args.port))


if __name__ == "__main__":
    main()
