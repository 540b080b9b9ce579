"""The fuzz suite inside ``make test``: both cores, a few seconds each, choices drawn by
hypothesis so a failure shrinks to a small input. ``make fuzz`` runs the same fuzzers
for longer (see ``tests/fuzzing.py``)."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from . import fuzzing

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.data())
def test_fuzz_client_core(data: st.DataObject) -> None:
    fuzzing.run_client(fuzzing.client_case(fuzzing.HypothesisSource(data)))


@FUZZ
@given(st.data())
def test_fuzz_emulator_core(data: st.DataObject) -> None:
    fuzzing.run_emulator(fuzzing.emulator_case(fuzzing.HypothesisSource(data)))


@FUZZ
@given(st.data())
def test_fuzz_inbound_against_wsproto(data: st.DataObject) -> None:
    fuzzing.run_inbound(fuzzing.HypothesisSource(data))


def test_make_fuzz_prints_counts_rate_and_findings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUZZ_SECONDS", "0.3")
    monkeypatch.setenv("FUZZ_SEED", "7")
    assert fuzzing.main([]) == 0
    out = capsys.readouterr().out
    for name in ("client", "emulator", "inbound"):
        assert f"{name}: " in out
    assert "inputs tried" in out
    assert "inputs/s" in out
    assert "0 findings (seeds from 7)" in out


def test_make_fuzz_reports_a_finding_by_seed_and_replays_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: fuzzing.Source) -> int:
        if src.integer(0, 1):
            raise fuzzing.Finding("state moved back")
        return 1

    monkeypatch.setitem(fuzzing.TARGETS, "broken", broken)
    monkeypatch.setenv("FUZZ_SECONDS", "0.2")
    monkeypatch.setenv("FUZZ_SEED", "0")
    assert fuzzing.main(["broken"]) == 1
    out = capsys.readouterr().out
    seed = int(out.split("  seed ")[1].split(":")[0])
    assert "Finding: state moved back" in out
    with pytest.raises(fuzzing.Finding):
        fuzzing.main(["replay", "broken", str(seed)])
    assert fuzzing.main(["replay", "client", "1"]) == 0


def test_the_checkers_catch_what_they_are_for() -> None:
    """Each invariant fires on a core that breaks it (so a quiet fuzz run means something)."""
    from dgproto._connection import ListenConnection

    conn = ListenConnection(host="dg.test")
    checker = fuzzing.ClientChecker(conn)
    conn.connect(now=0)
    checker.check()
    conn.abort(now=0)
    checker.check()
    conn._out.append(b"late")  # a core that wrote after Closed
    with pytest.raises(fuzzing.Finding, match="after Closed"):
        checker.check()
    with pytest.raises(fuzzing.Finding, match="CPU"):
        fuzzing._check_cpu(-100.0, 10)
