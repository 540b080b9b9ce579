"""``dgproto transcribe --model flux-*``: Flux over ``/v2/listen`` from the CLI.

Against the emulator on loopback, in a subprocess like ``test_cli.py``; the text view's
turn handling is checked in-process.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from dgproto import Closed, TurnInfo
from dgproto._events import TurnWord
from dgproto.emulator import EmulatorConfig, FaultPlan, silence, synthesize
from dgproto.transports.cli import main
from dgproto.transports.cli.flux import FluxTextView
from dgproto.transports.server import serve_in_thread

from .test_cli import KEY, events, run, write_wav

SENTENCES = ["Hello from the command line.", "Flux ends this turn."]
TRANSPORTS = ["asyncio", "trio", "sync"]


def exit_code(args: list[str]) -> int:
    """``main(args)``'s status, also when argparse exits (a bad flag value)."""
    try:
        return main(args)
    except SystemExit as stop:
        return int(stop.code or 0)


def turn_ends(stdout: str) -> list[dict[str, Any]]:
    return [e for e in events(stdout) if e["event"] == "TurnInfo" and e["turn"] == "EndOfTurn"]


@pytest.fixture(scope="module")
def turns_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = b"".join(synthesize(s) + silence(0.6) for s in SENTENCES)
    return write_wav(tmp_path_factory.mktemp("audio") / "turns.wav", audio)


def flux_args(url: str, *more: str) -> list[str]:
    return ["--model", "flux-general-en", "--url", url, "--api-key", KEY, "--speed", "0", *more]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_flux_model_streams_turns_on_every_transport(turns_wav: Path, transport: str) -> None:
    with serve_in_thread() as srv:
        result = run(
            "transcribe",
            str(turns_wav),
            "--json",
            *flux_args(srv.flux_url, "--transport", transport, "--eot-threshold", "0.8"),
        )
        (record,) = srv.connections
    assert result.returncode == 0, result.stderr
    assert [e["transcript"] for e in turn_ends(result.stdout)] == SENTENCES
    summary = events(result.stdout)[-1]
    assert summary["event"] == "Summary"
    assert summary["finals"] == 2
    assert summary["close_code"] == 1000
    assert isinstance(summary["lag_median"], float)
    assert record.emulator.options.eot_threshold == 0.8


def test_flux_url_without_a_path_goes_to_v2_listen(turns_wav: Path) -> None:
    with serve_in_thread() as srv:
        bare = f"ws://127.0.0.1:{srv.port}"
        result = run("transcribe", str(turns_wav), "--json", *flux_args(bare))
    assert result.returncode == 0, result.stderr
    assert [e["transcript"] for e in turn_ends(result.stdout)] == SENTENCES


def test_flux_with_reconnect_loses_no_turn(turns_wav: Path) -> None:
    with serve_in_thread(config=EmulatorConfig(require_auth=False)) as srv:
        server = srv.server
        make = server._make_emulator
        plans = [FaultPlan(drop_after_messages=10)]

        def next_emulator() -> Any:
            server.faults = plans.pop(0) if plans else None
            return make()

        server._make_emulator = next_emulator  # type: ignore[method-assign]
        result = run(
            "transcribe", str(turns_wav), "--json", "--reconnect", *flux_args(srv.flux_url)
        )
    assert result.returncode == 0, result.stderr
    kinds = [e["event"] for e in events(result.stdout)]
    assert "Reconnected" in kinds
    assert [e["transcript"] for e in turn_ends(result.stdout)] == SENTENCES
    assert events(result.stdout)[-1]["reconnects"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--eot-threshold", "0.2"], "eot_threshold"),
        (["--eot-threshold", "high"], "not a number: 'high'"),
        (["--eager-eot-threshold", "0.95"], "eager_eot_threshold"),
        (["--eot-timeout-ms", "100"], "eot_timeout_ms"),
        (["--eot-timeout-ms", "1.5"], "not an integer: '1.5'"),
        (["--interim-results"], "--interim-results is a /v1/listen option"),
    ],
)
def test_bad_flux_flags_are_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "x.wav", synthesize("x"))
    code = exit_code(
        ["transcribe", "x.wav", "--model", "flux-general-en", *args, "--url", "ws://127.0.0.1:9"]
    )
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert message in line


def test_flux_flags_need_a_flux_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "x.wav", synthesize("x"))
    code = main(["transcribe", "x.wav", "--eot-threshold", "0.8", "--url", "ws://127.0.0.1:9"])
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "--eot-threshold is a Flux option" in line


def test_flux_needs_mono(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "x.wav", synthesize("x") * 2, channels=2)
    code = main(["transcribe", "x.wav", "--model", "flux-general-en", "--url", "ws://127.0.0.1:9"])
    assert code == 2
    assert "one channel" in capsys.readouterr().err


def _turn(event: str, transcript: str, *, start: float | None = 1.25) -> TurnInfo:
    words = (TurnWord(word="w", confidence=0.9, start=start, end=2.0),) if transcript else ()
    return TurnInfo(
        event=event,
        turn_index=0,
        audio_window_start=0.5,
        audio_window_end=2.5,
        transcript=transcript,
        words=words,
    )


def test_text_view_puts_updates_on_the_status_line_and_a_line_per_end_of_turn() -> None:
    out = StringIO()
    view = FluxTextView(out, live=True)
    view.progress(1.0, None, None)
    view.event(_turn("Update", "Hello fr"), 1.0)
    assert out.getvalue().endswith("\r\x1b[2K[1.0 s sent, lag -] Hello fr")
    view.event(_turn("EndOfTurn", "Hello from the CLI."), 1.5)
    assert "\r\x1b[2K[00:01.2] Hello from the CLI.\n" in out.getvalue()
    view.event(_turn("EndOfTurn", ""), 2.0)  # nothing said: no line
    view.event(_turn("EndOfTurn", "No words.", start=None), 2.0)
    assert "[00:00.5] No words.\n" in out.getvalue()  # the window's start instead
    view.event(Closed(code=1000, initiator="server"), 3.0)
    assert out.getvalue().count("\n") == 2
    plain = StringIO()
    lines = FluxTextView(plain, live=False, interims=True)
    lines.event(_turn("Update", "Hello"), 1.0)
    lines.event(_turn("Update", ""), 1.0)
    assert plain.getvalue() == "   ~ Hello\n"
    FluxTextView(quiet := StringIO(), live=False).event(_turn("Update", "Hello"), 1.0)
    assert quiet.getvalue() == ""
