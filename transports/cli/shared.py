"""What every part of the command line shares: exit statuses, the one-line error, and
the helpers that keep secrets and tracebacks out of what people read.

Imports nothing else from the CLI, so every other CLI module can import it.
"""

from __future__ import annotations

import errno
import os
import ssl
import urllib.parse
from typing import TextIO

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_URL",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "TRANSPORTS",
    "CliError",
    "OutputClosed",
    "reason",
    "where",
    "write",
]

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
API_KEY_ENV = "DEEPGRAM_API_KEY"
TRANSPORTS = ("asyncio", "trio", "sync")

EXIT_OK = 0
EXIT_FAILURE = 1  # the server or the network failed us
EXIT_USAGE = 2  # bad input: what argparse uses too
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class CliError(Exception):
    """A problem reported as one line on stderr, then the exit status ``status``."""

    def __init__(self, message: str, *, status: int = EXIT_USAGE, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


def reason(exc: BaseException) -> str:
    """An OS error's words without its errno and path (``No such file or directory``)."""
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        # From the errno first: asyncio's "Connect call failed (...)" hides the words.
        if exc.errno is not None and exc.errno in errno.errorcode:
            return os.strerror(exc.errno)
        if exc.strerror:
            return exc.strerror
    return str(exc) or type(exc).__name__


class OutputClosed(Exception):
    """Whoever read our output went away (``| head``). Not an ``OSError`` on purpose, so
    it is never mistaken for a network failure; ``main`` exits quietly."""


def write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def where(url: str) -> str:
    """The host and port of ``url``, for messages: never its query (it may hold a token)
    nor any ``user:password@`` part."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return host or url
