"""``mypy --strict`` knows which stream each ``connect`` gives (``tests/typing_connect.py``).

The checked module uses ``typing.assert_type`` and ``# type: ignore[attr-defined]`` on
misuse, which ``warn_unused_ignores`` (on under --strict) turns into an error if the
misuse ever type-checks: a wrong overload fails this test either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

MODULE = Path(__file__).with_name("typing_connect.py")


def test_connect_overloads_type_each_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(MODULE.parent.parent)  # where mypy finds dgproto and transports
    stdout, stderr, status = api.run(["--strict", "--no-error-summary", str(MODULE)])
    assert status == 0, stdout + stderr
