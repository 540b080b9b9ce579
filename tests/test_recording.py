"""The recording format: what the wire tap writes, what the reader accepts, what it
refuses, and that no credential ever reaches the file."""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgproto import Auth, LiveOptions
from dgproto._recording import (
    AUDIO_TAG,
    BLOCK,
    READS_TAG,
    REDACTED,
    Recorder,
    RecordingError,
    _Frames,
    line_is_whole,
    read_recording,
    redact_headers,
    redact_target,
)
from dgproto._timeline import render, timeline, transcript
from dgproto._wiretap import WireTap
from dgproto.emulator import EmulatorConfig, FaultPlan, synthesize
from dgproto.transports._record import (
    SIDECAR_SUFFIX,
    load_recording,
    load_recordings,
    record_sink,
)

from .recording_helpers import (
    KEY,
    OPTIONS,
    RATE,
    TappedPipe,
    client,
    emulator,
    upgraded_recorder,
)

CALLBACK = "https://hookuser:hookpass@hooks.example/dg?sig=callback-signature"
PROXY = "Basic cHJveHl1c2VyOnByb3h5cGFzcw=="


def full_session() -> TappedPipe:
    options = LiveOptions(
        encoding="linear16",
        sample_rate=RATE,
        interim_results=True,
        extra={"callback_hint": "x"},
        callback=CALLBACK,
    )
    pipe = TappedPipe(client(options=options), emulator())
    pipe.stream(synthesize("Hello there.", sample_rate=RATE))
    pipe.client.finalize(now=pipe.now)
    pipe.pump()
    pipe.advance(4.0)  # a KeepAlive
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    return pipe


def test_no_secret_is_written() -> None:
    pipe = full_session()
    text = pipe.file.getvalue()
    for secret in (KEY, "hookuser", "hookpass", "callback-signature"):
        assert secret not in text
    recording = pipe.recording()
    assert recording.request.header("authorization") == f"Token {REDACTED}"
    callback = dict(recording.request.query)["callback"]
    assert callback == f"https://hooks.example/dg?sig={REDACTED}"


def test_bearer_subprotocol_proxy_and_query_tokens_are_redacted() -> None:
    headers = redact_headers(
        [
            ("Authorization", "Bearer eyJhbGciOi.jwt.sig"),
            ("Proxy-Authorization", PROXY),
            ("Sec-WebSocket-Protocol", "bearer, eyJhbGciOi.jwt.sig"),
            ("Cookie", "session=abc"),
            ("X-Custom", "carries dg-secret-key-0123456789abcdef inside"),
        ],
        secrets=[KEY, ""],
    )
    text = json.dumps(headers)
    assert "eyJhbGciOi" not in text
    assert "cHJveHl1" not in text
    assert "abc" not in text
    assert KEY not in text
    assert headers[0] == ("authorization", f"Bearer {REDACTED}")
    assert headers[1] == ("proxy-authorization", f"Basic {REDACTED}")
    assert headers[2] == ("sec-websocket-protocol", f"bearer, {REDACTED}")
    assert headers[3] == ("cookie", REDACTED)
    path, query = redact_target("/v1/listen?token=t1&access_token=t2&model=nova-3")
    assert path == "/v1/listen"
    assert query == [("token", REDACTED), ("access_token", REDACTED), ("model", "nova-3")]


def test_the_browser_form_of_the_key_is_not_written() -> None:
    pipe = TappedPipe(client(auth=Auth.subprotocol(KEY)), emulator())
    assert KEY not in pipe.file.getvalue()
    assert pipe.recording().request.header("sec-websocket-protocol") == f"token, {REDACTED}"


