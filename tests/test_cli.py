"""The ``dgproto`` command line, run as users run it: ``python -m dgproto`` in a subprocess
against an emulator in this process (a background thread), plus a few pure helpers.

Audio is generated with the tone codec, so every transcript is known exactly.
"""

from __future__ import annotations

import json
import os
import pty
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import wave
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dgproto import (
    Alternative,
    Closed,
    ConfigureSuccess,
    Connected,
    Event,
    FinalizeComplete,
    Results,
    ServerError,
    SpeechStarted,
    UtteranceEnd,
    Word,
)
from dgproto.emulator import EmulatorConfig, FaultPlan, synthesize
from dgproto.transports.cli import TextView, build_parser, event_json, main
from dgproto.transports.cli.views import describe_event, final_text
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

REPO = Path(__file__).resolve().parents[1]
TEXT = "Hello from dgproto. Tones carry words."
KEY = "sk-test-7f3a9c"  # must never be echoed
TRANSPORTS = ["asyncio", "trio", "sync"]


# --------------------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DEEPGRAM_API_KEY"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dgproto", *args]


def run(
    *args: str, stdin: bytes | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        _command(*args), cwd=REPO, input=stdin, capture_output=True, timeout=timeout, env=_env()
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def finals(stdout: str) -> str:
    return " ".join(
        e["transcript"]
        for e in events(stdout)
        if e["event"] == "Results" and e["is_final"] and e["transcript"]
    )


def write_wav(
    path: Path, frames: bytes, *, width: int = 2, channels: int = 1, rate: int = 16000
) -> Path:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return path


def stream_args(server: ThreadedEmulatorServer, *more: str) -> list[str]:
    return ["--url", server.url, "--api-key", KEY, "--punctuate", "--speed", "0", *more]


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulatorServer]:
    with serve_in_thread() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def hello_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "hello.wav", synthesize(TEXT))


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = " ".join(["Streaming goes on and on."] * 6)
    return write_wav(tmp_path_factory.mktemp("audio") / "long.wav", synthesize(text))


