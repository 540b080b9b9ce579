"""``dgproto replay FILE``: what a recorded session said, without a network.

Prints each socket's final transcript and its timeline (handshake, finals, KeepAlives,
Finalize replies, close; ``dgproto._timeline``), or with ``--frames`` every frame as one
JSON object a line (the sidecar's audio and server messages merged with the lines, in
wire order: the way to read a version 3 file's binary part). A file that is missing or
not a recording is one line on stderr and exit status 2. To serve the recording to an
app instead, use ``dgproto serve --replay FILE``.
"""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

from dgproto._recording import FrameRecord, Recording, RecordingError
from dgproto._timeline import render

from .._argparse import OneLineParser
from .._record import load_recordings
from .shared import EXIT_OK, CliError, OutputClosed, reason

__all__ = ["cmd_replay", "register_replay"]


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        recordings = load_recordings(args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {reason(exc)}") from None
    except RecordingError as exc:
        raise CliError(f"{args.file} is not a dgproto recording: {exc}") from None
    parts = []
    for number, recording in enumerate(recordings, start=1):
        if args.frames:
            parts.append(_frames(recording, number))
            continue
        head = f"socket {number} of {len(recordings)}\n" if len(recordings) > 1 else ""
        cut = "(the file was cut short: what was whole is shown)\n" if recording.truncated else ""
        parts.append(head + cut + render(recording))
    try:
        print("\n".join(parts), end="", flush=True)
    except BrokenPipeError:
        raise OutputClosed from None
    return EXIT_OK


def _frame(frame: FrameRecord, socket: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "socket": socket,
        "t": frame.t,
        "audio": frame.audio,
        "dir": frame.direction,
        "kind": frame.kind,
    }
    if frame.kind == "text":
        out["text"] = frame.text
    elif frame.kind == "close":
        out.update(code=frame.code, reason=frame.reason)
    elif frame.kind == "binary":
        out["bytes"] = len(frame.data)  # audio: its size, not its samples
    else:
        out["data"] = base64.b64encode(frame.data).decode("ascii")
    return out


def _frames(recording: Recording, socket: int) -> str:
    """One socket's frames as JSON lines (``--frames``)."""
    lines = [json.dumps(_frame(frame, socket), ensure_ascii=False) for frame in recording.frames]
    if recording.truncated:
        lines.append(json.dumps({"socket": socket, "truncated": True}))
    return "".join(line + "\n" for line in lines)


def register_replay(commands: argparse._SubParsersAction[OneLineParser]) -> None:
    """Add ``dgproto replay`` to ``commands`` (``add_subparsers()``'s result)."""
    r = commands.add_parser(
        "replay",
        help="print a recorded session's transcript and timeline (no network)",
        description="Read a recording made with `dgproto transcribe --record FILE` or "
        "connect(..., record=FILE) and print the final transcript and a timeline of the "
        "session (handshake, finals, KeepAlives, Finalize replies, close), each line with "
        "its time since open and the audio clock. Serve it to an app with "
        "`dgproto serve --replay FILE`.",
    )
    r.add_argument("file", metavar="FILE", help="the recording (its .audio sidecar next to it)")
    r.add_argument(
        "--frames",
        action="store_true",
        help="print every frame (both files, in wire order) as one JSON object a line",
    )
    r.set_defaults(handler=cmd_replay)
