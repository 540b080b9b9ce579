"""Timeouts and limits of a live connection, each tied to the Deepgram behaviour it answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Config"]


def _positive_or_none(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"Config.{attribute.name} must be a positive number or None, got {value!r}"
        )


def _positive_int(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Config.{attribute.name} must be a positive int, got {value!r}")


@attrs.frozen(kw_only=True)
class Config:
    """How long to wait for what, and how much to hold. All times are in seconds.

    ``None`` disables a timer. The defaults suit api.deepgram.com; tests shrink them.
    """

    keepalive_interval: float | None = attrs.field(default=4.0, validator=_positive_or_none)
    """Send ``{"type":"KeepAlive"}`` after this long with nothing sent.

    Deepgram closes a stream with 1011 NET-0001 after about 10 s without audio or a text
    message, and its docs ask for a KeepAlive every 3-5 s. Audio and every other text
    message reset this timer, so KeepAlive only goes out while the stream is idle.
    """

    open_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    """The ``101 Switching Protocols`` must arrive this long after ``connect()``.

    Deepgram's handshake takes 0.1-0.3 s; a stalled upgrade otherwise hangs forever.
    """

    finalize_timeout: float | None = attrs.field(default=3.0, validator=_positive_or_none)
    """Give up waiting for a ``Finalize`` to complete after this long.

    Deepgram answers Finalize with ``from_finalize: true`` results only "when there is a
    noticeable amount of audio buffered"; with little or none, no reply ever comes. The
    ``FinalizeComplete`` then reports ``reason="timeout"`` instead of leaving you waiting.
    ``/v1/listen`` only: Flux has no Finalize.
    """

    close_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    """After ``CloseStream``, wait this long for the server's close frame.

    Deepgram flushes final results, sends one Metadata and closes with 1000. If that does
    not happen in time, dgproto sends its own close frame and reports
    ``Closed(initiator="timeout")``; everything received until then is kept.
    """

    utterance_timeout: float | None = attrs.field(default=3.0, validator=_positive_or_none)
    """End an utterance this long after its last final with words if no end signal came.

    Deepgram ends an utterance with ``speech_final`` (endpointing, 10 ms of silence by
    default) or ``UtteranceEnd`` (``utterance_end_ms``, at least 1000 ms, on a ~1 s
    tick), so when a signal comes it comes within about 2 s of the last final. In noise
    ``speech_final`` sometimes never comes (livekit/agents#931, deepgram-js-sdk#281) and
    without ``interim_results`` there is no ``UtteranceEnd``: an app would wait forever.
    3 s lets the real signals win and still answers a stalled turn. Interim results with
    new words push the deadline back (the user is still talking). Without
    ``interim_results``, long unbroken speech can bring finals further apart than this:
    raise it there. ``None`` disables the backstop.
    """

    utterance_max_seconds: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    """End an utterance (reason ``"timeout"``) once its words span this much audio.

    An utterance holds its finals until it ends. Unbroken speech with no end signal
    (``endpointing=false`` without ``utterance_end_ms``, a podcast, audio sent faster than
    real time so the wall-clock backstop never fires) would otherwise grow one utterance,
    and the memory behind it, for the whole stream. 60 s is far past any spoken turn and
    keeps at most about a minute of finals per channel. ``None`` removes the cap.
    """

    max_message_size: int = attrs.field(default=1 << 20, validator=_positive_int)
    """Largest message accepted: characters of a text message (Deepgram's JSON is ASCII,
    so bytes in practice), bytes of a binary message or of a rejected-handshake body.

    Deepgram messages are a few KiB; a larger one means a broken or hostile peer. Over the
    limit the connection closes with 1009 (a rejection body is cut short), so memory stays
    bounded.
    """

    ping_interval: float | None = attrs.field(default=5.0, validator=_positive_or_none)
    """Send a WebSocket ping this often, so a peer that went silent is noticed.

    A NAT or load balancer that drops an idle flow leaves the socket open and silent;
    without pings nothing ever notices. On by default because it is safe: pings are
    control frames that Deepgram answers (the official Python SDK's ``websockets`` client
    pings every 20 s), they are not Deepgram activity (the idle-aware KeepAlive rule is
    unchanged), and they cost a few bytes. ``None`` turns them off.
    Flux has no KeepAlive and idles on these pings.
    """

    ping_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    """Close with ``Closed(1006, initiator="timeout", retryable=True)`` if a ping is not
    answered in this long.

    With the defaults a silent peer is detected at most ``ping_interval + ping_timeout``
    = 15 s after it went quiet (the issue's bound is 20 s).
    """

    json_loads: Callable[[str], Any] | None = attrs.field(default=None, repr=False)
    """Parser for incoming text messages; ``None`` means ``json.loads``. Plug ``orjson.loads``
    for speed: decoding Results is the hot inbound path."""
