"""Config validation, error messages and the audio clock."""

from __future__ import annotations

import pytest

from dgproto import (
    Closed,
    Config,
    ConnectionClosedError,
    HandshakeError,
    HandshakeRejected,
    LocalProtocolError,
    RemoteProtocolError,
)
from dgproto._audio import bytes_per_second


def test_config_defaults_follow_deepgram() -> None:
    config = Config()
    assert config.keepalive_interval == 4.0  # docs: every 3-5 s; server closes at ~10 s
    assert config.max_message_size == 1 << 20
    assert config.ping_interval == 5.0
    assert config.ping_timeout == 10.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keepalive_interval": 0},
        {"keepalive_interval": -1.0},
        {"open_timeout": "10"},
        {"close_timeout": True},
        {"max_message_size": 0},
        {"max_message_size": 1.5},
        {"max_message_size": True},
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs: dict[str, object]) -> None:
    (field,) = kwargs
    with pytest.raises(ValueError, match=f"Config.{field}"):
        Config(**kwargs)  # type: ignore[arg-type]


def test_config_allows_disabling_timers() -> None:
    config = Config(keepalive_interval=None, open_timeout=None, finalize_timeout=None)
    assert config.keepalive_interval is None


def test_handshake_error_carries_fields_without_secrets() -> None:
    rejected = HandshakeRejected(
        status_code=401, err_code="INVALID_AUTH", err_msg="Invalid credentials.", request_id="r1"
    )
    error = HandshakeError(rejected)
    assert str(error) == (
        "handshake rejected with HTTP 401: INVALID_AUTH; Invalid credentials. (request_id=r1)"
    )
    assert (error.status_code, error.err_code, error.request_id) == (401, "INVALID_AUTH", "r1")
    assert not error.retryable
    assert HandshakeError(HandshakeRejected(status_code=429)).retryable
    assert str(HandshakeError(HandshakeRejected(status_code=502, dg_error="bad gw"))) == (
        "handshake rejected with HTTP 502: bad gw"
    )


def test_connection_closed_error_describes_the_close() -> None:
    closed = Closed(
        code=1011, reason="timeout", initiator="server", error_code="NET-0001", retryable=True
    )
    error = ConnectionClosedError(closed)
    assert error.closed is closed
    assert str(error) == "connection closed by server with code 1011 NET-0001 (timeout)"
    bare = ConnectionClosedError(Closed(code=1000, initiator="client"))
    assert str(bare) == "connection closed by client with code 1000"


def test_protocol_errors_carry_structured_fields() -> None:
    assert LocalProtocolError("x").state is None
    assert RemoteProtocolError("y", close_code=1002).close_code == 1002


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "expected"),
    [
        ("linear16", 16000, 1, 32000),
        ("linear16", 8000, 2, 32000),
        ("linear32", 48000, 1, 192000),
        ("mulaw", 8000, 1, 8000),
        ("alaw", 8000, 1, 8000),
        ("opus", 48000, 1, None),
        (None, 16000, 1, None),
        ("linear16", None, 1, None),
    ],
)
def test_bytes_per_second(
    encoding: str | None, rate: int | None, channels: int, expected: int | None
) -> None:
    assert bytes_per_second(encoding, rate, channels) == expected
