"""``ReconnectPolicy`` (pure) and the shared ``Session`` decisions, without sockets."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from dgproto import (
    Closed,
    ConnectionClosedError,
    FinalizeComplete,
    HandshakeError,
    HandshakeRejected,
    LiveOptions,
    Reconnected,
    ReconnectPolicy,
    ReplayBuffer,
)
from dgproto._reconnect import reconnect_policy
from dgproto.transports._reconnect import LISTEN_RESUME, Session, drive_async

OPTIONS = LiveOptions(encoding="linear16", sample_rate=16000)


def test_policy_defaults_and_reconnect_argument() -> None:
    policy = ReconnectPolicy()
    assert (policy.max_attempts, policy.replay_seconds) == (5, 30.0)
    assert reconnect_policy(True) == policy
    assert reconnect_policy(False) is None
    custom = ReconnectPolicy(max_attempts=2)
    assert reconnect_policy(custom) is custom
    with pytest.raises(ValueError, match="reconnect must be"):
        reconnect_policy("yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", -1),
        ("max_attempts", True),
        ("max_attempts", 1.5),
        ("initial_delay", -0.1),
        ("factor", 0.5),
        ("jitter", 2),
        ("jitter", False),
        ("replay_seconds", "30"),
    ],
)
def test_policy_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"ReconnectPolicy.{field}"):
        ReconnectPolicy(**{field: value})


def test_policy_delays_are_seeded_capped_and_jittered() -> None:
    policy = ReconnectPolicy(initial_delay=1, factor=3, max_delay=5, jitter=0.5, seed=7)
    first = list(itertools.islice(policy.delays(), 5))
    assert first == list(itertools.islice(policy.delays(), 5))  # same seed, same schedule
    for delay, nominal in zip(first, [1, 3, 5, 5, 5], strict=True):
        assert nominal * 0.5 <= delay <= nominal
    exact = ReconnectPolicy(initial_delay=0.1, jitter=0.0)
    assert list(itertools.islice(exact.delays(), 3)) == [0.1, 0.2, 0.4]


def test_listen_resume_needs_raw_audio() -> None:
    assert isinstance(LISTEN_RESUME.replay(OPTIONS, 5.0), ReplayBuffer)
    with pytest.raises(ValueError, match="reconnect needs LiveOptions"):
        LISTEN_RESUME.replay(None, 5.0)
    with pytest.raises(ValueError, match="fixed byte rate"):
        LISTEN_RESUME.replay(LiveOptions(model="nova-3"), 5.0)


DROP = Closed(code=1006, initiator="transport", retryable=True)
DONE = Closed(code=1000, initiator="server", clean=True)


class Script:
    """A fake link: scripted results for ``open``; records every operation."""

    def __init__(self, opens: list[Any], events: list[Any]) -> None:
        self.opens = opens
        self.events = events
        self.log: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        async def op(*args: Any) -> Any:
            self.log.append((name[3:], *args))
            if name == "op_open":
                result = self.opens.pop(0)
                if isinstance(result, BaseException):
                    raise result
                return result
            if name == "op_next":
                return self.events.pop(0)
            return None

        return op

    def emitted(self) -> list[Any]:
        return [entry[1] for entry in self.log if entry[0] == "emit"]


def run(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("suspended")


REJECT_503 = HandshakeError(HandshakeRejected(status_code=503))
REJECT_401 = HandshakeError(HandshakeRejected(status_code=401))


def test_first_connect_retries_503_and_connection_errors_never_401() -> None:
    session = Session(
        ReconnectPolicy(jitter=0, initial_delay=0.1), LISTEN_RESUME.replay(OPTIONS, 1)
    )
    script = Script([REJECT_503, ConnectionRefusedError(), "req-1"], [])
    run(drive_async(session.open_first(), script))
    assert [e[0] for e in script.log] == ["open", "sleep", "open", "sleep", "open"]
    assert session.request_ids == ["req-1"]
    assert session.live
    for refusal in (REJECT_401, ValueError("bad url")):
        session = Session(ReconnectPolicy(), LISTEN_RESUME.replay(OPTIONS, 1))
        with pytest.raises(type(refusal)):
            run(drive_async(session.open_first(), Script([refusal], [])))
    session = Session(ReconnectPolicy(retry_first_connect=False), LISTEN_RESUME.replay(OPTIONS, 1))
    with pytest.raises(HandshakeError):
        run(drive_async(session.open_first(), Script([REJECT_503], [])))
    session = Session(ReconnectPolicy(max_attempts=1), LISTEN_RESUME.replay(OPTIONS, 1))
    with pytest.raises(HandshakeError):
        run(drive_async(session.open_first(), Script([REJECT_503, REJECT_503], [])))


def test_outage_replays_resends_finalize_and_configure_then_gives_up_on_401() -> None:
    policy = ReconnectPolicy(jitter=0, initial_delay=0.1, max_attempts=3, replay_seconds=0.5)
    session = Session(policy, LISTEN_RESUME.replay(OPTIONS, policy.replay_seconds))
    run(drive_async(session.open_first(), Script(["a"], [])))
    assert session.configure(["kw"], None)
    assert session.finalize(None)
    assert session.audio(b"\0" * 16000)  # 0.5 s sent live: the whole replay
    closed_finalize = FinalizeComplete(channel=None, reason="closed")
    script = Script(
        ["b", REJECT_503, ConnectionResetError(), REJECT_401], [closed_finalize, DROP, DROP]
    )
    sleeps = 0

    async def sleep(delay: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 1:  # the app goes on sending during the outage: 0.25 s too many
            assert not session.audio(b"\0" * 8000)

    script.op_sleep = sleep  # type: ignore[attr-defined]
    run(drive_async(session.run(), script))
    log = script.log
    ops = [entry[0] for entry in log]
    assert ops.index("configure") < ops.index("send") < ops.index("finalize")
    assert ("close_stream",) not in log
    emitted = script.emitted()
    kinds = [type(e).__name__ for e in emitted]
    assert kinds == ["Reconnecting", "Reconnected"] + ["Reconnecting"] * 3 + [
        "FinalizeComplete",
        "Closed",
    ]
    assert emitted[0].closed == DROP
    reconnected = emitted[1]
    assert reconnected == Reconnected(
        attempt=1, request_id="b", replayed_seconds=0.5, dropped_seconds=0.25
    )
    assert emitted[-2] == closed_finalize
    assert session.reconnects == 1
    assert session.request_ids == ["a", "b"]


def test_give_up_after_max_attempts_ends_pending_finalizes_then_closed() -> None:
    policy = ReconnectPolicy(jitter=0, initial_delay=0.1, max_attempts=2)
    session = Session(policy, LISTEN_RESUME.replay(OPTIONS, 1))
    run(drive_async(session.open_first(), Script(["a"], [])))
    session.finalize(0)
    script = Script([REJECT_503, OSError()], [DROP])
    run(drive_async(session.run(), script))
    emitted = script.emitted()
    kinds = [type(e).__name__ for e in emitted]
    assert kinds == ["Reconnecting", "Reconnecting", "FinalizeComplete", "Closed"]
    assert emitted[2] == FinalizeComplete(channel=0, reason="closed")
    assert emitted[-1] is DROP
    assert session.last_closed is DROP


def test_401_while_reconnecting_and_abort_end_at_once() -> None:
    session = Session(ReconnectPolicy(jitter=0), LISTEN_RESUME.replay(OPTIONS, 1))
    run(drive_async(session.open_first(), Script(["a"], [])))
    script = Script([REJECT_401], [DROP])
    run(drive_async(session.run(), script))
    assert [type(e).__name__ for e in script.emitted()] == ["Reconnecting", "Closed"]
    # abort during the backoff: no open at all
    session = Session(ReconnectPolicy(jitter=0), LISTEN_RESUME.replay(OPTIONS, 1))
    run(drive_async(session.open_first(), Script(["a"], [])))
    session.aborted = True
    script = Script([], [DROP])
    run(drive_async(session.run(), script))
    assert [e[0] for e in script.log] == ["next", "release", "emit"]


def test_closing_during_an_outage_sends_close_stream_after_the_replay() -> None:
    session = Session(ReconnectPolicy(jitter=0), LISTEN_RESUME.replay(OPTIONS, 1))
    run(drive_async(session.open_first(), Script(["a"], [])))
    session.live = False  # as after a drop
    assert not session.audio(b"\1\0" * 100)
    assert not session.close()
    assert not session.close()
    script = Script(["b"], [DROP, DONE])
    run(drive_async(session.run(), script))
    ops = [e[0] for e in script.log]
    assert ops.index("send") < ops.index("close_stream")
    assert script.emitted()[-1] is DONE
    # a ConnectionClosedError is worth another try, like the Closed it carries
    assert session.reconnects == 1
    assert ConnectionClosedError(DROP).closed is DROP
