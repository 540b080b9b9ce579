"""``EmulatorConfig``: server-wide settings of the emulator, each tied to the Deepgram
behaviour it reproduces (or the test need it serves)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dgproto._recording import Recording

from ._codec import SPEECH_RMS_THRESHOLD
from ._faults import FaultPlan
from ._recognizer import RecognizerFactory, ToneRecognizer

__all__ = ["EmulatorConfig"]


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"EmulatorConfig.{attribute.name} must be a positive number, got {value!r}"
        )


def _positive_or_none(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _positive(inst, attribute, value)


def _non_negative(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"EmulatorConfig.{attribute.name} must be a number >= 0, got {value!r}")


def _positive_int(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"EmulatorConfig.{attribute.name} must be a positive int, got {value!r}")


def _as_keys(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None or isinstance(value, frozenset):
        return value
    if isinstance(value, str):
        raise ValueError("EmulatorConfig.accepted_keys must be a collection of str, not one str")
    return frozenset(value)


def _check_keys(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (
        not isinstance(value, frozenset) or not all(isinstance(k, str) and k for k in value)
    ):
        # The keys are secrets: say what is wrong without showing them.
        raise ValueError("EmulatorConfig.accepted_keys must hold non-empty str keys")


def _check_path(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/") or "?" in value:
        raise ValueError(
            f"EmulatorConfig.{attribute.name} must be a str starting with '/', got {value!r}"
        )


def _check_flux_path(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_path(inst, attribute, value)
        if value == getattr(inst, "path", None):
            raise ValueError("EmulatorConfig.flux_path must differ from EmulatorConfig.path")


def _check_model(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(k), str) for k in ("name", "version", "arch")
    ):
        raise ValueError(
            f"EmulatorConfig.model_info must map name, version and arch to str, got {value!r}"
        )


def _recordings(value: object) -> Recording | tuple[Recording, ...] | None:
    """``replay``: one ``Recording``, or a non-empty sequence of them as a tuple."""
    if value is None or isinstance(value, Recording):
        return value
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(item, Recording) for item in value)
    ):
        return value[0] if len(value) == 1 else tuple(value)
    raise TypeError(
        f"replay must be a Recording or a non-empty sequence of them, not {type(value).__name__}"
    )


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Server-wide settings. Times are seconds of ``now``, except where it says "audio"."""

    accepted_keys: frozenset[str] | None = attrs.field(
        default=None, converter=_as_keys, validator=_check_keys, repr=False
    )
    """API keys (or JWTs) accepted; ``None`` accepts any non-empty key. Hidden from repr."""
    require_auth: bool = True
    """Refuse requests without credentials (401), as Deepgram does. ``False`` also lets
    ``Auth.none()`` clients in."""
    path: str = attrs.field(default="/v1/listen", validator=_check_path)
    """The ``/v1/listen`` endpoint; a path that is neither this nor ``flux_path`` gets a 404."""
    flux_path: str | None = attrs.field(default="/v2/listen", validator=_check_flux_path)
    """The Flux (``/v2/listen``) endpoint on the same server; ``None`` serves no Flux."""
    idle_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    """Close with 1011 NET-0001 (after a Metadata) when no binary or text frame arrived for
    this long; Deepgram's documented ~10 s. Pings do not count. ``None`` never times out."""
    interim_interval: float = attrs.field(default=1.0, validator=_positive)
    """Audio seconds between interim Results (``interim_results=true``); Deepgram: ~1 s."""
    max_segment: float = attrs.field(default=5.0, validator=_positive)
    """Audio seconds after which a final window is forced even mid-speech (not
    ``speech_final``); also bounds empty windows during long silence."""
    vad_frame: float = attrs.field(default=0.01, validator=_positive)
    """Audio seconds per energy-VAD frame: the granularity of every timing decision."""
    vad_threshold: float = attrs.field(default=SPEECH_RMS_THRESHOLD, validator=_non_negative)
    """RMS (int16 units) at or above which a VAD frame counts as speech. The default is
    the tone codec's: every 10 ms frame inside a synthesized sentence is above it."""
    vad_hangover: float = attrs.field(default=0.2, validator=_non_negative)
    """Audio seconds of quiet before the VAD leaves "speech", so a new ``SpeechStarted``
    needs a real pause, not a gap between words. Endpointing does not wait for it: it
    counts Deepgram's ``endpointing`` ms of silence from the last loud frame."""
    recognizer: RecognizerFactory = ToneRecognizer
    """Builds one recognizer per transcribed channel (default: the tone codec)."""
    model_info: Mapping[str, str] = attrs.field(
        factory=lambda: {
            "name": "emulator-tone",
            "version": "2026-11-20.1",
            "arch": "dgproto-emulator",
        },
        validator=_check_model,
    )
    """``metadata.model_info`` of every Results (and Metadata's ``model_info`` map)."""
    faults: FaultPlan = attrs.field(factory=FaultPlan)
    """Faults for every session (a connection's ``faults=`` argument overrides it)."""
    fault_header: str | None = "x-dgproto-faults"
    """Request header a client may use to script its own session's faults
    (``FaultPlan.parse`` syntax), replacing the configured plan; ``None`` ignores it."""
    handshake_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    """Close the transport when no complete upgrade request arrived this long after the
    first call."""
    close_timeout: float | None = attrs.field(default=5.0, validator=_positive_or_none)
    """After sending a close frame, close the transport if the client's echo has not
    arrived in this long."""
    max_message_size: int = attrs.field(default=64 * 1024, validator=_positive_int)
    """Largest client text message; larger ones are refused with close 1009. Client control
    messages are tiny; this bounds memory."""
    max_channels: int = attrs.field(default=64, validator=_positive_int)
    """Largest ``channels`` a request may ask for; more gets HTTP 400
    ``INVALID_QUERY_PARAMETER``. Each channel (with ``multichannel=true``) runs its own
    recognizer, so this bounds what one request can cost everyone else on the server."""
    message_log_limit: int = attrs.field(default=1000, validator=_positive_int)
    """How many client text messages ``received_text_messages`` keeps (oldest dropped)."""
    replay: Recording | tuple[Recording, ...] | None = attrs.field(
        default=None, converter=_recordings, repr=False
    )
    """A recorded session to serve instead of transcribing: the socket server then runs
    ``ReplayConnection`` for every client (``EmulatorConnection`` itself ignores it).
    Several (a sequence: each socket of a reconnecting stream's recording) are served in
    order, the n-th connection the n-th socket, the last one again past the end, so a
    reconnect replays as recorded. Read a file with
    ``dgproto.transports.load_recording(s)``."""
