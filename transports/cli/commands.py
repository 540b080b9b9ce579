"""The commands: ``transcribe``, ``synth`` and ``demo``, each a ``register_*`` function
that adds its subparser and a ``cmd_*`` handler that runs it (``serve`` lives with the
emulator's server in ``dgproto.transports.server``).

A new flag for a command goes in its ``register_*`` and is read in its ``cmd_*``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import urllib.parse
import wave
from typing import IO, TextIO

from dgproto._audio import BYTES_PER_SAMPLE
from dgproto._config import Config
from dgproto._flux_options import FluxOptions
from dgproto._options import LiveOptions

from .._argparse import OneLineParser
from ..server import ThreadedEmulatorServer, serve_in_thread
from .flux import (
    FLUX_URL,
    FluxSession,
    FluxTextView,
    add_flux_arguments,
    check_flux_flags,
    flux_options_from_args,
    is_flux_model,
)
from .runtime import Job, stream
from .session import FinalizeStep, Note, Pause, Session, Step, View, audio_steps
from .shared import (
    API_KEY_ENV,
    DEFAULT_URL,
    EXIT_FAILURE,
    EXIT_OK,
    TRANSPORTS,
    CliError,
    OutputClosed,
    reason,
)
from .sources import RAW_ENCODINGS, AudioFormat, AudioSource, chunk_frames, open_source
from .target import KeyChoice, check_url, choose_key
from .views import JsonView, RawJsonView, TextView

__all__ = [
    "cmd_demo",
    "cmd_synth",
    "cmd_transcribe",
    "register_demo",
    "register_synth",
    "register_transcribe",
]

#: Deepgram throttles streams sent faster than this multiple of real time.
DEEPGRAM_MAX_SPEED = 1.25


# --------------------------------------------------------------------------- transcribe


def _needs_key(url: str) -> bool:
    """Deepgram's own servers want a key; self-hosted ones and the emulator may not."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return host == "deepgram.com" or host.endswith(".deepgram.com")


_EMULATOR_HINT = """\
No key? Try dgproto against its local Deepgram emulator (no account, no network):
  dgproto demo                                   # everything below, in one command
  dgproto serve --port 8765 &                    # a local /v1/listen server
  dgproto synth "Hello from dgproto." -o hello.wav
  dgproto transcribe hello.wav --url ws://127.0.0.1:8765/v1/listen --api-key anything"""


def _options_from_args(args: argparse.Namespace, audio: AudioFormat) -> LiveOptions | FluxOptions:
    params: dict[str, list[str]] = {}
    for item in args.param:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise CliError(f"--param wants KEY=VALUE, got {item!r}")
        params.setdefault(key, []).append(value)
    if is_flux_model(args.model):
        return flux_options_from_args(args, audio, params)
    check_flux_flags(args)
    try:
        return LiveOptions(
            model=args.model,
            language=args.language,
            encoding=audio.encoding,
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            multichannel=args.multichannel,
            interim_results=args.interim_results,
            punctuate=args.punctuate,
            smart_format=args.smart_format,
            diarize=args.diarize,
            endpointing=args.endpointing,
            utterance_end_ms=args.utterance_end_ms,
            vad_events=args.vad_events,
            keyterm=args.keyterm or None,
            params=params,
        )
    except ValueError as exc:
        raise CliError(f"invalid option: {exc}") from None


def _raw_format(args: argparse.Namespace) -> AudioFormat | None:
    if args.encoding is None:
        if args.sample_rate is not None or args.channels is not None:
            raise CliError(
                "--sample-rate and --channels describe raw audio and need --encoding; "
                "a WAV file's header already says them"
            )
        return None
    if args.sample_rate is None:
        raise CliError(f"raw {args.encoding} audio needs --sample-rate")
    return AudioFormat(
        encoding=args.encoding, sample_rate=args.sample_rate, channels=args.channels or 1
    )


def _speed(args: argparse.Namespace, source: AudioSource) -> float | None:
    if source.format.bytes_per_second is None:  # a container: no byte clock to pace by
        if args.realtime or args.speed:
            raise CliError(
                f"--realtime and --speed need WAV or raw audio: {source.format.container} "
                "has no fixed byte rate, so it is sent as it is read"
            )
        return None
    if args.realtime:
        return 1.0
    if args.speed is not None:
        return args.speed or None
    return None if source.live else DEEPGRAM_MAX_SPEED