def test_frames_carry_wall_time_and_the_audio_clock() -> None:
    pipe = full_session()
    recording = pipe.recording()
    assert recording.accepted
    assert recording.version == 3
    audio = [f for f in recording.frames if f.direction == "send" and f.kind == "binary"]
    assert b"".join(f.data for f in audio) == synthesize("Hello there.", sample_rate=RATE)
    assert audio[0].audio == pytest.approx(640 / 32000)
    assert audio[-1].audio == pytest.approx(pipe.client.audio_seconds_sent)
    times = [f.t for f in recording.frames]
    assert times == sorted(times)
    assert times[-1] > 4.0
    kinds = [f.message_type for f in recording.frames if f.kind == "text"]
    assert {"KeepAlive", "Finalize", "CloseStream", "Results", "Metadata"} <= set(kinds)
    assert recording.frames[-1].kind == "close"


def test_timeline_and_transcript_of_a_recording() -> None:
    recording = full_session().recording()
    assert transcript(recording) == "hello there"
    lines = timeline(recording)
    assert lines[0].endswith("request GET /v1/listen")
    assert "handshake 101 accepted" in lines[1]
    joined = "\n".join(lines)
    for part in ("KeepAlive", "Finalize", "(Finalize reply)", "CloseStream", "Metadata"):
        assert part in joined
    assert "close 1000 from server" in joined
    assert "close 1000 from client" in joined
    assert render(recording).startswith("hello there\n\n")


def test_timeline_of_a_rejection_and_of_an_unanswered_request() -> None:
    pipe = TappedPipe(client(), emulator(EmulatorConfig(faults=FaultPlan(reject_status=401))))
    recording = pipe.recording()
    assert "handshake 401 rejected" in timeline(recording)[1]
    assert "INVALID_AUTH" in timeline(recording)[1]
    assert render(recording).startswith("(no final transcript)")
    head = pipe.file.getvalue().splitlines()[:2]
    assert timeline(read_recording(head))[1] == "(no handshake answer recorded)"


def test_timeline_skips_odd_messages() -> None:
    lines = [
        '{"format":"dgproto-recording","version":1}',
        '{"type":"request","t":0,"method":"GET","path":"/v1/listen","query":[],"headers":[]}',
        '{"type":"response","t":0,"status":101,"headers":[],"body":""}',
        '{"type":"frame","t":1,"audio":null,"dir":"recv","kind":"text","text":"[1]"}',
        '{"type":"frame","t":1,"audio":null,"dir":"recv","kind":"text",'
        '"text":"{\\"type\\":\\"Results\\",\\"is_final\\":true,\\"channel\\":{}}"}',
        '{"type":"frame","t":1,"audio":null,"dir":"send","kind":"text","text":"{}"}',
        '{"type":"frame","t":1,"audio":null,"dir":"recv","kind":"close","code":1011,'
        '"reason":"bye"}',
    ]
    recording = read_recording(lines)
    out = timeline(recording)
    assert out[-2].endswith("final [0.00-0.00] ''")
    assert out[-1].endswith("close 1011 'bye' from server")
    assert "   -   " in out[-1]
    assert transcript(recording) == ""


def test_recorder_lines_round_trip() -> None:
    recorder = Recorder()
    lines = [
        recorder.header(),
        recorder.request(method="GET", target="/v1/listen", headers=[], now=10.0),
        recorder.response(status=101, headers=[], body=b"", now=10.5),
        recorder.frame("send", "ping", b"\x01\x02", now=11.0, audio_seconds=None),
        recorder.frame("recv", "close", b"", now=11.0, audio_seconds=0.0),
        recorder.frame("recv", "text", "é\n".encode(), now=11.0, audio_seconds=0.25),
    ]
    recording = read_recording([*lines, "\n"])
    ping, close, text = recording.frames
    assert (ping.kind, ping.data, ping.audio, ping.t) == ("ping", b"\x01\x02", None, 1.0)
    assert (close.code, close.reason) == (1005, "")
    assert text.text == "é\n"
    assert text.json() is None
    assert text.message_type is None
    assert recording.response is not None
    assert recording.response.t == 0.5


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "empty file"),
        (["nope"], "line 1: not JSON"),
        (['{"format":"other"}'], "not a dgproto-recording file"),
        (['{"format":"dgproto-recording","version":4}'], "version 4 is not supported"),
        (['{"format":"dgproto-recording","version":1}'], "no request record"),
        (['{"format":"dgproto-recording","version":1}', "[]"], "line 2: expected a JSON object"),
        (
            ['{"format":"dgproto-recording","version":1}', '{"type":"frame"}'],
            "line 2: a frame before the handshake response",
        ),
        (['{"format":"dgproto-recording","version":1}', '{"type":"x"}'], "unexpected record"),
    ],
)
def test_reader_refuses_bad_files(lines: list[str], message: str) -> None:
    with pytest.raises(RecordingError, match=message):
        read_recording(lines)


