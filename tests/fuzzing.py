"""Fuzzers for the client core and the emulator core, with the invariants they check.

Each fuzzer is a *generator* (hostile peer input, built from a ``Source`` of choices) and
a *runner* that feeds it to a fresh core on a virtual clock and checks, after every call:

* no exception escapes (peer input is never the caller's fault; none is documented);
* the state only moves forward;
* the end is reported exactly once and last (the client's ``Closed``; the emulator's
  ``should_close_transport`` and its one close frame), and no bytes come out after it;
* CPU per input stays within ``CPU_BASE + CPU_PER_BYTE * len(input)``;
* the API key never shows in an event, a repr or an error.

The same generators serve two drivers. ``tests/test_fuzz.py`` draws the choices from
hypothesis (so failures shrink) for a few seconds inside ``make test``; ``make fuzz``
(``python -m tests.fuzzing``) draws them from seeded ``random.Random`` instances, which
is fast enough for thousands of inputs per second, for ``FUZZ_SECONDS`` per core, and
prints the seed of every finding so it can be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import hypothesis.strategies as st

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._events import Closed
from dgproto._options import Auth, LiveOptions
from dgproto._state import State
from dgproto.emulator._config import EmulatorConfig
from dgproto.emulator._connection import EmulatorConnection, EmulatorState
from dgproto.emulator._recognizer import ScriptedRecognizer

from .helpers import FIXTURES, close_payload, raw_frame, split_at
from .inbound_diff import compare, run_both

#: CPU seconds any one input may cost, plus this much per byte of it. Generous (the
#: suite runs under coverage on shared cores); a quadratic path blows through it.
CPU_BASE = 1.0
CPU_PER_BYTE = 50e-6

SECRET = "fuzz-secret-key-0123456789"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Finding(AssertionError):
    """An invariant broke."""


# --------------------------------------------------------------------------- choices


class Source:
    """Where a generator's choices come from (hypothesis or a seeded ``Random``)."""

    def integer(self, low: int, high: int) -> int:
        raise NotImplementedError

    def binary(self, max_size: int) -> bytes:
        raise NotImplementedError

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def chance(self, one_in: int) -> bool:
        return self.integer(1, one_in) == 1


class RandomSource(Source):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def binary(self, max_size: int) -> bytes:
        return self._random.randbytes(self._random.randint(0, max_size))


class HypothesisSource(Source):
    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(low, high))

    def binary(self, max_size: int) -> bytes:
        return self._data.draw(st.binary(max_size=max_size))


# --------------------------------------------------------------------------- payloads

_LISTEN_FIXTURES = (
    *(path.read_text() for path in sorted(FIXTURES.glob("listen_v1_*.json"))),
    (FIXTURES / "http_error_401_invalid_auth_docs.json").read_text(),
)

_DEEP = "__fuzz_deep__"
_BIG_NUMBER = "__fuzz_big_number__"


def hostile_value(src: Source) -> Any:
    """A JSON value meant to break a decoder: wrong types, NaN, huge, deep, odd text."""
    return src.choice(
        [
            None,
            True,
            0,
            -1,
            2**64 + 1,
            float("nan"),
            float("inf"),
            1e308,
            "",
            "x" * src.choice([100, 100, 100, 5000, 70000]),
            "\ud800",  # a lone surrogate: json.dumps writes the escape "\\ud800"
            "caf\u00e9 \u2603 \U0001f600",
            [1, "a", None],
            {"type": 3},
            {"": {"": []}},
            _DEEP,
            _BIG_NUMBER,
        ]
    )


def _slots(value: Any, found: list[tuple[Any, Any]], depth: int = 0) -> None:
    """Every ``(container, key)`` of a decoded JSON value, to overwrite one."""
    if depth > 6 or len(found) > 200:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        found.append((value, key))
        if isinstance(item, (dict, list)):
            _slots(item, found, depth + 1)


def render_json(value: Any, src: Source) -> bytes:
    text = json.dumps(value)
    text = text.replace(f'"{_DEEP}"', _deep(src))
    text = text.replace(f'"{_BIG_NUMBER}"', "9" * 5000)
    return text.encode()


def _deep(src: Source) -> str:
    depth = src.choice([50, 50, 50, 2000, 30000])
    if src.chance(2):
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