def _make_view(args: argparse.Namespace, out: TextIO) -> View:
    if args.raw_json:
        return RawJsonView(out)
    if args.json or not out.isatty():
        return JsonView(out)
    return (FluxTextView if is_flux_model(args.model) else TextView)(out, live=True)


def _record_path(path: str | None) -> str | None:
    """``--record FILE``: fail now, in one line, if FILE cannot be written."""
    if path is None:
        return None
    try:
        with open(path, "w", encoding="utf-8"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write {path}: {reason(exc)}") from None
    return path


def cmd_transcribe(args: argparse.Namespace) -> int:
    flux = is_flux_model(args.model)
    url = check_url(args.url or (FLUX_URL if flux else DEFAULT_URL))
    key = choose_key(url, args.api_key, os.environ)
    if key.key is None and _needs_key(url):
        raise CliError(
            f"no Deepgram API key: pass --api-key KEY or set {API_KEY_ENV}",
            hint="" if args.url else _EMULATOR_HINT,
        )
    if key.withheld:
        print(f"dgproto transcribe: {key.withheld}", file=sys.stderr, flush=True)
    source = open_source(args.source, raw=_raw_format(args), chunk_ms=args.chunk_ms)
    try:
        options = _options_from_args(args, source.format)
        view = _make_view(args, sys.stdout)
        session = (FluxSession if flux else Session)(view, source.format, source.total_seconds)
        job = Job(
            options=options,
            url=url,
            key=key,
            config=Config(),
            session=session,
            steps=audio_steps(source),
            speed=_speed(args, source),
            reconnect=args.reconnect,
            record=_record_path(args.record),
        )
        return stream(args.transport, job)
    finally:
        source.close()


# --------------------------------------------------------------------------- synth


def cmd_synth(args: argparse.Namespace) -> int:
    from dgproto.emulator import synthesize

    encoding, rate, channels = args.encoding, args.sample_rate, args.channels
    audio = AudioFormat(encoding=encoding, sample_rate=rate, channels=channels)
    try:
        data = synthesize(args.text, sample_rate=rate, encoding=encoding, channels=channels)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    wav = args.output.lower().endswith(".wav")
    if wav and encoding not in ("linear16", "linear32"):
        raise CliError(
            f"a WAV file holds linear16 or linear32 here, not {encoding}; "
            "write raw audio instead (an output name not ending in .wav)"
        )
    seconds = len(data) / (BYTES_PER_SAMPLE[encoding] * rate * channels)
    try:
        if args.output == "-":
            _write_binary(sys.stdout.buffer, data)
            return EXIT_OK
        if wav:
            with wave.open(args.output, "wb") as writer:
                writer.setnchannels(channels)
                writer.setsampwidth(BYTES_PER_SAMPLE[encoding])
                writer.setframerate(rate)
                writer.writeframes(data)
        else:
            with open(args.output, "wb") as file:
                file.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {reason(exc)}") from None
    raw = "" if wav else f" --encoding {encoding} --sample-rate {rate}"
    if not wav and channels > 1:
        raw += f" --channels {channels}"
    print(
        f"wrote {args.output}: {seconds:.2f} s of tone-codec audio ({audio.describe()})\n"
        f"transcribe it with the emulator:\n"
        f"  dgproto serve --port 8765 &\n"
        f"  dgproto transcribe {args.output}{raw} --url ws://127.0.0.1:8765/v1/listen "
        "--api-key anything"
    )
    return EXIT_OK


def _write_binary(out: IO[bytes], data: bytes) -> None:
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:  # `dgproto synth ... -o - | head -c 10`: not an error to report
        raise OutputClosed from None


# --------------------------------------------------------------------------- demo

DEMO_PART_ONE = "Hello from dgproto. This audio carries its own transcript."
DEMO_PART_TWO = "The stream survived the silence. Goodbye!"
#: Real-time values; ``--fast`` divides every time by ten.
DEMO_SILENCE = 11.0
DEMO_KEEPALIVE = 3.0
DEMO_IDLE_TIMEOUT = 10.0
DEMO_RATE = 16000  # linear16 mono


def cmd_demo(args: argparse.Namespace) -> int:
    from dgproto.emulator import EmulatorConfig, synthesize

    scale = 0.1 if args.fast else 1.0
    audio = AudioFormat(encoding="linear16", sample_rate=DEMO_RATE, channels=1)
    parts = [synthesize(text, sample_rate=DEMO_RATE) for text in (DEMO_PART_ONE, DEMO_PART_TWO)]
    expected = f"{DEMO_PART_ONE} {DEMO_PART_TWO}"
    silence, keepalive, idle = (
        DEMO_SILENCE * scale,
        DEMO_KEEPALIVE * scale,
        DEMO_IDLE_TIMEOUT * scale,
    )
    out = sys.stdout
    view = TextView(out, live=out.isatty(), interims=True)
    chunk = audio.frame_size * chunk_frames(DEMO_RATE, 100)

    with serve_in_thread(config=EmulatorConfig(idle_timeout=idle)) as server:
        view.note(f"dgproto demo: a Deepgram-compatible emulator is listening on {server.url}")
        view.note("  (in this process: no network, no API key)")
        total = sum(len(part) for part in parts) / (2 * DEMO_RATE)
        view.note(
            f"Synthesized {total:.1f} s of tone-codec speech ({audio.describe()}): audio "
            "that carries its own transcript."
        )
        session = Session(view, audio, total)
        steps: list[Step] = [
            Note(f"-> streaming part 1 at {1 / scale:g}x real time, with interim_results"),
            *_chunks(parts[0], chunk),
            FinalizeStep("-> Finalize: flush what the server holds, so part 1 is final now"),
            Pause(
                silence,
                f"-> {silence:g} s without sending audio. The emulator, like Deepgram, closes "
                f"a stream idle for {idle:g} s; this demo sets Config(keepalive_interval="
                f"{keepalive:g}), so dgproto sends KeepAlive after every {keepalive:g} s "
                "without audio.",
            ),
            Note(f"-> streaming part 2 at {1 / scale:g}x real time"),
            *_chunks(parts[1], chunk),
            Note("-> CloseStream: the server flushes, sends Metadata and closes"),
        ]
        job = Job(
            options=LiveOptions(
                encoding=audio.encoding,
                sample_rate=audio.sample_rate,
                channels=1,
                interim_results=True,
                punctuate=True,
                vad_events=True,
            ),
            url=server.url,
            key=KeyChoice("demo", "--api-key"),
            config=Config(keepalive_interval=keepalive),
            session=session,
            steps=steps,
            speed=1 / scale,
        )
        status = stream(args.transport, job)
        received = _keepalives_received(server)
    if status != EXIT_OK:
        return status
    got = session.transcript()
    view.note(
        f"KeepAlive: {session.keepalives} sent during the silence, "
        f"{received} received by the emulator"
    )
    if got != expected:
        view.note(f"MISMATCH: the finals say {got!r}, the audio said {expected!r}")
        return EXIT_FAILURE
    if received == 0:
        view.note("MISMATCH: the emulator received no KeepAlive")
        return EXIT_FAILURE
    view.note("OK: the final transcript equals the synthesized text.")
    return EXIT_OK


def _chunks(data: bytes, size: int) -> list[Step]:
    return [data[offset : offset + size] for offset in range(0, len(data), size)]


def _keepalives_received(server: ThreadedEmulatorServer) -> int:
    """KeepAlive messages the emulator logged for the demo's stream (read once the
    connection is over, as ``ConnectionRecord`` asks)."""
    deadline = time.monotonic() + 2.0
    while True:
        records = server.connections
        if (records and not records[-1].live) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if not records:
        return 0
    messages = records[-1].emulator.received_text_messages
    return sum(1 for message in messages if message.type == "KeepAlive")


# --------------------------------------------------------------------------- parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _endpointing(text: str) -> int | bool:
    if text.lower() == "false":
        return False
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"milliseconds of silence or 'false', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or 'false', got {text}")
    return value