HEAD = [
    '{"format":"dgproto-recording","version":1}',
    '{"type":"request","t":0,"method":"GET","path":"/","query":[],"headers":[]}',
    '{"type":"response","t":0,"status":101,"headers":[],"body":""}',
]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ('{"type":"frame","t":0,"dir":"up","kind":"text"}', "'dir' must be"),
        ('{"type":"frame","t":0,"dir":"send","kind":"blob"}', "unknown frame kind"),
        ('{"type":"frame","t":true,"dir":"send","kind":"text","text":""}', "'t' is missing"),
        ('{"type":"frame","t":0,"audio":"1","dir":"send","kind":"ping"}', "'audio'"),
        ('{"type":"frame","t":0,"dir":"send","kind":"ping","data":"***"}', "bad base64"),
        ('{"type":"frame","t":0,"dir":"send","kind":"ping","data":1}', "must be a str"),
        ('{"type":"frame","t":0,"dir":"send","kind":"close","code":1000}', "'reason'"),
    ],
)
def test_reader_refuses_bad_frames(frame: str, message: str) -> None:
    with pytest.raises(RecordingError, match=message):
        read_recording([*HEAD, frame])


def test_reader_refuses_bad_pairs() -> None:
    bad = '{"type":"request","t":0,"method":"GET","path":"/","query":[["a"]],"headers":[]}'
    with pytest.raises(RecordingError, match="'query' must be a list"):
        read_recording([HEAD[0], bad])


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    first = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    flag = 0x80 if mask else 0
    if size < 126:
        head = first + bytes([flag | size])
    elif size < 65536:
        head = first + bytes([flag | 126]) + size.to_bytes(2, "big")
    else:
        head = first + bytes([flag | 127]) + size.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=97),
)
def test_frame_parser_reassembles_fragments_in_any_read_size(parts: list[bytes], step: int) -> None:
    wire = b"".join(
        _frame(0 if i else 2, part, fin=i == len(parts) - 1, mask=b"\x01\x02\x03\x04")
        for i, part in enumerate(parts)
    )
    wire += _frame(9, b"hi") + _frame(1, b"x" * 70000)
    parser = _Frames()
    got = []
    for i in range(0, len(wire), step * 37):
        got += parser.feed(wire[i : i + step * 37])
    messages = [(k, p) for k, p, _ in got if p or k != "binary" or _ == 0]
    assert messages[0] == ("binary", b"".join(parts))
    assert messages[1:] == [("ping", b"hi"), ("text", b"x" * 70000)]
    assert sum(n for _, _, n in got) == len(b"".join(parts))


