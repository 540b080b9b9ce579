"""An ``argparse`` parser whose mistakes are one line: what was wrong and where help is.

argparse's own ``error()`` prints the whole usage block first; for ``dgproto`` a bad
input is one line on stderr and exit status 2, like every other CLI error.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineParser"]


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` that reports a usage error on one line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