def _add_transport(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="asyncio",
        help="the adapter that runs the stream (default %(default)s)",
    )


def register_transcribe(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    """Add ``dgproto transcribe`` to ``commands`` (``add_subparsers()``'s result)."""
    t = commands.add_parser(
        "transcribe",
        help="stream a WAV file, raw audio or stdin and print the transcript",
        description="Stream audio to /v1/listen and print what comes back: on a terminal, "
        "interim results on a status line and finals as lines; otherwise (or with --json) "
        "one JSON object per event. Ctrl-C sends CloseStream and shows what arrived.",
    )
    t.add_argument("source", metavar="SOURCE", help="a WAV file, a raw audio file, or - for stdin")
    t.add_argument("--url", help=f"the server (default {DEFAULT_URL})")
    t.add_argument(
        "--api-key",
        help=f"Deepgram API key (default: ${API_KEY_ENV}, safer than this flag; the "
        "environment's key is sent over wss:// and to ws:// on this machine only)",
    )
    _add_transport(t)
    t.add_argument(
        "--reconnect",
        action="store_true",
        help="reconnect by itself after a dropped socket or a retryable close, replaying the "
        "audio not yet final (lossless, one audio clock); reconnects show on the status line "
        "and in the summary",
    )
    t.add_argument(
        "--record",
        metavar="FILE",
        help="record the session to FILE (JSON Lines, audio in FILE.audio; credentials "
        "removed) for `dgproto replay FILE` and `dgproto serve --replay FILE`",
    )
    pace = t.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="send audio at real time")
    pace.add_argument(
        "--speed",
        type=_non_negative_float,
        metavar="FACTOR",
        help=f"send at FACTOR times real time; 0 sends as fast as possible (default: "
        f"{DEEPGRAM_MAX_SPEED}, Deepgram's limit, for files; as it comes for stdin)",
    )
    t.add_argument(
        "--chunk-ms",
        type=_positive_float,
        default=100.0,
        metavar="MS",
        help="audio per message in milliseconds (default 100)",
    )
    output = t.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="dgproto's JSON lines, even on a terminal"
    )
    output.add_argument(
        "--raw-json",
        action="store_true",
        help="Deepgram's messages as they came, one JSON object per line (for jq pipelines "
        "written for Deepgram); notes and the summary go to stderr",
    )
    raw = t.add_argument_group("raw audio (instead of a WAV header)")
    raw.add_argument("--encoding", choices=RAW_ENCODINGS)
    raw.add_argument("--sample-rate", type=_positive_int, metavar="HZ")
    raw.add_argument("--channels", type=_positive_int, metavar="N", help="default 1")
    dg = t.add_argument_group("Deepgram options")
    dg.add_argument(
        "--model", help="e.g. nova-3; a flux-* model (flux-general-en) streams to Flux, /v2/listen"
    )
    dg.add_argument("--language", help="e.g. en-US, or multi")
    boolean = argparse.BooleanOptionalAction
    dg.add_argument("--interim-results", action=boolean, help="partial results as you speak")
    dg.add_argument("--punctuate", action=boolean)
    dg.add_argument("--smart-format", action=boolean)
    dg.add_argument("--diarize", action=boolean, help="label speakers")
    dg.add_argument("--multichannel", action=boolean, help="transcribe channels separately")
    dg.add_argument("--endpointing", type=_endpointing, metavar="MS|false")
    dg.add_argument(
        "--utterance-end-ms", type=_positive_int, metavar="MS", help="needs --interim-results"
    )
    dg.add_argument("--vad-events", action=boolean, help="SpeechStarted events")
    dg.add_argument("--keyterm", action="append", default=[], help="boost a term (repeatable)")
    dg.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other query parameter (repeatable)",
    )
    add_flux_arguments(t)
    t.set_defaults(handler=cmd_transcribe)