def test_tap_handles_partial_heads_rejections_without_length_and_ignores_early_bytes() -> None:
    out: list[str] = []
    tap = WireTap(out.append)
    tap.received(b"HTTP/1.1 101 x\r\n\r\n", 0.0)  # before any request: ignored
    tap.sent(b"", 0.0)
    tap.sent(b"GET /v1/listen?sample_rate=oops HTTP/1.1\r\nHost: h", 0.0)
    assert out == []
    tap.sent(b"\r\n\r\n", 0.0)
    assert tap.audio_seconds is None
    tap.received(b"HTTP/1.1 503 Busy\r\nx: y\r\n", 0.1)
    tap.received(b"\r\nbody ", 0.1)
    tap.received(b"more", 0.2)
    tap.eof(0.3)
    tap.received(b"late", 0.4)
    tap.sent(b"late", 0.4)
    recording = read_recording(out)
    assert recording.response is not None
    assert (recording.response.status, recording.response.body) == (503, b"body more")
    assert recording.response.t == pytest.approx(0.3)
    odd: list[str] = []
    tap = WireTap(odd.append)
    tap.sent(b"GET / HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"garbage\r\ncontent-length: 3\r\n\r\nabcdef", 0.0)
    tap.eof(0.0)
    response = read_recording(odd).response
    assert response is not None
    assert (response.status, response.body) == (0, b"abc")


def test_session_recorder_writes_paths_and_files(tmp_path: Path) -> None:
    assert record_sink(None) is None
    with pytest.raises(TypeError, match="text file"):
        record_sink(io.BytesIO())
    path = tmp_path / "session.jsonl"
    sink = record_sink(path)
    assert sink is not None
    unused = sink.session(secrets=[KEY])  # a plan never connected opens nothing
    unused.close(0.0)
    assert not path.exists()
    recorder = sink.session(secrets=[KEY])
    request = f"GET /v1/listen?{OPTIONS.to_query()} HTTP/1.1\r\nauthorization: Token {KEY}\r\n\r\n"
    recorder.sent(request.encode(), 1.0)
    recorder.received(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", 1.1)
    recorder.sent(_frame(2, b"\x01" * 640, mask=b"abcd"), 1.2)
    recorder.sent(_frame(2, b"\x02" * 320, mask=b"abcd") * 2, 1.25)  # two in one write
    recorder.received(_frame(1, b'{"type":"Metadata"}'), 1.3)
    recorder.close(1.4)
    recorder.close(1.5)
    recorder.sent(_frame(2, b"\x03" * 640, mask=b"abcd"), 1.6)  # after close: ignored
    assert KEY not in path.read_text()
    sidecar = Path(str(path) + SIDECAR_SUFFIX).read_bytes()
    # one block per frame seen alone: masked as sent; then the two of one write, unmasked;
    # then the server's read (its stamp, position, length and bytes)
    assert len(sidecar) == (20 + 8 + 8 + 640) + 2 * (20 + 8 + 4 + 320) + (20 + 16 + 21)
    assert b'"data"' not in path.read_bytes()  # no audio inline
    recording = load_recording(path)
    frames = [(f.kind, f.data[:1], len(f.data), f.audio, f.t) for f in recording.frames]
    assert frames == [
        ("binary", b"\x01", 640, 0.02, 0.2),
        ("binary", b"\x02", 320, 0.03, 0.25),
        ("binary", b"\x02", 320, 0.04, 0.25),
        ("text", b"", 0, 0.04, 0.3),
    ]
    # A second socket appends, its own header saying where its audio starts.
    second = sink.session()
    second.sent(request.encode(), 2.0)
    second.received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 2.0)
    second.received(_frame(1, b'{"type":"Metadata"}'), 2.1)
    second.sent(_frame(2, b"\x04" * 640, mask=b"abcd"), 2.2)
    second.close(2.3)
    first, again = load_recordings(path)
    assert first == recording
    assert [(f.kind, f.data[:1], f.audio) for f in again.frames] == [
        ("text", b"", 0.0),
        ("binary", b"\x04", 0.02),
    ]
    # A file object: audio inline, flushed, left open.
    buffer = io.StringIO()
    kept = record_sink(buffer)
    assert kept is not None
    inline = kept.session()
    inline.sent(request.encode(), 1.0)
    inline.received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 1.1)
    inline.sent(_frame(2, b"\x00" * 640, mask=b"abcd"), 1.2)
    inline.close(1.3)
    assert not buffer.closed
    line = json.loads(buffer.getvalue().splitlines()[-1])
    assert base64.b64decode(line["data"]) == bytes(640)