class Running:
    """A CLI process whose stdout is read line by line, killed if a test hangs."""

    def __init__(self, *args: str, stdin: int | None = None) -> None:
        self.proc = subprocess.Popen(
            _command(*args),
            cwd=REPO,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        self._watchdog = threading.Timer(30, self.proc.kill)
        self._watchdog.start()
        self.lines: list[str] = []

    def read_until(self, predicate: Any) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode()
            self.lines.append(line)
            event = json.loads(line)
            if predicate(event):
                return event  # type: ignore[no-any-return]
        raise AssertionError(f"the process ended first: {self.lines}")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate()
        self._watchdog.cancel()
        return self.proc.returncode, "".join(self.lines) + out.decode(), err.decode()


# --------------------------------------------------------------------------- input forms


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wav_file_streams_to_the_emulator_on_every_transport(
    server: ThreadedEmulatorServer, hello_wav: Path, transport: str
) -> None:
    result = run("transcribe", str(hello_wav), *stream_args(server, "--transport", transport))
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT
    kinds = [e["event"] for e in events(result.stdout)]
    assert kinds[0] == "Connected"
    assert kinds[-3:] == ["Metadata", "Closed", "Summary"]
    summary = events(result.stdout)[-1]
    assert summary["finals"] == 2
    assert summary["close_code"] == 1000
    assert summary["interrupted"] is False
    assert summary["audio_seconds"] == pytest.approx(len(synthesize(TEXT)) / 32000, abs=0.001)
    assert summary["request_id"] == events(result.stdout)[0]["request_id"]
    assert isinstance(summary["lag_median"], float)
    assert summary["lag_p95"] >= summary["lag_median"]


def _int16_to(width: int, frames: bytes) -> bytes:
    """Re-encode int16 samples as 8-bit unsigned, 24-bit or 32-bit WAV samples."""
    samples = [frames[i : i + 2] for i in range(0, len(frames), 2)]
    if width == 1:
        return bytes((s[1] ^ 0x80) for s in samples)
    return b"".join(b"\x00" * (width - 2) + s for s in samples)


@pytest.mark.parametrize(("width", "channels"), [(1, 1), (3, 2)])
def test_wav_of_any_pcm_width_and_channel_count(
    server: ThreadedEmulatorServer, tmp_path: Path, width: int, channels: int
) -> None:
    frames = _int16_to(width, synthesize(TEXT, channels=channels))
    path = write_wav(tmp_path / "x.wav", frames, width=width, channels=channels)
    result = run("transcribe", str(path), *stream_args(server))
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


def test_raw_file_with_encoding_flags(server: ThreadedEmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "hello.mulaw"
    path.write_bytes(synthesize(TEXT, sample_rate=8000, encoding="mulaw"))
    flags = ["--encoding", "mulaw", "--sample-rate", "8000"]
    result = run("transcribe", str(path), *stream_args(server, *flags))
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


def test_raw_audio_on_stdin(server: ThreadedEmulatorServer) -> None:
    audio = synthesize(TEXT, sample_rate=8000, encoding="alaw", channels=2)
    flags = ["--encoding", "alaw", "--sample-rate", "8000", "--channels", "2"]
    result = run("transcribe", "-", *stream_args(server, *flags), stdin=audio)
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


def test_wav_on_stdin_is_recognized_by_its_header(
    server: ThreadedEmulatorServer, hello_wav: Path
) -> None:
    result = run(
        "transcribe", "-", *stream_args(server, "--transport", "sync"), stdin=hello_wav.read_bytes()
    )
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


def test_synth_output_piped_into_transcribe(server: ThreadedEmulatorServer) -> None:
    synth = subprocess.run(
        _command("synth", TEXT, "-o", "-", "--encoding", "linear32", "--sample-rate", "24000"),
        cwd=REPO, capture_output=True, timeout=30, env=_env(), check=True,
    )  # fmt: skip
    assert synth.stdout == synthesize(TEXT, encoding="linear32", sample_rate=24000)
    flags = ["--encoding", "linear32", "--sample-rate", "24000"]
    result = run("transcribe", "-", *stream_args(server, *flags), stdin=synth.stdout)
    assert finals(result.stdout) == TEXT


def test_realtime_paces_audio_at_real_time(server: ThreadedEmulatorServer, tmp_path: Path) -> None:
    audio = synthesize("Paced.")  # about 0.8 s
    seconds = len(audio) / 32000
    path = write_wav(tmp_path / "paced.wav", audio)
    result = run("transcribe", str(path), "--url", server.url, "--api-key", KEY, "--realtime")
    summary = events(result.stdout)[-1]
    # Each chunk leaves when the audio before it has played: the last at (duration - 0.1 s),
    # where an unpaced run takes a few milliseconds.
    assert summary["elapsed_seconds"] >= seconds - 0.15


def test_deepgram_options_reach_the_server(server: ThreadedEmulatorServer, hello_wav: Path) -> None:
    flags = [
        "--model", "nova-3", "--language", "en-US", "--interim-results", "--smart-format",
        "--endpointing", "false", "--utterance-end-ms", "1000", "--vad-events",
        "--keyterm", "dgproto", "--keyterm", "tone codec", "--param", "tag=cli",
        "--param", "tag=test", "--diarize", "--no-punctuate", "--chunk-ms", "40",
    ]  # fmt: skip
    result = run("transcribe", str(hello_wav), *stream_args(server), *flags)
    assert result.returncode == 0, result.stderr
    request_id = events(result.stdout)[0]["request_id"]
    record = next(r for r in server.connections if r.emulator.request_id == request_id)
    options = record.emulator.options
    assert options is not None
    assert (options.model, options.language, options.endpointing) == ("nova-3", "en-US", False)
    assert (options.interim_results, options.smart_format, options.punctuate) == (True, True, False)
    assert (options.utterance_end_ms, options.vad_events, options.diarize) == (1000, True, True)
    assert options.keyterm == ("dgproto", "tone codec")
    assert options.tag == ("cli", "test")
    assert (options.encoding, options.sample_rate, options.channels) == ("linear16", 16000, 1)
    assert "SpeechStarted" in {e["event"] for e in events(result.stdout)}


# --------------------------------------------------------------------------- terminal output


def test_terminal_output_has_a_status_line_finals_and_a_summary(
    server: ThreadedEmulatorServer, hello_wav: Path
) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        _command("transcribe", str(hello_wav), *stream_args(server, "--interim-results")),
        cwd=REPO, stdout=slave, stderr=subprocess.PIPE, env={**_env(), "COLUMNS": "30"},
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    screen = b"".join(chunks).decode()
    assert "\r\x1b[2K[" in screen  # the progress/status line, redrawn in place
    assert " s sent, lag " in screen
    assert "[00:00.0] Hello from dgproto.\r\n" in screen
    assert "[00:01.3] Tones carry words.\r\n" in screen  # the first word starts at 1.31 s
    assert "] Tones carry words.\r\n" in screen
    assert "Tones carry\r\n" not in screen  # an interim is overwritten, never a line
    for label in ("request id", "audio", "time taken", "finals      2", "lag         median"):
        assert label in screen
    assert "{" not in screen  # no JSON on a terminal
    status_lines = [part for part in screen.split("\r\x1b[2K") if " s sent, lag" in part]
    assert max(len(line) for line in status_lines) <= 29  # one column short of the width
    assert any(line.endswith("...") for line in status_lines)


def test_json_flag_wins_over_a_terminal_and_text_view_renders_speakers() -> None:
    word = Word(word="hi", start=61.6, end=61.8, confidence=1.0, speaker=1, punctuated_word="Hi.")
    other = Word(word="yo", start=0.3, end=0.5, confidence=1.0, speaker=0)
    same = Word(word="man", start=0.6, end=0.8, confidence=1.0, speaker=0)
    results = Results(
        channel_index=(1, 2), start=61.5, duration=1.0, is_final=True, speech_final=True,
        from_finalize=False,
        alternatives=(
            Alternative(transcript="hi yo man", confidence=1.0, words=(word, other, same)),
        ),
    )  # fmt: skip
    assert final_text(results) == "[channel 1] [Speaker 1] Hi. [Speaker 0] yo man"
    data = event_json(results, at=1.23456, lag=0.5)
    assert (data["event"], data["time"], data["lag"]) == ("Results", 1.235, 0.5)
    assert data["alternatives"][0]["words"][0]["speaker"] == 1
    assert not {"raw", "metadata"} & set(data)
    closed = event_json(Closed(code=1011, initiator="server", error_code="NET-0001"), at=0)
    assert closed["error_code"] == "NET-0001"

    class Out:
        text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    out = Out()
    view = TextView(out, live=False)  # type: ignore[arg-type]
    view.results(results, 0.25, 0.0)
    assert out.text == "[01:01.6] [channel 1] [Speaker 1] Hi. [Speaker 0] yo man  (lag 0.25 s)\n"


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (SpeechStarted(channel=(0, 1), timestamp=1.5), "<- SpeechStarted at 1.50 s"),
        (
            UtteranceEnd(channel=(0, 1), last_word_end=2.25),
            "<- UtteranceEnd (last word ended at 2.25 s)",
        ),
        (FinalizeComplete(channel=None, reason="timeout"), "<- FinalizeComplete (timeout)"),
        (ServerError(variant="SchemaError", description="bad"), "<- Error from the server: bad"),
        (ConfigureSuccess(), "<- ConfigureSuccess"),
        (Connected(request_id="r-1"), "<- Connected, request id r-1"),
        (Closed(code=1000, initiator="server"), None),
    ],
)
def test_text_view_describes_each_event(event: Event, line: str | None) -> None:
    assert describe_event(event) == line


