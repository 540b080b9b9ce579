"""``FaultPlan``: the ways an emulated session misbehaves on purpose.

A client library earns its keep when the network or the server goes wrong: a dropped
TCP connection, a server that stops answering, slow or fragmented replies, garbage, an
unexpected close, a refused handshake. A ``FaultPlan`` scripts those for one session so
the client's handling can be tested on a virtual clock. ``FaultPlan.parse`` reads the
compact ``key=value,key=value`` form used by the CLI (``--faults``) and by the
``x-dgproto-faults`` request header.

"Messages" below are the server's JSON text messages (Results, Metadata, ...), counted
when they are actually written (after any ``delay``); injected garbage does not count.
"Seconds" are seconds of the caller's ``now`` since the WebSocket opened.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["FaultPlan"]


def _seconds(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"FaultPlan.{attribute.name} must be a finite number of seconds >= 0, got {value!r}"
        )


def _positive_seconds(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _seconds(_inst, attribute, value)
    if value == 0:
        raise ValueError(f"FaultPlan.{attribute.name} must be > 0, got {value!r}")


def _count(minimum: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"FaultPlan.{attribute.name} must be an int >= {minimum}, got {value!r}"
            )

    return check


def _close_code(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # 1005, 1006 and 1015 are reserved for local use and never travel in a close frame;
    # 1004 is reserved; below 1000 and above 4999 are not close codes at all.
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1000 <= value <= 4999
        or value in (1004, 1005, 1006, 1015)
    ):
        raise ValueError(
            f"FaultPlan.{attribute.name} must be a WebSocket close code that can be sent "
            f"(1000-4999 except 1004, 1005, 1006, 1015), got {value!r}"
        )


def _reason(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or len(value.encode("utf-8")) > 123:
        raise ValueError(
            f"FaultPlan.{attribute.name} must be a str of at most 123 UTF-8 bytes "
            f"(a close frame's limit), got {value!r}"
        )


def _status(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(
            f"FaultPlan.{attribute.name} must be an HTTP status 400-599, got {value!r}"
        )


def _optional_text(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"FaultPlan.{attribute.name} must be a str or None, got {value!r}")


@attrs.frozen(kw_only=True)
class FaultPlan:
    """What goes wrong in one session. Every field defaults to "nothing goes wrong"."""

    drop_after_seconds: float | None = attrs.field(default=None, validator=_seconds)
    """Drop the connection this long after it opened: no close frame, the transport just
    closes (what a crashed server or a cut network looks like: the client sees EOF)."""
    drop_after_messages: int | None = attrs.field(default=None, validator=_count(0))
    """Drop the connection (no close frame) right after writing this many messages."""
    stall_after_seconds: float | None = attrs.field(default=None, validator=_seconds)
    """Stop responding this long after opening: no messages, pongs, close echo or idle
    close. Input is read and ignored; the session ends only when the client gives up."""
    stall_after_messages: int | None = attrs.field(default=None, validator=_count(0))
    """Stop responding right after writing this many messages."""
    delay: float | None = attrs.field(default=None, validator=_positive_seconds)
    """Hold every server message (and the server's close frame) this long before writing
    it, order kept: a slow server. Pongs are not delayed."""
    fragment: int | None = attrs.field(default=None, validator=_count(1))
    """Split every text message into frames of at most this many bytes (continuation
    frames; a multi-byte character is never split)."""
    ping_interval: float | None = attrs.field(default=None, validator=_positive_seconds)
    """Send a WebSocket ping this often; a client must answer with a pong."""
    unknown_every: int | None = attrs.field(default=None, validator=_count(1))
    """After every Nth message, also send a JSON message of an unknown ``type``."""
    malformed_every: int | None = attrs.field(default=None, validator=_count(1))
    """After every Nth message, also send a text message that is not valid JSON."""
    close_after_seconds: float | None = attrs.field(default=None, validator=_seconds)
    """Send a close frame with ``close_code``/``close_reason`` this long after opening."""
    close_after_messages: int | None = attrs.field(default=None, validator=_count(0))
    """Send a close frame with ``close_code``/``close_reason`` after this many messages."""
    close_code: int = attrs.field(default=1011, validator=_close_code)
    """The code for ``close_after_*`` (default 1011, Deepgram's server-error code)."""
    close_reason: str = attrs.field(default="", validator=_reason)
    """The reason for ``close_after_*``, e.g. a ``https://dpgr.am/net0000`` text."""
    withhold_end_signals: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )
    """Never send ``speech_final: true`` nor ``UtteranceEnd``: what Deepgram does in noise
    (livekit/agents#931), so only a client's own backstop ends the utterance."""
    reject_status: int | None = attrs.field(default=None, validator=_status)
    """Refuse the handshake with this HTTP status and a Deepgram-shaped JSON body."""
    reject_err_code: str | None = attrs.field(default=None, validator=_optional_text)
    """``err_code`` of the refusal body; ``None`` picks Deepgram's code for the status."""
    reject_err_msg: str | None = attrs.field(default=None, validator=_optional_text)
    """``err_msg`` of the refusal body; ``None`` picks Deepgram's text for the status."""

    @property
    def any(self) -> bool:
        """True when this plan changes anything at all."""
        return self != FaultPlan()

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Read ``"drop_after_messages=3,fragment=16"``: comma-separated ``field=value``.

        Keys are the field names; ``""`` is the empty plan. Values cannot contain a comma
        (so neither can ``close_reason`` here). Raises ``ValueError`` naming the key.
        """
        if not isinstance(spec, str):
            raise ValueError(f"FaultPlan.parse: spec must be a str, got {type(spec).__name__}")
        kwargs: dict[str, Any] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            key, equals, text = item.partition("=")
            key = key.strip()
            if not equals:
                raise ValueError(f"FaultPlan.parse: expected key=value, got {item!r}")
            kind = _FIELD_KINDS.get(key)
            if kind is None:
                raise ValueError(
                    f"FaultPlan.parse: unknown fault {key!r}; known: {', '.join(_FIELD_KINDS)}"
                )
            kwargs[key] = _convert(key, kind, text.strip())
        return cls(**kwargs)

    def to_spec(self) -> str:
        """The ``parse`` form of this plan (only the fields that differ from the default)."""
        parts = []
        default = FaultPlan()
        for field in attrs.fields(FaultPlan):
            value = getattr(self, field.name)
            if value != getattr(default, field.name):
                parts.append(f"{field.name}={value}")
        return ",".join(parts)


_FIELD_KINDS: dict[str, str] = {
    "drop_after_seconds": "float",
    "drop_after_messages": "int",
    "stall_after_seconds": "float",
    "stall_after_messages": "int",
    "delay": "float",
    "fragment": "int",
    "ping_interval": "float",
    "unknown_every": "int",
    "malformed_every": "int",
    "close_after_seconds": "float",
    "close_after_messages": "int",
    "close_code": "int",
    "close_reason": "str",
    "withhold_end_signals": "bool",
    "reject_status": "int",
    "reject_err_code": "str",
    "reject_err_msg": "str",
}


_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _convert(key: str, kind: str, text: str) -> Any:
    if kind == "str":
        return text
    if kind == "bool":
        if text.lower() not in _BOOLS:
            raise ValueError(f"FaultPlan.parse: {key} must be true or false, got {text!r}")
        return _BOOLS[text.lower()]
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        expected = "an int" if kind == "int" else "a number"
        raise ValueError(f"FaultPlan.parse: {key} must be {expected}, got {text!r}") from None
