"""Where ``transcribe`` connects and with which key: the ``--url`` checked up front (one
line saying what to do, never a traceback), and the ``DEEPGRAM_API_KEY`` decision.

The key decision: ``--api-key`` is always sent (you asked for it). The environment's key
is sent over ``wss://``, and over ``ws://`` only to a loopback address (127.0.0.0/8,
::1, localhost): in clear text there it still never leaves this machine. To any other
``ws://`` host it is withheld, and ``transcribe`` says so and why, once, on stderr.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping

import attrs

from .shared import API_KEY_ENV, CliError

__all__ = ["KeyChoice", "check_url", "choose_key", "is_loopback", "rejection_hint"]

_EXAMPLE = "ws://127.0.0.1:8765/v1/listen"


def check_url(url: str) -> str:
    """``url`` if it is a ``ws://``/``wss://`` URL the adapters accept, else a ``CliError``
    that says what to type instead. Never echoes a ``user:password@`` part."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        fixed = ("ws" if scheme == "http" else "wss") + url[len(scheme) :]
        raise CliError(f"--url must start with ws:// or wss://, not {scheme}://: try {fixed}")
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise CliError(f"--url must be a ws:// or wss:// URL, e.g. {_EXAMPLE}")
    if "@" in parts.netloc:
        raise CliError(
            f"--url must not hold user:password@: pass the key with --api-key or ${API_KEY_ENV}"
        )
    if not parts.hostname:
        raise CliError(f"--url has no host, e.g. {_EXAMPLE}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        port = parts.netloc.rpartition(":")[2]
        raise CliError(f"--url has a bad port {port!r}: give a number from 1 to 65535") from None
    return url


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (``localhost`` or a loopback address)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class KeyChoice:
    """The key to send (``None``: none) and where it came from, for messages."""

    key: str | None
    #: ``"--api-key"``, ``"$DEEPGRAM_API_KEY"`` or ``""`` (no key sent).
    source: str
    #: Why the environment's key was not sent ("" when it was, or there was none).
    withheld: str = ""


def choose_key(url: str, flag: str | None, environ: Mapping[str, str]) -> KeyChoice:
    """Decide which key ``transcribe`` sends to ``url`` (see the module docstring)."""
    if flag is not None:
        if not flag.strip():
            raise CliError(
                f"--api-key is empty: give your key, or leave the flag out to use ${API_KEY_ENV}"
            )
        return KeyChoice(flag, "--api-key")
    env = environ.get(API_KEY_ENV) or None
    if env is None:
        return KeyChoice(None, "")
    if url.lower().startswith("wss://") or is_loopback(url):
        return KeyChoice(env, f"${API_KEY_ENV}")
    host = urllib.parse.urlsplit(url).hostname
    return KeyChoice(
        None,
        "",
        withheld=f"${API_KEY_ENV} is set but not sent: ws:// is unencrypted and {host} is "
        "not this machine (use wss://, or pass --api-key to send a key anyway)",
    )


def rejection_hint(choice: KeyChoice, status_code: int, url: str) -> str:
    """What to do about an HTTP 401/403, given what was sent."""
    if status_code not in (401, 403):
        return ""
    local = is_loopback(url)
    if choice.key is None:
        hint = "the server wants an API key: pass --api-key KEY"
        if choice.withheld:
            hint += f" ({choice.withheld})"
        elif local:
            hint += " (or start `dgproto serve` with --no-auth)"
        return hint
    hint = f"the server did not accept the key from {choice.source}"
    if local:
        hint += (
            "; `dgproto serve` accepts any non-empty key unless started with --api-key K, "
            "then only K"
        )
    return hint
