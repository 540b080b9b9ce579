"""``dgproto transcribe --record FILE`` and ``dgproto replay FILE``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dgproto.emulator import synthesize
from dgproto.transports.cli import main
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .test_cli import KEY, TEXT, finals, run, stream_args, write_wav


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulatorServer]:
    with serve_in_thread() as emulator:
        yield emulator


def test_transcribe_records_and_replay_prints_it_without_a_network(
    server: ThreadedEmulatorServer, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "hello.wav", synthesize(TEXT))
    path = tmp_path / "session.jsonl"
    result = run("transcribe", str(wav), *stream_args(server, "--record", str(path)))
    assert result.returncode == 0, result.stderr
    assert KEY not in path.read_text()
    assert Path(str(path) + ".audio").stat().st_size > 0

    replayed = run("replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    lines = replayed.stdout.splitlines()
    assert lines[0] == finals(result.stdout) == TEXT
    timeline = "\n".join(lines[2:])
    assert "handshake 101 accepted" in timeline
    assert "final [" in timeline
    assert "CloseStream" in timeline
    assert "close 1000 from server" in timeline


def test_replay_shows_every_socket_of_a_reconnected_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dgproto.emulator import FaultPlan
    from dgproto.transports import sync

    from .test_reconnect import AUDIO, CHUNK, FAST, OPTIONS, POLICY
    from .test_reconnect import emulator as reconnect_emulator

    path = tmp_path / "two.jsonl"
    with (
        reconnect_emulator([FaultPlan(drop_after_messages=1)]) as srv,
        sync.connect(OPTIONS, url=srv.url, config=FAST, reconnect=POLICY, record=path) as stream,
    ):
        for i in range(0, len(AUDIO), CHUNK):
            stream.send_audio(AUDIO[i : i + CHUNK])
        stream.close()
        sockets = 1 + stream.reconnects
    assert sockets > 1
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"socket 1 of {sockets}\n")
    assert out.count("handshake 101 accepted") == sockets


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"not json at all\n", "is not a dgproto recording: line 1: not JSON"),
        (b"\xff\xfe garbage", "not a text file"),
        (b'{"format":"dgproto-recording","version":9}\n', "version 9 is not supported"),
    ],
)
def test_replay_of_a_bad_file_is_one_line_and_status_2(
    tmp_path: Path, content: bytes | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert main(["replay", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_record_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "hello.wav", synthesize(TEXT))
    target = tmp_path / "missing-dir" / "session.jsonl"
    status = main(["transcribe", str(wav), "--url", "ws://127.0.0.1:9", "--record", str(target)])
    assert status == 2


def test_verbose_in_process_leaves_no_log_handler_behind(tmp_path: Path) -> None:
    """``main(["-v", ...])`` called in-process (tests, embedders) undoes its DEBUG trace:
    a handler left on the ``dgproto`` logger would write to a stderr closed since."""
    import logging

    logger = logging.getLogger("dgproto")
    before = (list(logger.handlers), logger.level)
    assert main(["-v", "replay", str(tmp_path / "missing.jsonl")]) == 2
    assert (list(logger.handlers), logger.level) == before


def test_replay_frames_prints_every_frame_of_both_files_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    fixtures = Path(__file__).parent / "fixtures" / "recordings"
    assert main(["replay", "--frames", str(fixtures / "v2_session.jsonl")]) == 0
    frames = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {f["socket"] for f in frames} == {1}
    audio = [f for f in frames if f["kind"] == "binary"]
    assert sum(f["bytes"] for f in audio) == len(synthesize("Hello world. This is a test."))
    results = [f for f in frames if f["kind"] == "text" and '"Results"' in f["text"]]
    assert results[0]["audio"] == 0.54
    assert frames[-2:] == [
        {"socket": 1, "t": t, "audio": 2.18, "dir": d, "kind": "close"}
        | {"code": 1000, "reason": ""}
        for t, d in ((0.555794, "recv"), (0.556511, "send"))
    ]
    # A cut copy: the timeline and the frames say so.
    cut = tmp_path / "v2_session.jsonl"
    shutil.copy(fixtures / "v2_session.jsonl", cut)
    shutil.copy(fixtures / "v2_session.jsonl.audio", tmp_path)
    cut.write_text(cut.read_text()[:-10])
    assert main(["replay", "--frames", str(cut)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"socket": 1, "truncated": True}
    assert main(["replay", str(cut)]) == 0
    assert "the file was cut short" in capsys.readouterr().out


def test_replay_frames_shows_ping_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from dgproto._recording import Recorder

    recorder = Recorder()
    lines = [
        recorder.header(),
        recorder.request(method="GET", target="/v1/listen", headers=[], now=1.0),
        recorder.response(status=101, headers=[], body=b"", now=1.0),
        recorder.frame("recv", "ping", b"hi", now=1.5, audio_seconds=None),
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(lines))
    assert main(["replay", "--frames", str(path)]) == 0
    (frame,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert frame == {"socket": 1, "t": 0.5, "audio": None, "dir": "recv", "kind": "ping"} | {
        "data": "aGk="
    }