V2 = Path(__file__).parent / "fixtures" / "recordings" / "v2_session.jsonl"


def test_sidecar_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    recorder = upgraded_recorder(path)
    recorder.sent(_frame(2, b"\x00" * 640, mask=b"abcd"), 0.1)
    recorder.received(_frame(1, b"{}"), 0.2)
    recorder.close(0.3)
    lines = path.read_text().splitlines()
    sidecar = Path(str(path) + SIDECAR_SUFFIX)
    data = sidecar.read_bytes()
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text(path.read_text())
    Path(str(renamed) + SIDECAR_SUFFIX).write_bytes(data)
    assert load_recording(renamed) == load_recording(path)
    with pytest.raises(RecordingError, match=r"sidecar 's\.jsonl\.audio' is missing"):
        read_recording(lines)
    with pytest.raises(RecordingError, match="not a block"):
        read_recording(lines, data + b"XXXX" + bytes(16))
    for bad_frame in (
        BLOCK.pack(AUDIO_TAG, 1, 3, 0.0) + bytes(8) + b"\x81\x01a",  # not binary
        BLOCK.pack(AUDIO_TAG, 1, 4, 0.0) + bytes(8) + b"\x82\x01ab",  # not its size
    ):
        with pytest.raises(RecordingError, match="not a whole binary frame"):
            read_recording(lines, data + bad_frame)
    with pytest.raises(RecordingError, match="version 2 after 3"):
        read_recording([*lines, lines[0].replace('"version":3', '"version":2')], data)
    with pytest.raises(RecordingError, match="'sidecar' must be"):
        read_recording(['{"format":"dgproto-recording","version":3,"sidecar":3}'])
    with pytest.raises(RecordingError, match="'offset' must be"):
        read_recording(['{"format":"dgproto-recording","version":3,"offset":-1}'])
    unmasked = BLOCK.pack(AUDIO_TAG, 3, 4, 0.0) + bytes(24) + b"\x82\x02ab" * 3
    assert read_recording(lines, data + unmasked).frames[-1].data == b"ab"
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RecordingError, match="not a text file"):
        load_recording(garbled)
    odd = tmp_path / "odd.jsonl"
    odd.write_text("nope\n")
    with pytest.raises(RecordingError, match="not JSON"):
        load_recording(odd)
    (tmp_path / "elsewhere").mkdir()
    lost = tmp_path / "elsewhere" / "lost.jsonl"
    lost.write_text(lines[0] + "\n")
    with pytest.raises(RecordingError, match="is missing"):
        load_recording(lost)


