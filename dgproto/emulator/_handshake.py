"""Deciding an upgrade request: accept it, or refuse it the way Deepgram does.

Checks run in Deepgram's order: the path (404), a scripted refusal, the credentials
(401), then the query (400). The path picks the endpoint: ``/v1/listen`` parses the query
with ``LiveOptions.from_query``, ``/v2/listen`` (Flux) with ``FluxOptions.from_query``,
the very tables the client encodes with, so client and emulator agree on what is valid;
on top of them come the rules only a server applies (a raw encoding needs a
``sample_rate``, a Flux model is refused on ``/v1/listen`` and any other model on
``/v2/listen``, the emulator can only decode raw PCM).

Credentials are compared, never echoed: no key appears in a response or an error.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from dgproto._flux_options import FluxOptions
from dgproto._options import LiveOptions

from ._faults import FaultPlan
from ._pcm import ENCODINGS

__all__ = ["Accept", "Reject", "SUPPORTED_ENCODINGS", "evaluate", "find_credentials"]

#: Raw encodings the emulator can decode into samples (and so put on an audio clock).
SUPPORTED_ENCODINGS: tuple[str, ...] = ENCODINGS

_SCHEMES = ("token", "bearer")


@attrs.frozen(kw_only=True)
class Accept:
    """Open the WebSocket with these options."""

    options: LiveOptions | FluxOptions
    #: ``"token"``/``"bearer"`` when the client offered the subprotocol pair, echoed back.
    subprotocol: str | None
    faults: FaultPlan


@attrs.frozen(kw_only=True)
class Reject:
    """Answer with this HTTP status and a Deepgram-shaped JSON body."""

    status: int
    #: ``None`` picks Deepgram's ``err_code``/``err_msg`` for the status.
    err_code: str | None = None
    err_msg: str | None = None


def find_credentials(
    headers: Sequence[tuple[bytes, bytes]], subprotocols: Sequence[str]
) -> tuple[str | None, str | None]:
    """``(key, subprotocol to echo)`` from the request.

    ``Authorization: Token KEY`` or ``Bearer KEY`` (scheme in any case) wins; otherwise the
    browser form ``Sec-WebSocket-Protocol: token, KEY`` (or ``bearer, KEY``). The offered
    ``token``/``bearer`` subprotocol is echoed whichever form carried the key, because a
    browser that offered subprotocols expects one back.
    """
    key: str | None = None
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, secret = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() in _SCHEMES:
                key = secret.strip()
            break
    subprotocol: str | None = None
    for index, offered in enumerate(subprotocols[:-1]):
        if offered.lower() in _SCHEMES:
            subprotocol = offered
            if key is None:
                key = subprotocols[index + 1]
            break
    return key, subprotocol


def _header(headers: Sequence[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value.decode("latin-1")
    return None


def _is_flux_model(model: str | None) -> bool:
    return model is not None and model.lower().startswith("flux")


def _server_rules(options: LiveOptions | FluxOptions) -> str | None:
    """What a server refuses beyond the options' own checks (``None``: all fine)."""
    if isinstance(options, FluxOptions):
        if not _is_flux_model(options.model):
            return (
                f"Model {options.model!r} is not a Flux model: /v2/listen serves flux-* "
                "models (flux-general-en, flux-general-multi); connect to /v1/listen instead."
            )
    elif _is_flux_model(options.model):
        return f"Model {options.model!r} is a Flux model: connect to /v2/listen instead."
    encoding = options.encoding
    if encoding is None:
        if isinstance(options, FluxOptions):  # Flux takes raw audio only
            return "encoding is required on /v2/listen: Flux needs raw audio (e.g. linear16)."
        return None  # a container (mp3, ogg, ...): accepted, counted, not transcribed
    if encoding not in SUPPORTED_ENCODINGS:
        return (
            f"The dgproto emulator cannot decode encoding={encoding}; use one of "
            f"{', '.join(SUPPORTED_ENCODINGS)}."
        )
    if options.sample_rate is None:
        return f"sample_rate is required with encoding={encoding}."
    if not 1000 <= options.sample_rate <= 192000:
        return f"sample_rate must be between 1000 and 192000 Hz, got {options.sample_rate}."
    return None


def evaluate(
    *,
    target: str,
    headers: Sequence[tuple[bytes, bytes]],
    subprotocols: Sequence[str],
    path: str,
    require_auth: bool,
    accepted_keys: Collection[str] | None,
    faults: FaultPlan,
    fault_header: str | None,
    flux_path: str | None = None,
    max_channels: int,
) -> Accept | Reject:
    """Decide one upgrade request (``target`` is the path with its query).

    ``channels`` above ``max_channels`` is refused before anything is built for it: each
    transcribed channel costs memory and CPU, and one request asking for 100,000 once
    stalled every other client of ``dgproto serve`` for seconds.
    """
    request_path, _, query = target.partition("?")
    kind: type[LiveOptions] | type[FluxOptions] = LiveOptions
    if request_path == flux_path:
        kind = FluxOptions
    elif request_path != path:
        return Reject(status=404, err_msg=f"No such endpoint {request_path!r}; use {path!r}.")
    if fault_header is not None:
        spec = _header(headers, fault_header.lower().encode("latin-1"))
        if spec is not None:
            try:
                faults = FaultPlan.parse(spec)
            except ValueError as exc:
                return Reject(status=400, err_msg=f"{fault_header}: {exc}")
    if faults.reject_status is not None:
        return Reject(
            status=faults.reject_status,
            err_code=faults.reject_err_code,
            err_msg=faults.reject_err_msg,
        )
    key, subprotocol = find_credentials(headers, subprotocols)
    if require_auth and (not key or (accepted_keys is not None and key not in accepted_keys)):
        return Reject(status=401)
    try:
        options = kind.from_query(query)
    except ValueError as exc:
        message = str(exc).replace(f"{kind.__name__}.", "")
        return Reject(
            status=400,
            err_code="INVALID_QUERY_PARAMETER",
            err_msg=f"Failed to deserialize query parameters: {message}",
        )
    channels = options.channels if isinstance(options, LiveOptions) else None
    if channels is not None and channels > max_channels:
        return Reject(
            status=400,
            err_code="INVALID_QUERY_PARAMETER",
            err_msg=(
                "Failed to deserialize query parameters: channels must be at most "
                f"{max_channels} on this server, got {channels}"
            ),
        )
    problem = _server_rules(options)
    if problem is not None:
        return Reject(status=400, err_msg=problem)
    return Accept(options=options, subprotocol=subprotocol, faults=faults)
