"""The CLI's ``--url`` check and the DEEPGRAM_API_KEY decision, as pure functions."""

from __future__ import annotations

import ssl

import pytest

from dgproto.transports.cli.shared import CliError, reason, where
from dgproto.transports.cli.target import KeyChoice, choose_key, is_loopback, rejection_hint

ENV = {"DEEPGRAM_API_KEY": "env-key"}


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("ws://127.0.0.1:8765/v1/listen", True),
        ("ws://127.9.9.9/v1/listen", True),
        ("ws://[::1]:8765/v1/listen", True),
        ("ws://localhost:8765", True),
        ("ws://dev.localhost:8765", True),
        ("ws://example.test:8765", False),
        ("wss://api.deepgram.com/v1/listen", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_flag_is_always_sent() -> None:
    assert choose_key("ws://example.test/v1/listen", "k", ENV) == KeyChoice("k", "--api-key")


def test_environment_key_over_wss_and_loopback() -> None:
    for url in ("wss://api.deepgram.com/v1/listen", "ws://127.0.0.1:8765/v1/listen"):
        assert choose_key(url, None, ENV) == KeyChoice("env-key", "$DEEPGRAM_API_KEY")


def test_environment_key_withheld_from_remote_ws_and_says_why() -> None:
    choice = choose_key("ws://example.test:8765/v1/listen", None, ENV)
    assert choice.key is None
    assert choice.withheld == (
        "$DEEPGRAM_API_KEY is set but not sent: ws:// is unencrypted and example.test is not "
        "this machine (use wss://, or pass --api-key to send a key anyway)"
    )
    assert "env-key" not in choice.withheld
    hint = rejection_hint(choice, 401, "ws://example.test:8765/v1/listen")
    assert hint.startswith("the server wants an API key: pass --api-key KEY ($DEEPGRAM_API_KEY")


def test_no_key_anywhere() -> None:
    assert choose_key("ws://example.test/v1/listen", None, {}) == KeyChoice(None, "")
    assert rejection_hint(KeyChoice(None, ""), 401, "ws://example.test/x") == (
        "the server wants an API key: pass --api-key KEY"
    )


def test_blank_flag_is_refused() -> None:
    with pytest.raises(CliError, match="--api-key is empty"):
        choose_key("wss://api.deepgram.com", "  ", ENV)


def test_hint_only_for_auth_failures() -> None:
    assert rejection_hint(KeyChoice("k", "--api-key"), 429, "ws://127.0.0.1/x") == ""
    remote = rejection_hint(KeyChoice("k", "--api-key"), 403, "wss://api.deepgram.com/v1/listen")
    assert remote == "the server did not accept the key from --api-key"


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (FileNotFoundError(2, "No such file or directory", "x.wav"), "No such file or directory"),
        (OSError(None, "custom words"), "custom words"),
        (OSError(), "OSError"),
        (ssl.SSLError(1, "[SSL] certificate verify failed"), "certificate verify failed"),
        (ValueError("plain"), "plain"),
    ],
)
def test_reason_gives_words_without_errno_or_path(exc: BaseException, words: str) -> None:
    assert words in reason(exc)
    assert "x.wav" not in reason(exc)


def test_where_never_shows_credentials_or_the_query() -> None:
    assert where("ws://user:pw@127.0.0.1:8765/v1/listen?token=t") == "127.0.0.1:8765"
    assert where("not a url") == "not a url"