def test_a_killed_writer_leaves_a_file_that_reads_up_to_the_cut(tmp_path: Path) -> None:
    """Cut the sidecar anywhere (inside a block's head, stamps or frames) or the lines
    file inside its last line: every whole block and line still loads, marked truncated."""
    path = tmp_path / "k.jsonl"
    recorder = upgraded_recorder(path)
    for n in range(6):
        recorder.sent(_frame(2, bytes([n]) * 640, mask=b"abcd"), 0.1 + n / 100)
        recorder.received(_frame(1, b'{"n":%d}' % n), 0.1 + n / 100)
        if n == 2:
            recorder.flush()
    recorder.sent(_frame(1, b'{"type":"Finalize"}', mask=b"abcd"), 0.2)
    recorder.close(0.3)
    whole = load_recording(path)
    assert not whole.truncated
    assert [f.kind for f in whole.frames] == ["binary", "text"] * 6 + ["text"]
    text = path.read_text()
    data = Path(str(path) + SIDECAR_SUFFIX).read_bytes()
    (tmp_path / "cut").mkdir()
    cut_file = tmp_path / "cut" / "k.jsonl"  # its sidecar under the name the header gives
    seen = set()
    ends, pos = set(), 0  # where the blocks end: a cut there leaves whole blocks only
    while pos < len(data):
        tag, count, size, _ = BLOCK.unpack_from(data, pos)
        pos += BLOCK.size + (count * (8 + size) if tag == AUDIO_TAG else count * 16 + size)
        ends.add(pos)
    assert len(ends) >= 4
    for cut in range(1, len(data)):
        cut_file.write_text(text[: text.rindex('{"type":"frame"')])  # the Finalize not written
        Path(str(cut_file) + SIDECAR_SUFFIX).write_bytes(data[:cut])
        recording = load_recording(cut_file)
        assert recording.truncated == (cut not in ends)
        frames = recording.frames
        rest = iter(whole.frames)
        assert all(frame in rest for frame in frames)  # in order, nothing made up
        seen.add(len(frames))
    assert len(seen) > 3  # whole blocks kept at several cuts
    Path(str(cut_file) + SIDECAR_SUFFIX).write_bytes(data[:-10])
    cut_file.write_text(text)  # the lines name a sidecar place past its end
    cut = load_recording(cut_file)
    assert cut.truncated
    assert cut.frames[-1] == whole.frames[-1]  # the Finalize line
    cut_file.write_text(text.rstrip("\n"))  # a whole last line, only the newline missing
    Path(str(cut_file) + SIDECAR_SUFFIX).write_bytes(data)
    assert load_recording(cut_file) == whole
    cut_file.write_text(text[:-5])  # inside the last line (the Finalize)
    Path(str(cut_file) + SIDECAR_SUFFIX).write_bytes(data)
    cut = load_recording(cut_file)
    assert cut.truncated
    assert cut.frames == whole.frames[:-1]


def test_a_whole_line_is_told_from_a_cut_one() -> None:
    assert line_is_whole("")
    assert line_is_whole("  ")
    assert line_is_whole('{"type":"frame","t":0,"dir":"send","kind":"close"}')
    assert line_is_whole('{"type":"frame","t":0,"dir":"recv","kind":"text","json":{"a":1}}')
    assert not line_is_whole('{"type":"frame","t":0,"dir":"recv","kind":"text","json":{"a"')
    assert not line_is_whole('{"type":"frame","t":0,"di')


def test_version_2_files_are_still_read_and_replayed() -> None:
    """A checked-in version 2 recording (tests/fixtures/recordings/README.md): the audio
    from its per-frame sidecar, the server's messages from its lines, in wire order."""
    recording = load_recording(V2)
    assert recording.version == 2
    assert not recording.truncated
    audio = [f for f in recording.frames if f.kind == "binary"]
    assert b"".join(f.data for f in audio) == synthesize(
        "Hello world. This is a test.", sample_rate=RATE
    )
    assert audio[-1].audio == pytest.approx(len(b"".join(f.data for f in audio)) / 32000)
    kinds = [
        (f.direction, f.message_type or f.kind) for f in recording.frames if f.kind != "binary"
    ]
    assert kinds == [
        ("recv", "Results"),
        ("send", "KeepAlive"),
        ("send", "KeepAlive"),
        ("send", "Finalize"),
        ("recv", "Results"),
        ("recv", "Results"),
        ("recv", "Results"),
        ("send", "CloseStream"),
        ("recv", "Metadata"),
        ("recv", "close"),
        ("send", "close"),
    ]
    first = next(i for i, f in enumerate(recording.frames) if f.direction == "recv")
    assert recording.frames[first].audio == 0.54  # between the audio frames, in place
    assert recording.frames[first - 1].kind == "binary"
    assert recording.frames[first + 1].kind == "binary"
    assert transcript(recording) == "hello world this is a test"


