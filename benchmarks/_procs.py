"""Child processes of the end-to-end and memory benchmarks: the server and client runs.

Every child is bounded: the server exits when its stdin closes (we hold the pipe) or on
SIGTERM, and every client run has a timeout after which it is killed. Loopback only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from ._common import ROOT


class ServerProcess:
    """``python -m benchmarks.e2e_server --mode MODE`` on 127.0.0.1, a free port."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.e2e_server", "--mode", self.mode],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, timeout)
        if not line.startswith("ws://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the {self.mode} server did not start (said {line!r})")
        self.url = line.strip()
        return self

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.stdin is not None:
            process.stdin.close()  # the server exits on EOF
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """The first line of a child's stdout, or "" after ``timeout`` seconds."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(1)
            if not chunk:
                break
            data += chunk
    finally:
        selector.close()
    return data.decode(errors="replace").split("\n", 1)[0]


def run_client(args: list[str], *, timeout: float, profile: Path | None = None) -> dict[str, Any]:
    """Run ``python -m benchmarks.e2e_client ARGS`` and return the JSON it printed last."""
    command = [sys.executable, "-m", "benchmarks.e2e_client", *args]
    if profile is not None:
        command += ["--profile", str(profile)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s (killed)"}
    lines = [line for line in done.stdout.decode(errors="replace").splitlines() if line]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)[:400]}"}
    return result