def mutated_json(src: Source, bases: Sequence[str]) -> bytes:
    """A real (or given) payload with a few values replaced, then maybe corrupted."""
    value = json.loads(src.choice(bases))
    for _ in range(src.integer(0, 3)):
        slots: list[tuple[Any, Any]] = []
        if isinstance(value, (dict, list)):
            _slots(value, slots)
        if not slots:
            value = hostile_value(src)
            break
        container, key = src.choice(slots)
        container[key] = hostile_value(src)
    data = render_json(value, src)
    mode = src.integer(0, 9)
    if mode == 7 and data:  # truncated
        data = data[: src.integer(0, len(data) - 1)]
    elif mode == 8:  # a byte that may not be UTF-8
        at = src.integer(0, len(data))
        data = _insert_byte(data, at, src.integer(0x80, 0xFF))
    elif mode == 9:
        data = src.binary(64)
    return data


def _insert_byte(data: bytes, at: int, byte: int) -> bytes:
    return data[:at] + bytes([byte]) + data[at:]


def _cuts(src: Source) -> list[int]:
    return [src.integer(0, 1 << 16) for _ in range(src.integer(0, 6))]


def _split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at offsets scaled into its length: the same cuts fit any input."""
    size = max(len(data), 1)
    return split_at(data, [c * size >> 16 for c in cuts])


# --------------------------------------------------------------------------- frames


def _frame(src: Source, text_bases: Sequence[str], mask: bytes | None) -> bytes:
    """One hostile frame, or a short run of frames (fragments, floods)."""

    def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
        return raw_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask)

    kind = src.integer(0, 27)
    if kind <= 3 or kind >= 14:
        return frame(0x1, mutated_json(src, text_bases))
    if kind == 4:  # fragmented text, maybe with a control frame in between
        data = mutated_json(src, text_bases)
        cut = src.integer(0, len(data))
        middle = frame(0x9, b"p") if src.chance(2) else b""
        last_op = 0x1 if src.chance(8) else 0x0  # sometimes a wrong opcode
        return frame(0x1, data[:cut], fin=False) + middle + frame(last_op, data[cut:])
    if kind == 5:  # a flood of empty continuation frames
        count = src.choice([10, 100, 1100])
        end = frame(0x0, b"") if src.chance(2) else b""
        return (
            frame(src.choice([0x1, 0x2]), b"", fin=False) + frame(0x0, b"", fin=False) * count + end
        )
    if kind == 6:
        return frame(0x2, src.binary(600))
    if kind == 7:
        return frame(src.choice([0x9, 0xA]), src.binary(130))
    if kind == 8:
        code = src.choice([1000, 1001, 1002, 1005, 1006, 1009, 1011, 999, 2999, 3000, 4999, 5000])
        reason = src.choice([b"", b"bye", b"\xff\xfe", b"NET-0001 net0001", b"x" * 200])
        return frame(0x8, b"x" if src.chance(8) else close_payload(code, reason))
    if kind == 9:  # reserved opcode or RSV bits
        return frame(src.choice([0x3, 0x7, 0xB, 0xF, 0x1]), b"{}", rsv=src.integer(0, 7))
    if kind == 10:  # masked when it must not be (or unmasked when it must)
        other = None if mask is not None else b"abcd"
        return raw_frame(0x1, b'{"type":"KeepAlive"}', mask=other)
    if kind == 11:  # a length field claiming more than arrives
        return bytes([0x81, 127]) + (1 << 62).to_bytes(8, "big") + b"{}"
    if kind == 12:
        return src.binary(40)
    return frame(0x1, b"x" * src.choice([70_000, 300, 300, 300]))


# --------------------------------------------------------------------------- client


@attrs.frozen
class ClientCase:
    """What a hostile server sends: a handshake answer, frames, how it is cut up."""

    handshake: tuple[str, Any]
    frames: bytes
    cuts: list[int]
    steps: list[float]
    eof: bool
    max_message_size: int


def client_case(src: Source) -> ClientCase:
    kind = src.integer(0, 9)
    handshake: tuple[str, Any]
    if kind <= 5:
        mutation = None
        if src.chance(4):
            mutation = (src.integer(0, 1 << 16), src.integer(0, 255))
        handshake = ("accept", mutation)
    elif kind <= 7:
        status = src.choice([400, 401, 402, 404, 408, 429, 500, 503, 200, 302, 99, 999])
        body = mutated_json(src, _LISTEN_FIXTURES) if src.chance(2) else _deep(src).encode()
        length = src.choice(["exact", "missing", "short", "long"])
        header_byte = src.integer(0x80, 0xFF) if src.chance(5) else None
        handshake = ("reject", (status, body, length, header_byte))
    elif kind == 8:
        handshake = ("raw", src.choice([b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 101\r\n\r\n", b"\x00"]))
    else:
        handshake = ("raw", src.binary(80))
    frames = b"".join(_frame(src, _LISTEN_FIXTURES, None) for _ in range(src.integer(0, 6)))
    return ClientCase(
        handshake=handshake,
        frames=frames,
        cuts=_cuts(src),
        steps=[src.choice([0.0, 0.5, 3.0, 11.0]) for _ in range(3)],
        eof=src.chance(2),
        max_message_size=src.choice([1 << 20, 1 << 20, 300]),
    )


def _accept_key(request: bytes) -> bytes:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip() + _GUID).digest())
    raise AssertionError("no Sec-WebSocket-Key in the request")  # pragma: no cover


def render_handshake(handshake: tuple[str, Any], request: bytes) -> bytes:
    kind, params = handshake
    if kind == "accept":
        head = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + _accept_key(request) + b"\r\ndg-request-id: fuzz\r\n"
        )
        if params is not None:
            at, byte = params
            at = at * len(head) >> 16
            head = _insert_byte(head, at, byte)
        return head + b"\r\n"
    if kind == "reject":
        status, body, length, header_byte = params
        sizes = {"exact": len(body), "short": max(len(body) - 3, 0), "long": len(body) + 10}
        head = f"HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\n".encode()
        if length != "missing":
            head += f"content-length: {sizes[length]}\r\n".encode()
        if header_byte is not None:
            head += b"dg-error: caf" + bytes([header_byte]) + b"\r\n"
        return head + b"\r\n" + body
    return bytes(params)


class ClientChecker:
    """The invariants, checked after every call into a ``ListenConnection``."""

    _ORDER = (State.IDLE, State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED)

    def __init__(self, conn: ListenConnection) -> None:
        self.conn = conn
        self.closed: Closed | None = None
        self.rank = self._ORDER.index(conn.state)

    def check(self) -> None:
        conn = self.conn
        was_closed = self.closed is not None
        rank = self._ORDER.index(conn.state)
        if rank < self.rank:
            raise Finding(f"state moved back to {conn.state.name}")
        self.rank = rank
        for event in conn.events():
            if self.closed is not None:
                raise Finding(f"{type(event).__name__} after Closed")
            if SECRET in repr(event):
                raise Finding("the API key is in an event")
            if isinstance(event, Closed):
                self.closed = event
                if event.error is not None and SECRET in str(event.error):
                    raise Finding("the API key is in an error")
        out = conn.data_to_send()
        if was_closed and out:
            raise Finding(f"{len(out)} bytes to send after Closed")
        if (conn.state is State.CLOSED) != (self.closed is not None):
            raise Finding(f"state {conn.state.name} but Closed emitted: {self.closed is not None}")
        if SECRET in repr(conn):
            raise Finding("the API key is in the connection's repr")


def run_client(case: ClientCase) -> int:
    """Feed ``case`` to a fresh client core; raise ``Finding`` or anything that escaped.

    Returns the input size in bytes.
    """
    conn = ListenConnection(
        options=LiveOptions(encoding="linear16", sample_rate=16000, interim_results=True),
        auth=Auth.token(SECRET),
        host="fuzz.test",
        config=Config(max_message_size=case.max_message_size, ping_interval=2.0),
    )
    started = time.process_time()
    conn.connect(now=0.0)
    request = conn.data_to_send()
    checker = ClientChecker(conn)
    data = render_handshake(case.handshake, request) + case.frames
    now = 0.0
    for index, chunk in enumerate(_split(data, case.cuts)):
        now += case.steps[index % len(case.steps)]
        timer = conn.get_timer()
        if timer is not None and timer <= now:
            conn.handle_timer(now=now)
            checker.check()
        conn.receive_data(chunk, now=now)
        checker.check()
        if conn.state is State.OPEN and index % 2:
            conn.send_audio(b"\x00\x01" * 160, now=now)
            checker.check()
    if case.eof:
        conn.receive_eof(now=now)
        checker.check()
        if checker.closed is None:
            raise Finding("EOF did not end the stream")
    conn.abort(now=now + 1)
    checker.check()
    if checker.closed is None:
        raise Finding("abort() did not end the stream")
    _check_cpu(started, len(data))
    return len(data)


def _check_cpu(started: float, size: int) -> None:
    spent = time.process_time() - started
    allowed = CPU_BASE + CPU_PER_BYTE * size
    if spent > allowed:
        raise Finding(f"{spent:.2f} s of CPU for {size} bytes (allowed {allowed:.2f} s)")


# --------------------------------------------------------------------------- emulator

_QUERIES = (
    "encoding=linear16&sample_rate=16000",
    "encoding=linear16&sample_rate=16000&interim_results=true&vad_events=true"
    "&utterance_end_ms=1000&punctuate=true&numerals=true",
    "encoding=linear16&sample_rate=8000&channels=2&multichannel=true",
    "encoding=mulaw&sample_rate=8000&channels=3",
    "encoding=linear16&sample_rate=16000&endpointing=false&extra=a:b",
    "encoding=linear16&sample_rate=16000&callback=https%3A%2F%2Fu%3Ap%40h%2F%3Ftoken%3Dq",
)
_BAD_QUERIES = (
    "encoding=linear16&sample_rate=16000&channels=100000&multichannel=true",
    "encoding=%ff&sample_rate=x",
    "model=flux-general-en&encoding=linear16&sample_rate=16000",
    "",
)
_FAULTS = ("", "fragment=3", "delay=0.5", "drop_after_messages=2", "close_after_messages=1")
_CONTROL = (
    '{"type":"KeepAlive"}',
    '{"type":"Finalize"}',
    '{"type":"Finalize","channel":1}',
    '{"type":"CloseStream"}',
    '{"type":"Configure","features":{"numerals":true},"keyterms":["alpha"]}',
    '{"type":"Configure","keyterms":["\\ud800"]}',
    '{"type":"Wibble"}',
)
_SCRIPT = ScriptedRecognizer.factory(ScriptedRecognizer.words_from_text("one two three four"))
_EMULATOR_CONFIG = EmulatorConfig(recognizer=_SCRIPT, max_message_size=64 * 1024)


@attrs.frozen
class EmulatorCase:
    """What a hostile client sends: an upgrade request, frames, how it is cut up."""

    request: bytes
    frames: bytes
    cuts: list[int]
    steps: list[float]
    eof: bool


def emulator_case(src: Source) -> EmulatorCase:
    """A request that is valid but for at most one deviation, then hostile frames."""
    deviation = src.integer(0, 12)
    query = src.choice(_QUERIES) if deviation != 0 else src.choice(_BAD_QUERIES)
    path = "/v2/listen" if deviation == 1 else "/v1/listen"
    method = "POST" if deviation == 2 else "GET"
    headers = [
        b"Host: emulator.test",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        b"X-None: 1" if deviation == 3 else b"Authorization: Token k",
    ]
    if src.chance(3):
        headers.append(b"x-dgproto-faults: " + src.choice(_FAULTS).encode())
    request = f"{method} {path}?{query} HTTP/1.1\r\n".encode() + b"\r\n".join(headers) + b"\r\n\r\n"
    if deviation == 4:
        at = src.integer(0, len(request))
        request = _insert_byte(request, at, src.integer(0, 255))
    elif deviation == 5:
        request = src.binary(120)
    mask = bytes([src.integer(0, 255) for _ in range(4)])
    frames = b"".join(_frame(src, _CONTROL, mask) for _ in range(src.integer(0, 8)))
    return EmulatorCase(
        request=request,
        frames=frames,
        cuts=_cuts(src),
        steps=[src.choice([0.0, 0.02, 1.0, 11.0]) for _ in range(3)],
        eof=src.chance(3),
    )


class EmulatorChecker:
    _ORDER = (EmulatorState.HANDSHAKE, EmulatorState.OPEN, EmulatorState.CLOSING,
              EmulatorState.CLOSED)  # fmt: skip

    def __init__(self, emulator: EmulatorConnection) -> None:
        self.emulator = emulator
        self.rank = 0
        self.ended = False
        self.close_sent: tuple[int, str] | None = None

    def check(self) -> None:
        emulator = self.emulator
        rank = self._ORDER.index(emulator.state)
        if rank < self.rank:
            raise Finding(f"state moved back to {emulator.state.name}")
        self.rank = rank
        out = emulator.data_to_send()
        if self.ended and out:
            raise Finding(f"{len(out)} bytes to send after should_close_transport")
        if self.ended and not emulator.should_close_transport:
            raise Finding("should_close_transport went back to False")
        self.ended = emulator.should_close_transport
        if self.close_sent is not None and emulator.close_sent != self.close_sent:
            raise Finding(f"a second close frame: {emulator.close_sent}")
        self.close_sent = emulator.close_sent


def run_emulator(case: EmulatorCase) -> int:
    """Feed ``case`` to a fresh emulator core; raise ``Finding`` or anything that escaped."""
    emulator = EmulatorConnection(config=_EMULATOR_CONFIG, rng=random.Random(1), now=0.0)
    started = time.process_time()
    checker = EmulatorChecker(emulator)
    data = case.request + case.frames
    # wsproto's server drops frames that arrive in the same read as the request (a client
    # waits for the 101 anyway), so the request is fed on its own, itself maybe cut up.
    chunks = [*_split(case.request, case.cuts[:2]), *_split(case.frames, case.cuts[2:])]
    now = 0.0
    for index, chunk in enumerate(chunks):
        now += case.steps[index % len(case.steps)]
        emulator.handle_timer(now=now)
        checker.check()
        emulator.receive_data(chunk, now=now)
        checker.check()
    if case.eof:
        emulator.receive_eof(now=now)
        checker.check()
        if not emulator.should_close_transport:
            raise Finding("EOF did not end the session")
    for _ in range(50):  # run the session out: every timer fires, in order
        timer = emulator.get_timer()
        if timer is None:
            break
        now = max(now, timer)
        emulator.handle_timer(now=now)
        checker.check()
    else:
        raise Finding("the timers never settle")
    _check_cpu(started, len(data))
    return len(data)


# --------------------------------------------------------------------------- make fuzz

# --------------------------------------------------------------------------- inbound


def run_inbound(src: Source) -> int:
    """Server frames after the handshake: ``InboundParser`` and the connection's receive
    path against wsproto's parser (tests/inbound_diff.py), the stream split anywhere."""
    frames = []
    for _ in range(src.integer(0, 8)):
        if src.chance(3):
            frames.append(raw_frame(0x1, mutated_json(src, _LISTEN_FIXTURES)))
        else:
            frame = _frame(src, _LISTEN_FIXTURES, None)
            if len(frame) < 1000 * 2:  # not the fragment flood: that rule is per frame
                frames.append(frame)
    data = b"".join(frames)
    if src.chance(3):
        data = data[: src.integer(0, len(data))]  # the peer stops mid-frame
    cuts = sorted(src.integer(0, len(data)) for _ in range(src.integer(0, 8)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    max_size = src.choice([1 << 20, 1 << 20, 300, 40])
    theirs, ours = run_both(chunks, max_size)
    if ours != theirs:
        raise Finding(f"parser: {ours!r} != wsproto: {theirs!r}")
    compare(chunks, max_size, with_101=src.chance(2))
    return len(data)


Runner = Callable[[Source], int]

TARGETS: dict[str, Runner] = {
    "client": lambda src: run_client(client_case(src)),
    "emulator": lambda src: run_emulator(emulator_case(src)),
    "inbound": run_inbound,
}


def fuzz(name: str, seconds: float, *, first_seed: int) -> tuple[int, int, list[str]]:
    """Run one fuzzer for ``seconds``: ``(inputs tried, bytes fed, findings)``."""
    runner = TARGETS[name]
    deadline = time.monotonic() + seconds
    tried = fed = 0
    findings: list[str] = []
    seed = first_seed
    while time.monotonic() < deadline:
        try:
            fed += runner(RandomSource(seed))
        except Exception as exc:  # every escape is a finding; keep going
            line = traceback.format_exception_only(exc)[-1].strip()
            findings.append(f"seed {seed}: {line}")
        tried += 1
        seed += 1
    return tried, fed, findings


def replay(name: str, seed: int) -> None:
    """Re-run one input by its seed, letting the exception out with its traceback."""
    TARGETS[name](RandomSource(seed))


def main(argv: Sequence[str]) -> int:
    """``make fuzz``: FUZZ_SECONDS per core (default 60); FUZZ_SEED picks the first seed.

    ``python -m tests.fuzzing replay client 1234`` re-runs one finding.
    """
    if len(argv) == 3 and argv[0] == "replay":
        replay(argv[1], int(argv[2]))
        print("no finding")
        return 0
    seconds = float(os.environ.get("FUZZ_SECONDS", "60"))
    first_seed = int(os.environ.get("FUZZ_SEED", str(random.SystemRandom().getrandbits(32))))
    total = 0
    for name in argv or sorted(TARGETS):
        tried, fed, findings = fuzz(name, seconds, first_seed=first_seed)
        print(
            f"{name}: {tried} inputs tried ({fed} bytes) in {seconds:.0f} s, "
            f"{tried / seconds:.0f} inputs/s, {len(findings)} findings "
            f"(seeds from {first_seed})"
        )
        for finding in findings[:20]:
            print(f"  {finding}")
        total += len(findings)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
