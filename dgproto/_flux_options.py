"""``FluxOptions``: the ``/v2/listen`` (Flux) query, on the same kinds as ``LiveOptions``.

Parameters and ranges, newest source first:

- deepgram-sdk (Python) 7.17.0, ``deepgram/listen/v2/raw_client.py`` ``connect(...)`` and
  ``deepgram/types/listen_v2*.py``: ``model``, ``encoding``, ``sample_rate``,
  ``eager_eot_threshold``, ``eot_threshold``, ``eot_timeout_ms``, ``keyterm``,
  ``language_hint``, ``profanity_filter``, ``numerals``, ``redact``, ``mip_opt_out``,
  ``tag``. ``listen_v2eot_threshold.py``: "Valid Values 0.5 - 1.0. Set to 1.0 to suppress
  confidence-based end-of-turn detection"; ``listen_v2eager_eot_threshold.py``: "Valid
  Values 0.3 - 0.9"; ``listen_v2eot_timeout_ms.py``: "Valid Values 500 - 60000".
- research/protocol.md §5.1 (DEVREF-flux, NET ``FluxSchema.cs``; older): eot_threshold
  0.5-0.9, eot_timeout_ms 500-10000. The newer SDK wins; the server has the last word.

Like ``LiveOptions``, booleans are lowercase, lists repeat the key, ``params`` passes
unknown parameters through verbatim, and the emulator parses with this very table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._options import (
    _BOOL,
    _POSITIVE,
    _TEXT,
    _as_params,
    _as_tuple,
    _Choice,
    _FrozenMap,
    _meta,
    _param,
    _QueryOptions,
    _Range,
    _Repeated,
    _Text,
)

__all__ = ["FLUX_ENCODINGS", "FluxOptions"]

#: ``ListenV2Encoding`` in deepgram-sdk 7.17 (omit ``encoding`` for containerized audio).
FLUX_ENCODINGS = ("linear16", "linear32", "mulaw", "alaw", "opus", "ogg-opus")


def _params_factory() -> Mapping[str, tuple[str, ...]]:
    return _FrozenMap({})


@attrs.frozen(kw_only=True, repr=False)
class FluxOptions(_QueryOptions):
    """The ``/v2/listen`` query parameters, typed and checked when constructed.

    ``model`` is required (``flux-general-en``, ``flux-general-multi``, or a newer name);
    every other field defaults to ``None``, "not sent", and the server applies its default
    (eot_threshold 0.7, eot_timeout_ms 5000, no eager end of turn). Bad values raise
    ``ValueError`` naming the field and the allowed values. Flux has no ``language``.
    """

    model: str = attrs.field(metadata=_meta(_TEXT))
    """``flux-general-en``, ``flux-general-multi``; open to new names."""
    encoding: str | None = _param(_Choice(*FLUX_ENCODINGS))
    """Raw audio encoding; omit it for containerized audio."""
    sample_rate: int | None = _param(_POSITIVE)
    """Hz; required with ``encoding`` (16000 recommended)."""
    eot_threshold: float | None = _param(_Range(0.5, 1.0))
    """End-of-turn confidence that ends a turn, 0.5-1.0 (1.0: only ``eot_timeout_ms`` or
    ``ForceEndTurn`` end turns). Server default 0.7."""
    eager_eot_threshold: float | None = _param(_Range(0.3, 0.9))
    """Confidence that fires ``EagerEndOfTurn`` (and enables ``TurnResumed``), 0.3-0.9."""
    eot_timeout_ms: int | None = _param(_Range(500, 60000, integer=True))
    """Milliseconds after speech that end a turn whatever the confidence, 500-60000."""
    keyterm: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    """Keyterm prompting; a multi-word phrase is one item."""
    language_hint: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    """BCP-47 hints for ``flux-general-multi``."""
    profanity_filter: bool | None = _param(_BOOL)
    numerals: bool | None = _param(_BOOL)
    redact: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    """What to redact (``numbers``, ``aggressive_numbers``, ...; the set is open)."""
    mip_opt_out: bool | None = _param(_BOOL)
    """Opt out of Deepgram's Model Improvement Program."""
    tag: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_Text(max_len=128)))
    )
    """Usage-reporting labels, at most 128 characters each."""
    params: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=_params_factory, converter=_as_params
    )
    """Parameters dgproto does not know yet, sent verbatim after the typed ones."""

    def __attrs_post_init__(self) -> None:
        if self.model is None:
            raise ValueError("FluxOptions.model is required, e.g. 'flux-general-en'")
        self._check_fields()

    @classmethod
    def from_query(cls, query: str) -> FluxOptions:
        """Parse and check a client's query string (the emulator's side of ``to_query``)."""
        kwargs: dict[str, Any] = cls._parse_query(query)
        kwargs.setdefault("model", None)
        return cls(**kwargs)