# --------------------------------------------------------------------------- errors


def test_no_key_and_no_url_explains_the_emulator(hello_wav: Path) -> None:
    result = run("transcribe", str(hello_wav))
    assert result.returncode == 2
    first, *rest = result.stderr.splitlines()
    assert first == (
        "dgproto transcribe: no Deepgram API key: pass --api-key KEY or set DEEPGRAM_API_KEY"
    )
    hint = "\n".join(rest)
    for advice in ("dgproto serve", "dgproto demo", "--url ws://"):
        assert advice in hint
    assert "Traceback" not in result.stderr


def test_no_key_for_a_deepgram_url_is_one_line(hello_wav: Path) -> None:
    result = run("transcribe", str(hello_wav), "--url", "wss://eu.api.deepgram.com/v1/listen")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "dgproto transcribe: no Deepgram API key: pass --api-key KEY or set DEEPGRAM_API_KEY"
    ]


def any_wav(
    tag: int,
    bits: int,
    data: bytes,
    *,
    rate: int = 16000,
    channels: int = 1,
    extensible: bool = False,
    streaming: bool = False,
) -> bytes:
    """A WAV of any format tag, written by hand (``wave`` only writes PCM): with
    ``extensible``, as WAVE_FORMAT_EXTENSIBLE (sox's 24-bit output); with ``streaming``,
    a data size of 0xFFFFFFFF as written to a pipe. A LIST chunk comes first, as sox's."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align,
                      align, bits)  # fmt: skip
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + guid_tail
    size = 0xFFFFFFFF if streaming else len(data)
    body = b"WAVE" + b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    body += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _floats(frames: bytes, code: str) -> bytes:
    samples = array("h", frames)
    return struct.pack(f"<{len(samples)}{code}", *(v / 32768 for v in samples))


@pytest.mark.parametrize(
    ("tag", "bits", "make", "extensible"),
    [
        (7, 8, lambda: synthesize(TEXT, sample_rate=8000, encoding="mulaw"), False),
        (6, 8, lambda: synthesize(TEXT, sample_rate=8000, encoding="alaw"), False),
        (3, 32, lambda: _floats(synthesize(TEXT, sample_rate=8000), "f"), False),
        (3, 64, lambda: _floats(synthesize(TEXT, sample_rate=8000), "d"), False),
        (1, 24, lambda: _int16_to(3, synthesize(TEXT, sample_rate=8000)), True),
        (7, 8, lambda: synthesize(TEXT, sample_rate=8000, encoding="mulaw"), True),
    ],
)
def test_wav_formats_people_have(
    server: ThreadedEmulatorServer, tmp_path: Path, tag: int, bits: int, make: Any,
    extensible: bool,
) -> None:  # fmt: skip
    path = tmp_path / "x.wav"
    path.write_bytes(any_wav(tag, bits, make(), rate=8000, extensible=extensible))
    result = run("transcribe", str(path), *stream_args(server, "--json"))
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT
    sent = server.connections[-1].emulator.options
    assert sent is not None
    want = {7: "mulaw", 6: "alaw", 3: "linear16", 1: "linear32"}[tag]
    assert (sent.encoding, sent.sample_rate) == (want, 8000)


def test_streamed_wav_on_stdin_reads_to_the_end(server: ThreadedEmulatorServer) -> None:
    audio = any_wav(7, 8, synthesize(TEXT, sample_rate=8000, encoding="mulaw"), rate=8000,
                    streaming=True)  # fmt: skip
    result = run("transcribe", "-", *stream_args(server), stdin=audio)
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"OggS\x00\x02", "ogg"),
        (b"fLaC\x00\x00", "flac"),
        (b"\x1a\x45\xdf\xa3\x01", "webm"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
    ],
)
def test_containers_pass_through_with_no_encoding(
    server: ThreadedEmulatorServer, tmp_path: Path, head: bytes, container: str
) -> None:
    path = tmp_path / f"x.{container}"
    path.write_bytes(head + bytes(10000))
    result = run("transcribe", str(path), "--url", server.url, "--api-key", KEY, "--json")
    assert result.returncode == 0, result.stderr
    summary = events(result.stdout)[-1]
    assert summary["audio_bytes"] == len(head) + 10000
    assert summary["audio_seconds"] is None
    assert summary["finals"] == 0
    assert "cannot transcribe encoded or container audio" in summary["warnings"][0]
    options = server.connections[-1].emulator.options
    assert options is not None
    assert (options.encoding, options.sample_rate, options.channels) == (None, None, None)


def test_container_cannot_be_paced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.flac"
    path.write_bytes(b"fLaC" + bytes(100))
    assert main(["transcribe", str(path), "--url", "ws://127.0.0.1:9", "--realtime"]) == 2
    assert "--realtime and --speed need WAV or raw audio: flac has no fixed byte rate" in (
        capsys.readouterr().err
    )


def test_real_speech_against_the_emulator_says_why_the_transcript_is_empty(
    server: ThreadedEmulatorServer, tmp_path: Path
) -> None:
    rng = random.Random(5)
    noise = array("h", (rng.randint(-15000, 15000) for _ in range(16000 * 3))).tobytes()
    path = write_wav(tmp_path / "speech.wav", noise)
    result = run("transcribe", str(path), *stream_args(server, "--json"))
    assert result.returncode == 0, result.stderr
    (warning,) = events(result.stdout)[-1]["warnings"]
    assert "only understands tone-coded audio from `dgproto synth`" in warning


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.wav", "cannot read missing.wav: No such file or directory"),
        (
            "adpcm.wav",
            "adpcm.wav is not a WAV dgproto can send: 4-bit format 2 WAV is not "
            "supported; dgproto reads PCM",
        ),
        ("cut.wav", "cut.wav is not a WAV dgproto can send: it has no data chunk"),
        ("notes.txt", "notes.txt is not WAV, mp3, ogg, flac, webm or m4a; for raw audio give"),
    ],
)
def test_unreadable_or_unsupported_file_is_one_line_and_exit_2(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "adpcm.wav").write_bytes(any_wav(2, 4, bytes(100)))
    (tmp_path / "cut.wav").write_bytes(any_wav(1, 16, b"")[:-8])
    (tmp_path / "notes.txt").write_text("not audio\n")
    result = subprocess.run(
        _command("transcribe", name, "--url", "ws://127.0.0.1:9/v1/listen"),
        cwd=tmp_path, capture_output=True, text=True, timeout=30, env=_env(),
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"dgproto transcribe: {message}")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["."], "cannot read .: Is a directory"),
        (["notes.txt", "--encoding", "linear16"], "raw linear16 audio needs --sample-rate"),
        (["x.wav", "--channels", "2"], "--sample-rate and --channels describe raw audio"),
        (["x.wav", "--utterance-end-ms", "1000"], "invalid option: LiveOptions.utterance_end_ms"),
        (["x.wav", "--param", "novalue"], "--param wants KEY=VALUE, got 'novalue'"),
        (["x.wav", "--param", "model=x", "--model", "y"], "collides with the typed field"),
    ],
)
def test_more_bad_input_before_connecting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    """Checked in-process (``main()``): these fail before any I/O but the file reads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not audio\n")
    write_wav(tmp_path / "x.wav", synthesize("x"))
    assert main(["transcribe", *args, "--url", "ws://127.0.0.1:9/v1/listen"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("dgproto transcribe: ")
    assert message in line


def test_handshake_rejected_shows_status_code_message_and_request_id(hello_wav: Path) -> None:
    with serve_in_thread(config=EmulatorConfig(accepted_keys=["the-right-key"])) as strict:
        result = run("transcribe", str(hello_wav), "--url", strict.url, "--api-key", KEY)
    assert result.returncode == 1
    line, hint = result.stderr.splitlines()
    assert line.startswith(f"dgproto transcribe: {strict.url.split('/')[2]} refused the stream: ")
    assert "HTTP 401, err_code=INVALID_AUTH, err_msg='Invalid credentials.', request_id=" in line
    assert hint.startswith("the server did not accept the key from --api-key; `dgproto serve`")
    assert KEY not in result.stderr + result.stdout


def test_emulator_without_key_gets_a_hint(server: ThreadedEmulatorServer, hello_wav: Path) -> None:
    result = run("transcribe", str(hello_wav), "--url", server.url)
    assert result.returncode == 1
    first, hint = result.stderr.splitlines()
    assert "HTTP 401" in first
    assert hint == (
        "the server wants an API key: pass --api-key KEY (or start `dgproto serve` with --no-auth)"
    )


def test_environment_key_is_used_on_loopback_ws(hello_wav: Path) -> None:
    """A key in clear text over ws://127.0.0.1 never leaves the machine: it is sent."""
    with serve_in_thread(config=EmulatorConfig(accepted_keys=[KEY])) as strict:
        env = {**_env(), "DEEPGRAM_API_KEY": KEY}
        result = subprocess.run(
            _command("transcribe", str(hello_wav), "--url", strict.url, "--json"),
            cwd=REPO, capture_output=True, timeout=30, env=env, text=True,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert events(result.stdout)[-1]["close_code"] == 1000
    assert KEY not in result.stderr + result.stdout


def test_wrong_environment_key_names_its_source(hello_wav: Path) -> None:
    with serve_in_thread(config=EmulatorConfig(accepted_keys=["K"])) as strict:
        env = {**_env(), "DEEPGRAM_API_KEY": KEY}
        result = subprocess.run(
            _command("transcribe", str(hello_wav), "--url", strict.url),
            cwd=REPO, capture_output=True, timeout=30, env=env, text=True,
        )  # fmt: skip
    assert result.returncode == 1
    hint = result.stderr.splitlines()[1]
    assert hint.startswith("the server did not accept the key from $DEEPGRAM_API_KEY;")
    assert KEY not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8765/v1/listen", "not http://: try ws://127.0.0.1:8765/v1/listen"),
        ("https://api.deepgram.com/v1/listen", "try wss://api.deepgram.com/v1/listen"),
        ("127.0.0.1:8765", "--url must be a ws:// or wss:// URL, e.g. ws://"),
        ("ws://user:pw@127.0.0.1/v1/listen", "--url must not hold user:password@"),
        ("ws://127.0.0.1:notaport/v1/listen", "--url has a bad port 'notaport'"),
        ("ws://127.0.0.1:99999/v1/listen", "--url has a bad port '99999'"),
        ("ws://:8765/v1/listen", "--url has no host"),
    ],
)
def test_bad_url_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], hello_wav: Path, url: str, message: str
) -> None:
    assert main(["transcribe", str(hello_wav), "--url", url, "--api-key", "k"]) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("dgproto transcribe: ")
    assert message in line
    assert "pw" not in line


