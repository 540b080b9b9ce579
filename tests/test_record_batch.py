"""The recorder's batched hot path (``SessionRecorder.writes``, ``WireTap.sent_batch``,
the inlined append in ``WireTrace.sent``): it must record exactly what the per-frame
path records, whatever falls on a batch boundary, and flush on close and on failure."""

from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path

import pytest

from dgproto._recording import BLOCK, read_recordings
from dgproto._wiretap import AUDIO_FLUSH, WireTap
from dgproto.transports import _record
from dgproto.transports._common import WireTrace
from dgproto.transports._record import (
    SIDECAR_SUFFIX,
    SessionRecorder,
    load_recordings,
    record_sink,
    write_all,
)

from .recording_helpers import ACCEPT, KEY, REQUEST
from .recording_helpers import upgraded_recorder as _recorder
from .test_recording import _frame

#: The batch for 640 B frames: AUDIO_FLUSH bytes of 648-byte writes.
BATCH_640 = AUDIO_FLUSH // 648


def _audio(size: int, n: int) -> bytes:
    return _frame(2, bytes([n % 251]) * size, mask=os.urandom(4))


def _script() -> list[tuple[str, bytes]]:
    """A session's bytes crossing batch boundaries: chunk sizes that change mid-batch,
    a KeepAlive, a Finalize, two frames in one write, server messages in between."""
    out: list[tuple[str, bytes]] = [("sent", REQUEST), ("received", ACCEPT)]
    n = 0
    for size, count in ((640, BATCH_640 + 3), (3200, 90), (100, 3), (640, 200)):
        for _ in range(count):
            n += 1
            out.append(("sent", _audio(size, n)))
            if n % 97 == 0:
                out.append(("received", _frame(1, b'{"type":"Results","n":%d}' % n)))
            if n % 150 == 0:
                out.append(("sent", _frame(1, b'{"type":"KeepAlive"}', mask=b"kkkk")))
    out.append(("sent", _audio(640, 1) + _frame(1, b'{"type":"Finalize"}', mask=b"ffff")))
    out.append(("sent", _frame(2, b"\x07" * 200, fin=False, mask=b"abcd")))  # fragmented
    out.append(("sent", _frame(0, b"\x08" * 200, mask=b"abcd")))
    out.append(("sent", _audio(640, 2)))
    out.append(("received", _frame(8, b"\x03\xe8bye")))
    return out


def _play(recorder: SessionRecorder, script: list[tuple[str, bytes]]) -> None:
    for step, (direction, data) in enumerate(script):
        getattr(recorder, direction)(data, 1.0 + step / 1000)


def test_batched_recording_equals_the_per_frame_one(tmp_path: Path) -> None:
    script = _script()
    path = tmp_path / "batched.jsonl"
    sink = record_sink(path)
    assert sink is not None
    batched = sink.session(secrets=[KEY])
    _play(batched, script)
    assert batched.size == 648  # the hot path was armed (for the last size seen)
    batched.close(9.0)
    inline = io.StringIO()
    plain_sink = record_sink(inline)
    assert plain_sink is not None
    plain = plain_sink.session(secrets=[KEY])
    _play(plain, script)
    assert plain.writes == []  # a file object: every frame through WireTap.sent
    assert plain.size == -1
    plain.close(9.0)
    (got,) = load_recordings(path)
    (want,) = read_recordings(inline.getvalue().split("\n"))
    assert got.frames == want.frames
    assert len([f for f in got.frames if f.kind == "binary"]) == BATCH_640 + 299
    for file in (path, Path(str(path) + SIDECAR_SUFFIX)):
        assert KEY.encode() not in file.read_bytes()