def test_version_2_sidecar_problems_are_named() -> None:
    lines = V2.read_text().splitlines()
    data = Path(str(V2) + SIDECAR_SUFFIX).read_bytes()
    assert read_recording(lines, data) == load_recording(V2)
    with pytest.raises(RecordingError, match="sidecar is shorter"):
        read_recording(lines, data[:100])
    head = lines[:3]
    with pytest.raises(RecordingError, match="truncated record"):
        read_recording(head, data + b"\x00" * 9)
    with pytest.raises(RecordingError, match="not a whole binary frame"):
        read_recording(head, data + bytes(8) + b"\x81\x05")
    unmasked = bytes(8) + b"\x82\x02ab"
    assert read_recording(head, data + unmasked).frames[-1].data == b"ab"
    assert read_recording(head, data + unmasked[:8] + b"\x82\x7e\x00\x02ab")
    assert read_recording(head, data + unmasked[:8] + b"\x82\x7f" + (2).to_bytes(8, "big") + b"ab")


def test_fragmented_audio_moves_the_clock_per_fragment() -> None:
    out: list[str] = []
    tap = WireTap(out.append)
    tap.sent(b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    tap.sent(_frame(2, b"\x00" * 320, fin=False, mask=b"abcd"), 0.1)
    assert tap.audio_seconds == pytest.approx(0.01)
    tap.sent(_frame(0, b"\x00" * 320, mask=b"abcd"), 0.2)
    frames = read_recording(out).frames
    assert [(f.kind, len(f.data), f.audio) for f in frames] == [("binary", 640, 0.02)]


def test_timeline_marks_a_from_finalize_final_without_a_finalize() -> None:
    message = json.dumps(
        {"type": "Results", "is_final": True, "from_finalize": True, "start": 1, "duration": 1}
    )
    recording = read_recording(
        [
            *HEAD,
            json.dumps(
                {
                    "type": "frame",
                    "t": 0,
                    "audio": 2.0,
                    "dir": "recv",
                    "kind": "text",
                    "text": message,
                }
            ),
        ]
    )
    assert timeline(recording)[-1].endswith("final [1.00-2.00] from_finalize ''")


def _tapped(reads: list[tuple[str, bytes]]) -> list[str]:
    out: list[str] = []
    tap = WireTap(out.append)
    tap.sent(b"GET /v1/listen?encoding=mulaw&sample_rate=8000 HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    for direction, data in reads:
        (tap.sent if direction == "send" else tap.received)(data, 1.0)
    return out


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=400)), min_size=1, max_size=5))
def test_hot_paths_write_what_the_general_parser_writes(items: list[tuple[bool, bytes]]) -> None:
    frames = []
    for outbound, payload in items:
        if outbound:
            frames.append(
                ("send", _frame(2, payload, mask=b"\x05\x06\x07\x08") if payload else b"")
            )
        else:
            text = payload.decode("latin-1").encode()
            frames.append(("recv", _frame(1, text)))
    frames = [(d, f) for d, f in frames if f]
    whole = _tapped(frames)  # one frame per read: the fast paths
    split = _tapped([(d, part) for d, f in frames for part in (f[:1], f[1:])])  # general
    assert whole == split


def test_a_bearer_session_file_holds_no_token() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl"
    pipe = TappedPipe(client(auth=Auth.bearer(jwt)), emulator())
    pipe.stream(synthesize("Hi.", sample_rate=RATE))
    pipe.client.close_stream(now=pipe.now)
    pipe.advance(1.0)
    text = pipe.file.getvalue()
    assert pipe.recording().accepted
    for part in jwt.split("."):
        assert part not in text