def test_empty_api_key_is_one_line(capsys: pytest.CaptureFixture[str], hello_wav: Path) -> None:
    assert main(["transcribe", str(hello_wav), "--api-key", "", "--url", "ws://127.0.0.1:9"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "dgproto transcribe: --api-key is empty: give your key, or leave the flag out to use "
        "$DEEPGRAM_API_KEY"
    )


def test_serve_bad_port_exits_2_without_traceback() -> None:
    result = run("serve", "--port", "99999")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        "dgproto serve: error: argument --port: a port is 0..65535 (0 picks a free one), "
        "got 99999 (see dgproto serve --help)\n"
    )  # one line: argparse's usage block is not printed


def test_synth_into_a_closed_pipe_is_quiet() -> None:
    text = "hello world " * 300
    command = " ".join(_command("synth", repr(text), "-o", "-"))
    result = subprocess.run(
        f"{command} | head -c 10 > /dev/null; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", cwd=REPO, capture_output=True, text=True,
        timeout=30, env=_env(),
    )  # fmt: skip
    assert result.stderr == ""
    assert result.returncode in (0, 1)


def test_connection_refused(hello_wav: Path) -> None:
    result = run("transcribe", str(hello_wav), "--url", "ws://127.0.0.1:9/v1/listen")
    assert result.returncode == 1
    assert (
        result.stderr == "dgproto transcribe: cannot connect to 127.0.0.1:9: Connection refused\n"
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_lost_shows_code_and_reason(long_wav: Path, transport: str) -> None:
    faults = FaultPlan(close_after_messages=1, close_code=1011, close_reason="net0001 went away")
    with serve_in_thread(faults=faults) as flaky:
        result = run(
            "transcribe", str(long_wav), "--url", flaky.url, "--api-key", KEY, "--speed", "0",
            "--transport", transport,
        )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "dgproto transcribe: connection lost: close code 1011 NET-0001 (net0001 went away), after "
    )
    assert events(result.stdout)[-1]["event"] == "Summary"  # what arrived is still shown