def test_the_sidecar_is_written_per_batch_and_at_close(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    sidecar = Path(str(path) + SIDECAR_SUFFIX)
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    recorder.sent(REQUEST, 0.0)
    recorder.received(ACCEPT, 0.0)
    frame = _audio(640, 0)
    record = 8 + len(frame)  # per frame in a block: its stamp and the frame
    recorder.sent(frame, 0.0)  # the tap sees the first frame itself: a block of one
    assert sidecar.stat().st_size == 0
    for _ in range(BATCH_640 - 1):
        recorder.sent(frame, 0.1)
    assert recorder.writes is not None
    assert len(recorder.writes) == BATCH_640 - 1
    assert sidecar.stat().st_size == 0  # buffered: a crash now loses these
    recorder.sent(frame, 0.2)  # the BATCH-th pending write flushes
    assert recorder.writes == []
    assert sidecar.stat().st_size == 2 * BLOCK.size + record * (BATCH_640 + 1)
    recorder.sent(frame, 0.3)
    recorder.close(0.4)  # the rest at close
    assert recorder.writes is None
    assert sidecar.stat().st_size == 3 * BLOCK.size + record * (BATCH_640 + 2)
    recorder.sent(frame, 0.5)  # after close: nothing
    (recording,) = load_recordings(path)
    audio = [f.audio for f in recording.frames]
    assert audio[-1] == pytest.approx((BATCH_640 + 2) * 640 / 32000)


def test_the_trace_takes_the_hot_path_and_a_read_is_recorded_after_the_pending_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    clock = iter(range(10_000))
    trace = WireTrace(logging.getLogger("dgproto.test"))
    trace.record(recorder, lambda: next(clock) / 100)
    trace.sent(REQUEST)
    trace.received(ACCEPT)
    frames = [_audio(640, n) for n in range(10)]
    for frame in frames:
        trace.sent(frame)
    assert recorder.writes is not None
    assert len(recorder.writes) == 9
    trace.received(_frame(1, b'{"type":"Results"}'))  # held, after the 9 pending writes
    assert recorder.writes is not None
    assert len(recorder.writes) == 10
    assert recorder.writes[-1][2:] == (None,)  # a read: (now, bytes, None)
    trace.close_recording()
    (recording,) = load_recordings(path)
    kinds = [(f.direction, f.kind, f.audio) for f in recording.frames]
    assert kinds[-1] == ("recv", "text", pytest.approx(10 * 640 / 32000))
    assert [f.data[:1] for f in recording.frames[:-1]] == [bytes([n]) for n in range(10)]
    assert [f.t for f in recording.frames] == [n / 100 for n in range(2, 13)]


def test_concurrent_writes_during_a_flush_are_kept_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    recorder.sent(REQUEST, 0.0)
    recorder.received(ACCEPT, 0.0)
    frames = [_frame(2, n.to_bytes(2, "big") * 320, mask=b"\x00" * 4) for n in range(3000)]
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            recorder.received(_frame(1, b'{"type":"Results"}'), 0.5)

    thread = threading.Thread(target=reader)
    thread.start()
    for n, frame in enumerate(frames):
        recorder.sent(frame, n / 1000)
    done.set()
    thread.join()
    recorder.close(9.0)
    (recording,) = load_recordings(path)
    audio = [f for f in recording.frames if f.kind == "binary"]
    assert [f.data[:2] for f in audio] == [n.to_bytes(2, "big") for n in range(3000)]
    clocks = [f.audio for f in recording.frames]
    assert clocks == sorted(clocks)  # every message's clock is the wire's


def test_write_all_without_writev_and_after_a_short_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [bytes([n % 256]) * 10 for n in range(1500)]  # more than one writev's worth
    with open(tmp_path / "a", "wb", buffering=0) as file:
        assert write_all(file, parts) == 15000
    monkeypatch.setattr(_record, "_writev", lambda fd, chunk: 3)  # short
    with open(tmp_path / "b", "wb", buffering=0) as file:
        assert write_all(file, parts) == 15000
    monkeypatch.setattr(_record, "_writev", None)  # no writev on this platform
    with open(tmp_path / "c", "wb", buffering=0) as file:
        assert write_all(file, parts) == 15000
    whole = b"".join(parts)
    assert (tmp_path / "a").read_bytes() == whole
    assert (tmp_path / "c").read_bytes() == whole
    first, second = b"".join(parts[:1024]), b"".join(parts[1024:])  # one writev each
    assert (tmp_path / "b").read_bytes() == first[3:] + second[3:]  # the fake wrote 3 of each


def test_a_failed_batch_write_stops_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "f.jsonl"
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    recorder.sent(REQUEST, 0.0)
    recorder.received(ACCEPT, 0.0)

    def full(file: object, parts: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(_record, "write_all", full)
    with caplog.at_level(logging.WARNING, "dgproto.transports"):
        for _ in range(BATCH_640 + 1):
            recorder.sent(_audio(640, 1), 0.1)
    assert "recording stopped: disk full" in caplog.text
    assert recorder.writes is None
    recorder.sent(_audio(640, 1), 0.2)  # the slow path, closed: nothing
    recorder.received(_frame(1, b"{}"), 0.2)
    recorder.flush()
    recorder.close(0.3)


def test_sent_batch_takes_nothing_it_cannot_place() -> None:
    lines: list[str] = []
    inline = WireTap(lines.append)  # no sidecar: audio lines go through sent()
    inline.sent(REQUEST, 0.0)
    inline.received(ACCEPT, 0.0)
    inline.sent_batch([(0.1, _audio(640, 1))])
    assert inline.audio_seconds == 0.0
    unseen = WireTap(lines.append, sidecar="u.audio")  # no frame seen: no fast_head yet
    unseen.sent_batch([(0.1, _audio(640, 1))])
    unseen.sent_batch([])
    assert unseen.take_audio() == b""


# ------------------------------------------------------------- held reads (received)

#: Reads of every shape: the usual one, non-ASCII, bad UTF-8, a newline inside, not an
#: object, a ping, two frames in one read, a frame split across reads (inside its 4-byte
#: header and inside its payload), a 64-bit length, a close.
_BIG = b'{"type":"Results","words":"' + b"w" * 300 + b'"}'
READS = [
    _frame(1, b'{"type":"Results","n":1}'),
    _frame(1, '{"type":"Results","t":"caf\u00e9"}'.encode()),
    _frame(1, b'{"type":"Results","bad":"\xff"}'),
    _frame(1, b'{"type":"Results",\n"n":2}'),
    _frame(1, b'{"type":"Results",\r"n":2}'),
    _frame(1, b'"just a string"'),
    _frame(9, b"ping"),
    _frame(1, b'{"n":3}') + _frame(1, b'{"n":4}'),
    _frame(1, _BIG)[:1],
    _frame(1, _BIG)[1:3],
    _frame(1, _BIG)[3:200],
    _frame(1, _BIG)[200:],
    _frame(1, _BIG),
    _frame(1, b'{"w":"' + b"w" * 70000 + b'"}'),
    _frame(8, b"\x03\xe8bye"),
]


def _tap_past_handshake(lines: list[str], sidecar: str | None) -> WireTap:
    tap = WireTap(lines.append, sidecar=sidecar)
    tap.sent(REQUEST, 0.0)
    tap.received(ACCEPT, 0.0)
    tap.sent(_audio(640, 1), 0.01)
    return tap


def test_raw_reads_read_back_as_the_per_message_lines() -> None:
    """The sidecar's reads block, parsed by the reader, gives the frames the per-message
    lines (a file object's recording) give, whatever the reads' shapes."""
    inline_lines: list[str] = []
    inline = _tap_past_handshake(inline_lines, None)
    raw_lines: list[str] = []
    raw = _tap_past_handshake(raw_lines, "r.audio")
    for n, data in enumerate(READS):
        inline.received(data, 0.5 + n / 1000)
        raw.received(data, 0.5 + n / 1000)
    assert len(raw_lines) == 3  # the header, request and response: the reads are held
    (want,) = read_recordings(inline_lines)
    (got,) = read_recordings(raw_lines, raw.take_audio())
    assert got.frames == want.frames
    assert len([f for f in got.frames if f.direction == "recv"]) == 13


def test_held_reads_keep_their_place_between_the_writes(tmp_path: Path) -> None:
    """Each read is recorded after exactly the audio written before it, whether it is
    held across batches, split across reads or arrives between slow-path writes."""
    path = tmp_path / "o.jsonl"
    recorder = _recorder(path)
    want: list[str] = []
    reference = WireTap(want.append)  # per message, inline: the reference
    reference.sent(REQUEST, 0.0)
    reference.received(ACCEPT, 0.0)
    steps: list[tuple[str, bytes]] = []
    reads = iter(READS * 3)
    for n in range(2 * BATCH_640 + 50):
        steps.append(("sent", _audio(640, n)))
        if n % 2 == 0:
            steps.append(("received", next(reads, _frame(1, b'{"n":%d}' % n))))
        if n == BATCH_640 - 9:  # near the end of the first batch
            steps.append(("sent", _frame(1, b'{"type":"KeepAlive"}', mask=b"kkkk")))
    for step, (direction, data) in enumerate(steps):
        getattr(recorder, direction)(data, 1.0 + step / 1000)
        getattr(reference, direction)(data, 1.0 + step / 1000)
    assert recorder.writes
    assert any(len(item) == 3 for item in recorder.writes)  # some reads are still held
    recorder.close(9.0)
    (recording,) = load_recordings(path)
    (expected,) = read_recordings(want)
    assert recording.frames == expected.frames
    recv = [f for f in recording.frames if f.direction == "recv"]
    assert len(recv) > 100
    clocks = [f.audio for f in recording.frames]
    assert clocks == sorted(clocks)


def _recv_count(path: Path) -> int:
    (recording,) = load_recordings(path)
    return sum(f.direction == "recv" for f in recording.frames)


def test_held_reads_are_written_at_close_and_past_read_flush(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    recorder = _recorder(path)
    assert recorder.raw  # the 101 armed the hot path for reads
    message = _frame(1, _BIG)
    recorder.received(message, 0.5)
    recorder.flush()  # a flush writes the held reads even without pending audio
    assert _recv_count(path) == 1
    held = -(-_record.READ_FLUSH // len(message))  # the reads that reach READ_FLUSH bytes
    for _ in range(held - 1):
        recorder.received(message, 0.6)
    assert recorder.writes  # held: below READ_FLUSH bytes
    recorder.received(message, 0.6)  # READ_FLUSH reached: written now
    assert recorder.writes == []
    count = 1 + held
    assert _recv_count(path) == count
    recorder.received(message, 0.7)
    recorder.close(0.8)  # the rest at close
    assert _recv_count(path) == count + 1
    recorder.received(message, 0.9)  # after close: nothing
    assert recorder.writes is None


def test_the_tap_holds_reads_up_to_read_flush_by_itself() -> None:
    flushed: list[bytes] = []
    lines: list[str] = []
    tap = WireTap(lines.append, sidecar="x.audio", flush_audio=lambda: flushed.append(b""))
    tap.sent(REQUEST, 0.0)
    tap.received(ACCEPT + _frame(1, b"{}"), 0.0)  # the 101 and a message in one read
    assert tap.raw_reads
    assert len(tap.read_data) == 1
    message = _frame(1, _BIG)
    for _ in range(_record.READ_FLUSH // len(message) + 1):
        tap.received(message, 0.1)
    assert flushed  # the owner was asked to take the parts


def test_the_trace_holds_a_read_until_the_stream_ends_even_by_an_exception(
    tmp_path: Path,
) -> None:
    path = tmp_path / "e.jsonl"
    sink = record_sink(path)
    assert sink is not None
    trace = WireTrace(logging.getLogger("dgproto.test"))
    trace.record(sink.session(), lambda: 1.0)

    def session() -> None:
        try:
            trace.sent(REQUEST)
            trace.received(ACCEPT + _frame(1, b'{"type":"Results"}'))
            trace.received(_frame(1, b'{"type":"Results"}'))  # the hot path
            raise RuntimeError("the app failed")
        finally:
            trace.close_recording()  # what every adapter does on the way out

    with pytest.raises(RuntimeError):
        session()
    (recording,) = load_recordings(path)
    assert recording.response is not None
    assert [f.kind for f in recording.frames] == ["text", "text"]


def test_the_trace_flushes_reads_past_read_flush(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sink = record_sink(path)
    assert sink is not None
    recorder = sink.session()
    trace = WireTrace(logging.getLogger("dgproto.test"))
    trace.record(recorder, lambda: 1.0)
    trace.sent(REQUEST)
    trace.received(ACCEPT)
    message = _frame(1, _BIG)
    count = _record.READ_FLUSH // len(message) + 1
    for _ in range(count):
        trace.received(message)
    assert recorder.writes == []  # written: no longer held
    assert _recv_count(path) == count
    trace.close_recording()


def test_a_failed_write_of_held_reads_stops_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = _recorder(tmp_path / "w.jsonl")

    def full(file: object, parts: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(_record, "write_all", full)
    recorder.received(_frame(1, b"{}"), 0.1)  # held
    with caplog.at_level(logging.WARNING, "dgproto.transports"):
        recorder.sent(_frame(1, b'{"type":"KeepAlive"}', mask=b"kkkk"), 0.2)  # reads first
    assert "recording stopped: disk full" in caplog.text
    assert recorder.writes is None  # the hot path is disarmed after the failure
    recorder.received(_frame(1, b"{}"), 0.2)
    recorder.sent(_audio(640, 1), 0.3)
    recorder.close(0.3)


def test_held_reads_to_a_file_object_are_written_as_text() -> None:
    out = io.StringIO()
    sink = record_sink(out)
    assert sink is not None
    recorder = sink.session()
    recorder.sent(REQUEST, 0.0)
    recorder.received(ACCEPT, 0.0)
    assert not recorder.raw
    recorder.received(_frame(1, '{"t":"caf\u00e9"}'.encode()), 0.1)
    recorder.received(_frame(1, b'{"n":1}'), 0.2)
    recorder.close(0.3)
    (recording,) = read_recordings(out.getvalue().split("\n"))
    assert [f.text for f in recording.frames] == ['{"t":"caf\u00e9"}', '{"n":1}']


def test_pending_audio_is_written_at_each_line_and_stays_bounded(tmp_path: Path) -> None:
    """A ping before a batch fills writes the frames before it with its line; batches
    cut short by size changes are written once they add up to AUDIO_FLUSH: pending
    audio never grows past about one batch, however the writes mix."""
    path = tmp_path / "b.jsonl"
    recorder = _recorder(path)
    sidecar = Path(str(path) + SIDECAR_SUFFIX)
    early = BATCH_640 * 2 // 3  # frames before the ping: less than a batch
    for n in range(early):
        recorder.sent(_audio(640, n), 0.1)
    assert sidecar.stat().st_size < early * 648
    recorder.sent(_frame(9, b"p", mask=b"pppp"), 0.2)  # a ping: the pending frames first
    assert sidecar.stat().st_size >= early * 648
    (recording,) = read_recordings(path.read_text().split("\n"), sidecar.read_bytes())
    assert [f.kind for f in recording.frames] == ["binary"] * early + ["ping"]
    tap = recorder._tap
    cut = BATCH_640 - 1  # frames of one size, then one of another: no batch ever fills
    for cycle in range(800):
        for _ in range(cut):
            recorder.sent(_audio(640, cycle), 0.3)
        recorder.sent(_audio(320, cycle), 0.3)
        assert recorder.writes is not None
        pending = tap._parts_size + sum(map(len, (w[1] for w in recorder.writes)))
        assert pending <= AUDIO_FLUSH + (cut + 1) * 700
    recorder.close(0.4)
    (recording,) = load_recordings(path)
    assert len(recording.frames) == early + 1 + 800 * (cut + 1)