def test_server_messages_are_spliced_raw_and_read_back_byte_for_byte() -> None:
    out: list[str] = []
    tap = WireTap(out.append)
    tap.sent(b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    messages = [
        '{"type": "Results",  "x": "a\\u2028b \u2028 c"}',  # odd spacing, a line separator
        '{"type": "Results", "broken": }',  # not JSON, yet braced: spliced, still loads
        '{"two":\n"lines"}',  # a newline: escaped as a "text" string instead
        "plain text",
        '{"kind":"text","json":{}}',  # the marker inside a message
    ]
    for message in messages:
        tap.received(_frame(1, message.encode()), 0.1)
    lines = "".join(out).split("\n")
    assert [json.loads(line) for line in lines if line and "broken" not in line]
    assert sum('"json":' in line for line in lines) == 3
    recording = read_recording(lines)
    assert [f.text for f in recording.frames] == messages
    assert recording.frames[0].message_type == "Results"
    bad = '{"type":"frame","t":0,"audio":null,"dir":"recv","kind":"text","json":{"a":1'
    with pytest.raises(RecordingError, match="not JSON"):
        read_recording([*lines[:3], bad])
    not_a_frame = '{"type":"x","kind":"text","json":{}}'
    with pytest.raises(RecordingError, match="unexpected record"):
        read_recording([*lines[:3], not_a_frame])
    broken_head = '{"type":"frame",,"kind":"text","json":{}}'
    with pytest.raises(RecordingError, match="not JSON"):
        read_recording([*lines[:3], broken_head])


def test_sidecar_tap_flushes_big_buffers_and_stores_reassembled_frames() -> None:
    from dgproto._recording import read_recordings
    from dgproto._wiretap import AUDIO_FLUSH

    flushed: list[bytes] = []
    lines: list[str] = []
    tap = WireTap(
        lines.append, sidecar="s.audio", flush_audio=lambda: flushed.append(tap.take_audio())
    )
    alone = WireTap(lines.append, sidecar="t.audio")  # nobody flushes: it keeps buffering
    for t in (tap, alone):
        t.sent(b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\n\r\n", 0.0)
        t.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    chunk = _frame(2, bytes(60000), mask=b"abcd")
    for _ in range(AUDIO_FLUSH // len(chunk) + 1):
        tap.sent(chunk, 0.1)
        alone.sent(chunk, 0.1)
    assert flushed
    assert len(flushed[0]) > AUDIO_FLUSH
    assert alone.audio_buffer is not None
    assert len(alone.audio_buffer) > AUDIO_FLUSH
    # Several frames in one write take the general path: stored unmasked, any size.
    out: list[str] = []
    general = WireTap(out.append, sidecar="g.audio")
    general.sent(b"GET /v1/listen?encoding=linear16&sample_rate=16000 HTTP/1.1\r\n\r\n", 0.0)
    general.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    sizes = [10, 300, 70000]
    general.sent(b"".join(_frame(2, bytes([n % 251]) * n, mask=b"wxyz") for n in sizes), 0.2)
    blocks = b"".join(
        BLOCK.pack(AUDIO_TAG, 1, len(frame), 0.0) + struct.pack("<d", 0.2) + frame
        for frame in (_frame(2, bytes([n % 251]) * n) for n in sizes)
    )
    assert general.take_audio() == blocks
    assert general.take_audio() == b""
    general.received(_frame(1, b'{"type":"Metadata"}'), 0.3)
    reads = general.take_audio()
    assert reads.startswith(BLOCK.pack(READS_TAG, 1, 21, 0.0))
    (recording,) = read_recordings(out, blocks + reads)
    assert [len(f.data) for f in recording.frames if f.kind == "binary"] == sizes
    assert recording.frames[-1].message_type == "Metadata"


def test_sidecar_audio_of_a_request_without_a_byte_rate_has_no_clock() -> None:
    out: list[str] = []
    tap = WireTap(out.append, sidecar="x.audio")
    tap.sent(b"GET /v1/listen?sample_rate=abc HTTP/1.1\r\n\r\n", 0.0)
    tap.received(b"HTTP/1.1 101 OK\r\n\r\n", 0.0)
    tap.sent(_frame(2, bytes(640), mask=b"abcd"), 0.1)
    (frame,) = read_recording(out, tap.take_audio()).frames
    assert (frame.kind, frame.audio, frame.t) == ("binary", None, 0.1)