def test_server_hanging_up_during_the_handshake(hello_wav: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        result = run("transcribe", str(hello_wav), "--url", f"ws://127.0.0.1:{port}/v1/listen")
        thread.join()
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"dgproto transcribe: connection lost during the handshake with 127.0.0.1:{port}: "
        "close code 1006"
    )


def test_a_reader_that_goes_away_is_not_a_traceback(
    server: ThreadedEmulatorServer, long_wav: Path
) -> None:
    cli = Running("transcribe", str(long_wav), "--url", server.url, "--api-key", KEY, "--realtime")
    cli.read_until(lambda e: e["event"] == "Connected")
    assert cli.proc.stdout is not None
    cli.proc.stdout.close()  # like `| head -1`
    assert cli.proc.wait(timeout=30) == 1
    assert cli.proc.stderr is not None
    assert cli.proc.stderr.read() == b""


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ctrl_c_sends_closestream_and_prints_a_summary(
    server: ThreadedEmulatorServer, long_wav: Path, transport: str
) -> None:
    cli = Running(
        "transcribe", str(long_wav), "--url", server.url, "--api-key", KEY, "--realtime",
        "--punctuate", "--transport", transport,
    )  # fmt: skip
    first = cli.read_until(lambda e: e["event"] == "Results" and e["is_final"])
    cli.proc.send_signal(signal.SIGINT)
    status, out, err = cli.finish()
    assert status == 130
    assert "interrupted: sending CloseStream" in err
    assert "Traceback" not in err
    *_, closed, summary = events(out)
    assert (closed["event"], closed["code"], closed["clean"]) == ("Closed", 1000, True)
    assert (summary["event"], summary["interrupted"]) == ("Summary", True)
    assert summary["finals"] >= 1
    assert first["transcript"] == "Streaming goes on and on."
    assert summary["audio_seconds"] < len(synthesize("Streaming goes on and on.")) * 6 / 32000
    request_id = events(out)[0]["request_id"]
    record = next(r for r in server.connections if r.emulator.request_id == request_id)
    types = [m.type for m in record.emulator.received_text_messages]
    assert types[-1] == "CloseStream"


