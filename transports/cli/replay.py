"""``dgproto replay FILE``: what a recorded session said, without a network.

Prints each socket's final transcript and its timeline (handshake, finals, KeepAlives,
Finalize replies, close; ``dgproto._timeline``). A file that is missing or not a
recording is one line on stderr and exit status 2. To serve the recording to an app
instead, use ``dgproto serve --replay FILE``.
"""

from __future__ import annotations

import argparse

from dgproto._recording import RecordingError
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
        head = f"socket {number} of {len(recordings)}\n" if len(recordings) > 1 else ""
        parts.append(head + render(recording))
    try:
        print("\n".join(parts), end="", flush=True)
    except BrokenPipeError:
        raise OutputClosed from None
    return EXIT_OK


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
    r.set_defaults(handler=cmd_replay)