def register_synth(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    """Add ``dgproto synth`` to ``commands`` (``add_subparsers()``'s result)."""
    s = commands.add_parser(
        "synth",
        help="write tone-codec audio for TEXT, which the emulator transcribes back",
        description="Write audio that the emulator transcribes back to TEXT, to try "
        "`dgproto transcribe` against `dgproto serve` by hand.",
    )
    s.add_argument("text", metavar="TEXT")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="a .wav file, any other name for raw audio, or - for raw audio on stdout",
    )
    s.add_argument("--sample-rate", type=_positive_int, default=16000, metavar="HZ")
    s.add_argument("--encoding", choices=RAW_ENCODINGS, default="linear16")
    s.add_argument("--channels", type=_positive_int, default=1, metavar="N")
    s.set_defaults(handler=cmd_synth)


def register_demo(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    """Add ``dgproto demo`` to ``commands`` (``add_subparsers()``'s result)."""
    d = commands.add_parser(
        "demo",
        help="show a live session against an in-process emulator (about 20 s)",
        description="Stream synthesized speech to an in-process emulator at real time: "
        "interim results, a Finalize, a silence that KeepAlive bridges, CloseStream and "
        "the Metadata summary. Exits 0 when the finals equal the synthesized text.",
    )
    _add_transport(d)
    d.add_argument("--fast", action="store_true", help="ten times faster (for tests)")
    d.set_defaults(handler=cmd_demo)