def test_ctrl_c_while_stdin_has_no_data(server: ThreadedEmulatorServer) -> None:
    cli = Running(
        "transcribe", "-", "--encoding", "linear16", "--sample-rate", "16000", "--url",
        server.url, "--api-key", KEY, stdin=subprocess.PIPE,
    )  # fmt: skip
    cli.read_until(lambda e: e["event"] == "Connected")
    cli.proc.send_signal(signal.SIGINT)
    status, out, _ = cli.finish()  # stdin is still open: the reader thread must not block exit
    assert status == 130
    summary = events(out)[-1]
    assert (summary["interrupted"], summary["audio_seconds"]) == (True, 0)


def test_second_ctrl_c_quits_at_once(long_wav: Path) -> None:
    with serve_in_thread(faults=FaultPlan(stall_after_messages=1)) as stalled:
        cli = Running("transcribe", str(long_wav), "--url", stalled.url, "--api-key", KEY)
        cli.read_until(lambda e: e["event"] == "Connected")
        cli.proc.send_signal(signal.SIGINT)
        assert cli.proc.stderr is not None
        assert b"interrupted" in cli.proc.stderr.readline()  # now waiting for the close
        cli.proc.send_signal(signal.SIGINT)
        status, _, _ = cli.finish()
    assert status == -signal.SIGINT


# --------------------------------------------------------------------------- other commands


def test_synth_writes_a_wav_the_emulator_transcribes_back(
    server: ThreadedEmulatorServer, tmp_path: Path
) -> None:
    result = subprocess.run(
        _command("synth", TEXT, "-o", "out.wav", "--sample-rate", "8000"),
        cwd=tmp_path, capture_output=True, text=True, timeout=30, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote out.wav: ")
    assert "dgproto transcribe out.wav --url ws://" in result.stdout
    with wave.open(str(tmp_path / "out.wav")) as reader:
        assert (reader.getframerate(), reader.getsampwidth(), reader.getnchannels()) == (8000, 2, 1)
    again = run("transcribe", str(tmp_path / "out.wav"), *stream_args(server))
    assert finals(again.stdout) == TEXT


def test_synth_refuses_mulaw_in_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "x", "-o", str(tmp_path / "x.wav"), "--encoding", "mulaw"]) == 2
    assert capsys.readouterr().err.startswith("dgproto synth: a WAV file holds linear16")
    raw = tmp_path / "x.raw"
    assert main(["synth", "x", "-o", str(raw), "--encoding", "mulaw", "--channels", "2"]) == 0
    assert "--encoding mulaw --sample-rate 16000 --channels 2 --url" in capsys.readouterr().out
    assert raw.read_bytes() == synthesize("x", encoding="mulaw", channels=2)


