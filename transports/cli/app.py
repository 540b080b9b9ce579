"""``main``: the ``dgproto`` console script and ``python -m dgproto``.

Parses the command line, runs one command and turns whatever goes wrong into one line
on stderr and an exit status (``shared.EXIT_*``): never a traceback for a bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from dgproto import __version__

from .. import server
from .._argparse import OneLineParser
from .commands import register_demo, register_synth, register_transcribe
from .replay import register_replay
from .shared import EXIT_FAILURE, EXIT_INTERRUPTED, CliError, OutputClosed

__all__ = ["build_parser", "main"]

VERBOSE = "the DEBUG wire trace on stderr (API keys redacted)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="dgproto",
        description="Stream audio to Deepgram live transcription (or its local emulator).",
    )
    parser.add_argument("--version", action="version", version=f"dgproto {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=VERBOSE,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_transcribe(commands)
    commands.add_parser(
        "serve",
        help="run the local Deepgram emulator (dgproto serve --help)",
        add_help=False,
    )
    register_synth(commands)
    register_demo(commands)
    register_replay(commands)
    for name, command in commands.choices.items():
        if name != "serve":  # -v also after the command; SUPPRESS keeps a top-level -v
            command.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE
            )
    return parser


@contextlib.contextmanager
def _trace_to_stderr() -> Iterator[None]:
    """``-v``: every ``dgproto`` logger at DEBUG on stderr: the adapters' wire trace, whose
    handshake lines have the ``Authorization`` value replaced by ``<redacted>``.

    Undone on the way out, so ``main()`` called in-process (tests, embedders) leaves no
    handler pointing at a stream that may be closed by then."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("dgproto")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``dgproto`` console script and ``python -m dgproto``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return server.main_serve(argv[1:])
    args = build_parser().parse_args(argv)
    with _trace_to_stderr() if args.verbose else contextlib.nullcontext():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        status: int = args.handler(args)
    except CliError as exc:
        sys.stdout.flush()
        print(f"dgproto {args.command}: {exc}", file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return exc.status
    except OutputClosed:  # the reader of our output went away (| head): say nothing
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:  # before or after the stream, where no handler is installed
        print(f"dgproto {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status