def test_serve_prints_its_url_logs_each_connection_and_stops_on_ctrl_c(hello_wav: Path) -> None:
    proc = subprocess.Popen(
        _command("serve", "--port", "0"),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("dgproto emulator listening on ws://127.0.0.1:")
    url = line.split()[-1]
    ok = run("transcribe", str(hello_wav), "--url", url, "--api-key", KEY, "--json")
    refused = run("transcribe", str(hello_wav), "--url", url)
    assert (ok.returncode, refused.returncode) == (0, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    request_id = events(ok.stdout)[-1]["request_id"]
    first, second = err.splitlines()
    assert first.startswith("dgproto serve: connection 1 from 127.0.0.1:")
    assert first.endswith(f", /v1/listen, request id {request_id}, close code 1000")
    assert second.startswith("dgproto serve: connection 2 from 127.0.0.1:")
    assert second.endswith("refused with HTTP 401")
    assert KEY not in err


def test_raw_json_prints_deepgrams_messages_as_they_came(
    server: ThreadedEmulatorServer, hello_wav: Path
) -> None:
    result = run("transcribe", *stream_args(server, "--raw-json"), str(hello_wav))
    assert result.returncode == 0, result.stderr
    messages = events(result.stdout)
    assert [m["type"] for m in messages][-1] == "Metadata"
    results = [m for m in messages if m["type"] == "Results" and m["is_final"]]
    text = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in results).strip()
    assert text == TEXT
    assert "metadata" in results[0]  # the whole message, not dgproto's schema
    assert "event" not in messages[0]
    assert "final(s)" in result.stderr


def test_version() -> None:
    from dgproto import __version__

    result = run("--version")
    assert (result.returncode, result.stdout) == (0, f"dgproto {__version__}\n")


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_traces_the_wire_with_the_key_redacted(
    server: ThreadedEmulatorServer, hello_wav: Path, where: str
) -> None:
    args = ["transcribe", *stream_args(server, "--json")]
    args = ["-v", *args] if where == "before" else [*args, "-v"]
    result = run(*args, str(hello_wav))
    assert result.returncode == 0, result.stderr
    assert "dgproto.transports.asyncio: -> upgrade request" in result.stderr
    assert "authorization: <redacted>" in result.stderr
    assert KEY not in result.stderr + result.stdout


def test_synth_at_44100_round_trips(server: ThreadedEmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "cd.wav"
    assert run("synth", TEXT, "-o", str(path), "--sample-rate", "44100").returncode == 0
    with wave.open(str(path)) as reader:
        assert reader.getframerate() == 44100
    result = run("transcribe", str(path), *stream_args(server))
    assert result.returncode == 0, result.stderr
    assert finals(result.stdout) == TEXT


def test_synth_reports_bad_text_and_unwritable_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", "x", "-o", str(tmp_path / "x.wav"), "--sample-rate", "44000"]) == 2
    assert capsys.readouterr().err.startswith("dgproto synth: sample_rate must be one of 8000,")
    assert main(["synth", "x", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"dgproto synth: cannot write {tmp_path}: Is a directory\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chunk-ms", "0"], "must be a positive number, got 0"),
        (["--chunk-ms", "fast"], "not a number: 'fast'"),
        (["--speed", "-1"], "must be a positive number, got -1"),
        (["--realtime", "--speed", "2"], "not allowed with argument --realtime"),
        (["--sample-rate", "8k"], "not an integer: '8k'"),
        (["--channels", "0"], "must be a positive integer, got 0"),
        (["--endpointing", "soon"], "milliseconds of silence or 'false', got 'soon'"),
        (["--endpointing", "-5"], "must be >= 0 or 'false', got -5"),
        (["--transport", "curio"], "invalid choice: 'curio'"),
    ],
)
def test_bad_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe", "x.wav", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1


def test_flags_that_are_accepted_as_written() -> None:
    args = build_parser().parse_args(
        ["transcribe", "-", "--speed", "0", "--endpointing", "FALSE", "--chunk-ms", "20"]
    )
    assert (args.speed, args.endpointing, args.chunk_ms) == (0.0, False, 20.0)
    assert build_parser().parse_args(["transcribe", "-", "--endpointing", "300"]).endpointing == 300


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "dgproto: error: the following arguments are required: COMMAND (see dgproto --help)\n"
    )


def test_demo_runs_end_to_end() -> None:
    """``make demo`` runs ``python -m dgproto demo``; ``--fast`` divides its times by ten."""
    result = run("demo", "--fast")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "emulator is listening on ws://127.0.0.1:" in out
    assert "   ~ " in out  # interim results
    assert "<- FinalizeComplete (from_finalize)" in out
    assert out.count("-> KeepAlive, ") == 3  # 1.1 s of silence, one every 0.3 s
    assert "this demo sets Config(keepalive_interval=0.3), so dgproto sends KeepAlive" in out
    assert "-> CloseStream" in out
    assert "<- Metadata: " in out
    assert "model emulator-tone" in out
    assert "OK: the final transcript equals the synthesized text." in out
    order = [
        out.index(s) for s in ("Finalize:", "-> KeepAlive", "part 2", "CloseStream", "Metadata")
    ]
    assert order == sorted(order)


def _without_trio(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python where ``import trio`` fails, as without the extra."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.modules['trio'] = None\n{code}"],
        cwd=REPO, capture_output=True, text=True, timeout=30, env=_env(),
    )  # fmt: skip


def test_importing_the_trio_adapter_without_trio_names_the_extra() -> None:
    result = _without_trio("import dgproto.transports.trio")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "ImportError: dgproto.transports.trio needs trio, an optional dependency: "
        "pip install 'dgproto[trio]'"
    )


def test_transport_trio_without_trio_is_one_line(hello_wav: Path) -> None:
    result = _without_trio(
        "from dgproto.transports.cli import main\n"
        f"raise SystemExit(main(['transcribe', {str(hello_wav)!r}, '--transport', 'trio', "
        "'--url', 'ws://127.0.0.1:9', '--api-key', 'k']))"
    )
    assert result.returncode == 2
    assert result.stderr == (
        "dgproto transcribe: --transport trio needs trio: pip install 'dgproto[trio]'\n"
    )


def test_transcribe_reconnect_survives_a_dropped_socket(tmp_path: Path) -> None:
    """``--reconnect``: the first socket drops mid-stream; the transcript is whole, the
    reconnect is shown as an event and counted in the summary (JSON and text)."""
    wav = write_wav(tmp_path / "long.wav", synthesize(TEXT))
    with serve_in_thread(config=EmulatorConfig(require_auth=False, max_segment=0.5)) as srv:
        server = srv.server
        make = server._make_emulator
        plans = [FaultPlan(drop_after_messages=2)]

        def next_emulator() -> Any:
            server.faults = plans.pop(0) if plans else None
            return make()

        server._make_emulator = next_emulator  # type: ignore[method-assign]
        as_json = run("transcribe", str(wav), "--json", "--reconnect", *stream_args(srv))
    assert as_json.returncode == 0, as_json.stderr
    out = events(as_json.stdout)
    kinds = [e["event"] for e in out]
    assert "Reconnecting" in kinds
    assert "Reconnected" in kinds
    assert finals(as_json.stdout) == TEXT
    assert out[-1]["event"] == "Summary"
    assert out[-1]["reconnects"] == 1


def test_transcribe_without_reconnect_ends_with_the_drop(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "long.wav", synthesize(TEXT))
    config = EmulatorConfig(require_auth=False, faults=FaultPlan(drop_after_messages=2))
    with serve_in_thread(config=config) as srv:
        result = run("transcribe", str(wav), "--json", *stream_args(srv))
    kinds = [e["event"] for e in events(result.stdout)]
    assert "Reconnecting" not in kinds
    assert events(result.stdout)[-1]["reconnects"] == 0


def test_text_view_shows_reconnects_on_the_status_line_and_in_the_summary() -> None:
    from io import StringIO

    from dgproto import Reconnected, Reconnecting
    from dgproto.transports.cli.session import Summary

    out = StringIO()
    view = TextView(out, live=True)
    view.progress(1.0, 4.0, 0.2)
    lost = Closed(code=1006, initiator="transport", reason="connection lost")
    view.event(Reconnecting(attempt=1, delay=0.5, closed=lost), 1.0)
    view.event(Reconnected(attempt=1, request_id="r-2", replayed_seconds=0.75), 1.6)
    view.progress(2.0, 4.0, 0.2)
    text = out.getvalue()
    assert "<- connection lost (1006 connection lost); reconnecting in 0.5 s (attempt 1)" in text
    assert "<- reconnected (attempt 1, request id r-2), 0.75 s of audio replayed" in text
    assert "[1.0/4.0 s sent, lag 0.20 s, reconnects 1]" in text  # redrawn at once
    view.summary(
        Summary(
            request_id="r-2",
            audio_seconds=4.0,
            audio_bytes=128000,
            clocked=True,
            elapsed_seconds=5.0,
            finals=3,
            lag_median=0.2,
            lag_p95=0.3,
            interrupted=False,
            closed=None,
            metadata=None,
            reconnects=1,
        )
    )
    assert any(line.split() == ["reconnects", "1"] for line in out.getvalue().splitlines())
