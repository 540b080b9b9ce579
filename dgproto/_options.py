"""What to ask Deepgram for (``LiveOptions``, the ``/v1/listen`` query) and how to prove who
you are (``Auth``).

One declarative table drives the query string: every ``LiveOptions`` field carries a *kind*
in its attrs metadata (bool, int, text, choice, repeated, ...) that checks a value, writes it
to the wire and reads it back. The client encodes with it and the emulator parses a client's
query with the very same table, so both sides agree on what is valid.

Wire format (research/protocol.md §1.3): booleans are lowercase ``true``/``false`` (Deepgram
rejects ``True``); lists repeat the key (``keyterm=a&keyterm=b``); pairs come out in field
declaration order, then ``params`` in insertion order. Keys and values are percent-encoded
with ``urllib.parse.quote(..., safe="")``: a space is ``%20`` (so ``keyterm=term%20two`` is
one phrase), ``+`` is ``%2B``, and ``:`` in ``extra=k:v``, ``replace=a:b`` and
``keywords=word:2`` is sent as ``%3A``, exactly as the official Python SDK's ``urlencode``
does, so the server is known to decode it.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit, urlunsplit

import attrs

__all__ = ["Auth", "LiveOptions", "redact_callback", "redact_query"]

_KIND = "dgproto.kind"
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

_V = TypeVar("_V", covariant=True)


def _show(value: object) -> str:
    """A value for an error message, cut short: the emulator echoes these in HTTP 400s."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(name: str, expected: str, value: object) -> ValueError:
    return ValueError(f"{name} must be {expected}, got {_show(value)}")


class _FrozenMap(Mapping[str, _V]):
    """A read-only, hashable mapping, so a frozen ``LiveOptions`` can be hashed and shared."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, _V]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


# --- kinds: how one query parameter is checked, written and read -----------------------------


class _Kind(abc.ABC):
    """Checks a Python value (``check`` raises ``ValueError`` naming ``name``), writes it as
    query values (``encode``) and reads back every value its key had in a query, in order
    (``decode``; the result is checked later, by the constructor)."""

    expected: str

    @abc.abstractmethod
    def check(self, name: str, value: Any) -> None: ...

    @abc.abstractmethod
    def encode(self, value: Any) -> list[str]: ...

    @abc.abstractmethod
    def decode(self, name: str, texts: list[str]) -> Any: ...


class _Scalar(_Kind):
    """One value per key; when a query repeats the key, the last one wins."""

    def encode(self, value: Any) -> list[str]:
        return [self.text(value)]

    def decode(self, name: str, texts: list[str]) -> Any:
        return self.parse(name, texts[-1])

    def text(self, value: Any) -> str:
        return str(value)

    def parse(self, name: str, text: str) -> Any:
        return text


class _Bool(_Scalar):
    expected = "a bool (true or false)"

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise _bad(name, self.expected, value)

    def text(self, value: Any) -> str:
        return "true" if value else "false"

    def parse(self, name: str, text: str) -> Any:
        if text not in ("true", "false"):
            raise _bad(name, "true or false (lowercase)", text)
        return text == "true"


def _parse_int(name: str, expected: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _bad(name, expected, text)
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts
        raise _bad(name, expected, text) from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Int(_Scalar):
    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.expected = "a positive int" if minimum == 1 else "a non-negative int"

    def check(self, name: str, value: Any) -> None:
        if not _is_int(value) or value < self.minimum:
            raise _bad(name, self.expected, value)

    def parse(self, name: str, text: str) -> Any:
        return _parse_int(name, self.expected, text)


class _Range(_Scalar):
    """A number within ``[low, high]``; ``integer`` ones refuse fractions."""

    def __init__(self, low: float, high: float, *, integer: bool = False) -> None:
        self.low, self.high, self.integer = low, high, integer
        self.expected = f"{'an int' if integer else 'a number'} from {low:g} to {high:g}"

    def check(self, name: str, value: Any) -> None:
        number = _is_int(value) or (not self.integer and isinstance(value, float))
        if not number or not self.low <= value <= self.high:  # NaN fails the comparison
            raise _bad(name, self.expected, value)

    def text(self, value: Any) -> str:
        return str(value) if self.integer else repr(float(value))

    def parse(self, name: str, text: str) -> Any:
        if self.integer:
            return _parse_int(name, self.expected, text)
        if not _NUMBER.fullmatch(text):
            raise _bad(name, self.expected, text)
        return float(text)


class _Endpointing(_Scalar):
    """Milliseconds of silence that end an utterance, or ``False`` to turn endpointing off."""

    expected = "a non-negative int (milliseconds) or False"

    def check(self, name: str, value: Any) -> None:
        if value is not False and (not _is_int(value) or value < 0):
            raise _bad(name, self.expected, value)

    def text(self, value: Any) -> str:
        return "false" if value is False else str(value)

    def parse(self, name: str, text: str) -> Any:
        return False if text == "false" else _parse_int(name, self.expected, text)


class _Text(_Scalar):
    """A non-empty string. Open on purpose: Deepgram adds models and languages all the time."""

    def __init__(self, *, max_len: int | None = None, expected: str = "a non-empty str") -> None:
        self.max_len = max_len
        self.expected = expected
        if max_len is not None:
            self.expected += f" of at most {max_len} characters"

    def check(self, name: str, value: Any) -> None:
        valid = isinstance(value, str) and value and not _SURROGATE.search(value)
        if not valid or (self.max_len is not None and len(value) > self.max_len):
            raise _bad(name, self.expected, value)


class _Choice(_Scalar):
    def __init__(self, *values: str) -> None:
        self.values = values
        self.expected = "one of " + ", ".join(values)

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str) or value not in self.values:
            raise _bad(name, self.expected, value)


class _Keyword(_Text):
    """``WORD`` or ``WORD:INTENSIFIER``; the intensifier is a number and may be negative."""

    def __init__(self) -> None:
        super().__init__(expected="WORD or WORD:INTENSIFIER (a number), e.g. 'deepgram:2'")

    def check(self, name: str, value: Any) -> None:
        super().check(name, value)
        word, colon, boost = value.rpartition(":")
        if colon and (not word or not _NUMBER.fullmatch(boost)):
            raise _bad(name, self.expected, value)


class _Replacement(_Text):
    """``FIND:REPLACEMENT``; the replacement may be empty, the term to find may not."""

    def __init__(self) -> None:
        super().__init__(expected="FIND:REPLACEMENT, e.g. 'monika:Monica'")

    def check(self, name: str, value: Any) -> None:
        super().check(name, value)
        find, colon, _ = value.partition(":")
        if not colon or not find:
            raise _bad(name, self.expected, value)


class _Callback(_Scalar):
    """An http(s) or ws(s) URL. Never echoed: it may carry basic-auth credentials."""

    schemes = ("http", "https", "ws", "wss")
    expected = "an absolute URL with scheme http, https, ws or wss"

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a str URL, got {type(value).__name__}")
        try:
            parts = urlsplit(value)
        except ValueError:  # e.g. an unbalanced IPv6 bracket
            parts = urlsplit("")
        if parts.scheme.lower() not in self.schemes or not parts.netloc or _SURROGATE.search(value):
            raise ValueError(f"{name} must be {self.expected} (the value is not shown)")


class _Repeated(_Kind):
    """A list: stored as a tuple, sent as one ``key=value`` pair per item."""

    def __init__(self, item: _Scalar) -> None:
        self.item = item
        self.expected = f"a list of items that are each {item.expected}"

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, (str, bytes)):
            raise ValueError(
                f"{name} must be a list of strings, not a single {type(value).__name__}: "
                f"wrap it in a list, e.g. [{_show(value)}]"
            )
        if not isinstance(value, tuple):
            raise _bad(name, self.expected, value)
        for index, item in enumerate(value):
            self.item.check(f"{name}[{index}]", item)

    def encode(self, value: Any) -> list[str]:
        return [self.item.text(item) for item in value]

    def decode(self, name: str, texts: list[str]) -> Any:
        return tuple(self.item.parse(name, text) for text in texts)


class _Extra(_Kind):
    """Deepgram's ``extra`` metadata: sent as ``extra=KEY:VALUE`` per pair, echoed back in
    ``metadata.extra``. A key repeated in a query keeps its last value, as on the server."""

    max_pair = 2048
    expected = f"a mapping of str keys (non-empty, no ':') to str values, {max_pair} chars a pair"

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise _bad(name, self.expected, value)
        for key, item in value.items():
            if not isinstance(key, str) or not key or ":" in key or _SURROGATE.search(key):
                raise _bad(f"{name} key", "a non-empty str without ':'", key)
            if not isinstance(item, str) or _SURROGATE.search(item):
                raise _bad(f"{name}[{key!r}]", "a str", item)
            if len(key) + 1 + len(item) > self.max_pair:
                raise _bad(f"{name}[{key!r}]", f"at most {self.max_pair} chars with its key", item)

    def encode(self, value: Any) -> list[str]:
        return [f"{key}:{item}" for key, item in value.items()]

    def decode(self, name: str, texts: list[str]) -> Any:
        pairs: dict[str, str] = {}
        for text in texts:
            key, colon, item = text.partition(":")
            if not colon:
                raise _bad(name, "KEY:VALUE", text)
            pairs[key] = item
        return _FrozenMap(pairs)


_BOOL = _Bool()
_TEXT = _Text()
_POSITIVE = _Int(1)
_NON_NEGATIVE = _Int(0)
_ENCODING = _Choice(
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb",
    "opus", "ogg-opus", "speex", "g729",
)  # fmt: skip
_REDACT = _Choice("true", "false", "pci", "numbers", "aggressive_numbers", "ssn")
#: AMR codecs have one sample rate each (DOCS sample-rate.mdx).
_FIXED_RATES = {"amr-nb": 8000, "amr-wb": 16000}


def _param(kind: _Kind) -> Any:
    """A query-parameter field: ``None`` (the default) means "not sent"."""
    return attrs.field(default=None, metadata=_meta(kind))


def _meta(kind: _Kind) -> dict[str, _Kind]:
    return {_KIND: kind}


# --- converters: normalize shape only; the kinds judge the values (they know the field name) --


def _as_list(value: object) -> object:
    """Any iterable becomes a tuple and an empty one becomes ``None`` (nothing is sent either
    way). A bare str, bytes or non-iterable is handed through unchanged for the check to
    reject with the field's name: iterating a str would send one character per item."""
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return value
    return tuple(value) or None


def _as_tuple(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return cast("tuple[str, ...] | None", _as_list(value))


def _as_redact(value: Iterable[str | bool] | None) -> tuple[str, ...] | None:
    """Like ``_as_tuple``, with ``True``/``False`` spelled as Deepgram's ``true``/``false``."""
    items = _as_list(value)
    if isinstance(items, tuple):
        items = tuple(("true" if i else "false") if isinstance(i, bool) else i for i in items)
    return cast("tuple[str, ...] | None", items)


def _as_extra(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    result: object = value
    if isinstance(result, Mapping):
        result = _FrozenMap(result) or None
    return cast("Mapping[str, str] | None", result)


def _as_params(value: Mapping[str, str | Sequence[str]] | None) -> Mapping[str, tuple[str, ...]]:
    """Every value becomes a tuple (a str is one value), so equal queries give equal options."""
    result: object = {} if value is None else value
    if isinstance(result, Mapping):
        result = _FrozenMap(
            {
                key: (item,) if isinstance(item, str) else _as_list(item)
                for key, item in result.items()
            }
        )
    return cast("Mapping[str, tuple[str, ...]]", result)


def _redact_url(url: str) -> str:
    """``repr`` for ``callback``."""
    return repr(redact_callback(url))


_REDACTED = "<redacted>"


def redact_callback(url: str) -> str:
    """A callback URL fit for logs: its ``user:password@`` and every query (and fragment)
    value become ``<redacted>``. A callback is the app's own endpoint and commonly carries
    credentials in either place (``https://u:p@host/hook?token=...``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable (an unbalanced IPv6 bracket): show nothing of it
        return _REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{key}={_REDACTED}" if sep else key
        for key, sep, _ in (item.partition("=") for item in parts.query.split("&"))
    )
    fragment = _REDACTED if parts.fragment else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def redact_query(query: str) -> str:
    """A percent-encoded query (or a request target, ``/path?query``) with each
    ``callback`` value passed through ``redact_callback``; the rest is left as it is."""
    if "callback" not in unquote_plus(query):
        return query
    head, mark, rest = query.partition("?") if query.startswith("/") else ("", "", query)
    items = []
    for item in rest.split("&"):
        key, sep, value = item.partition("=")
        if sep and unquote_plus(key) == "callback":
            item = f"{key}={quote(redact_callback(unquote_plus(value)), safe=':/@<>')}"
        items.append(item)
    return head + mark + "&".join(items)


class _QueryOptions:
    """What ``LiveOptions`` and ``FluxOptions`` share: checking every typed field with its
    kind, the ``params`` pass-through, ``repr`` of the set fields only, and the query string
    both ways. A subclass is an attrs class whose typed fields carry a kind."""

    __slots__ = ()

    params: Mapping[str, tuple[str, ...]]

    @classmethod
    def _typed(cls) -> dict[str, attrs.Attribute[Any]]:
        found = _TYPED.get(cls)
        if found is None:
            fields = attrs.fields(cast("type[Any]", cls))
            found = _TYPED[cls] = {f.name: f for f in fields if _KIND in f.metadata}
        return found

    def _check_fields(self) -> None:
        name = type(self).__name__
        for field in self._typed().values():
            value = getattr(self, field.name)
            if value is not None:
                field.metadata[_KIND].check(f"{name}.{field.name}", value)
        self._check_params()

    def _check_params(self) -> None:
        cls = type(self).__name__
        if not isinstance(self.params, _FrozenMap):
            raise _bad(f"{cls}.params", "a mapping of str to str or list of str", self.params)
        for key, values in self.params.items():
            if not isinstance(key, str) or not key or _SURROGATE.search(key):
                raise _bad(f"{cls}.params key", "a non-empty str", key)
            name = f"{cls}.params[{key!r}]"
            if not isinstance(values, tuple) or not values:
                raise _bad(name, "a str or a non-empty list of str", values)
            for value in values:
                if not isinstance(value, str) or _SURROGATE.search(value):
                    raise _bad(name, "a str or a non-empty list of str", value)
            if key in self._typed() and getattr(self, key) is not None:
                raise ValueError(
                    f"{name} collides with the typed field {cls}.{key}, which is set; "
                    f"set only one of them"
                )

    def __repr__(self) -> str:
        """Only the fields that are set: a default instance has dozens of ``None`` fields."""
        shown = []
        for field in attrs.fields(cast("type[Any]", type(self))):
            value = getattr(self, field.name)
            if value is not None and value != {}:
                text = field.repr(value) if callable(field.repr) else repr(value)
                shown.append(f"{field.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def to_params(self) -> list[tuple[str, str]]:
        """The query as un-encoded ``(key, value)`` pairs: typed fields in declaration order,
        then ``params`` in insertion order. Unset fields are left out."""
        pairs: list[tuple[str, str]] = []
        for field in self._typed().values():
            value = getattr(self, field.name)
            if value is not None:
                texts = field.metadata[_KIND].encode(value)
                pairs.extend((field.name, text) for text in texts)
        for key, values in self.params.items():
            pairs.extend((key, value) for value in values)
        return pairs

    def to_query(self) -> str:
        """The percent-encoded query string, without a leading ``?`` (``""`` when empty)."""
        return "&".join(
            f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in self.to_params()
        )

    @classmethod
    def _parse_query(cls, query: str) -> dict[str, Any]:
        """Keyword arguments for ``cls`` from a client's query string (see ``from_query``)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        try:
            pairs = parse_qsl(query.removeprefix("?"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise ValueError("query string: percent-escapes must encode UTF-8 text") from None
        texts: dict[str, list[str]] = {}
        for key, value in pairs:
            texts.setdefault(key, []).append(value)
        kwargs: dict[str, Any] = {}
        unknown: dict[str, tuple[str, ...]] = {}
        typed = cls._typed()
        for key, values in texts.items():
            field = typed.get(key)
            if field is None:
                unknown[key] = tuple(values)
            else:
                kwargs[key] = field.metadata[_KIND].decode(f"{cls.__name__}.{key}", values)
        kwargs["params"] = unknown
        return kwargs


_TYPED: dict[type, dict[str, attrs.Attribute[Any]]] = {}


@attrs.frozen(kw_only=True, repr=False)
class LiveOptions(_QueryOptions):
    """The ``/v1/listen`` query parameters, typed and checked when constructed.

    Every field defaults to ``None``, which means "not sent": a default ``LiveOptions()``
    sends an empty query and the server applies its own defaults (model ``base``, language
    ``en``, ...). Lists accept any iterable of str and are stored as tuples (an empty one
    becomes ``None``); ``extra`` and ``params`` are stored read-only. Bad values raise
    ``ValueError`` naming the field and the allowed values.

    ``params`` passes parameters dgproto does not know yet, verbatim: a str is one value, a
    sequence repeats the key. A key naming a typed field that is also set raises
    ``ValueError``. When the typed field is unset, ``params`` may carry it unchecked (an
    escape hatch for, say, a new encoding), but the connection's audio clock only reads the
    typed ``encoding``, ``sample_rate``, ``channels`` and ``multichannel``.
    """

    model: str | None = _param(_TEXT)
    """``nova-3``, ``nova-2-phonecall``, a custom model id, ...; the server default is ``base``."""
    language: str | None = _param(_TEXT)
    """BCP-47 tag such as ``en-US``, or ``multi`` for code-switching (server default ``en``)."""
    encoding: str | None = _param(_ENCODING)
    """Raw audio encoding. Required for headerless audio; omit it for WAV, Ogg, WebM."""
    sample_rate: int | None = _param(_POSITIVE)
    """Hz; required (and only read) together with ``encoding``."""
    channels: int | None = _param(_POSITIVE)
    """Interleaved channels in raw audio (server default 1)."""
    multichannel: bool | None = _param(_BOOL)
    """Transcribe each channel separately (Results carry ``channel_index``)."""
    interim_results: bool | None = _param(_BOOL)
    """Also send non-final (``is_final: false``) Results while a segment is in progress."""
    endpointing: int | Literal[False] | None = _param(_Endpointing())
    """Silence in ms that sets ``speech_final``; ``False`` turns endpointing off (default 10)."""
    utterance_end_ms: int | None = _param(_POSITIVE)
    """Gap in ms between words that produces an ``UtteranceEnd`` message (>= 1000 advised).

    Requires ``interim_results=True``: Deepgram finds the gap by watching word timings in
    interim results, so without them no ``UtteranceEnd`` can come; it documents the pairing
    as required, and dgproto refuses the combination rather than let it fail silently.
    """
    vad_events: bool | None = _param(_BOOL)
    """Send ``SpeechStarted`` messages when voice activity begins."""
    punctuate: bool | None = _param(_BOOL)
    smart_format: bool | None = _param(_BOOL)
    """Format numbers, dates, ... (implies punctuation; waits for entities, see ``no_delay``)."""
    no_delay: bool | None = _param(_BOOL)
    """Finalize without waiting for entity completion under ``smart_format``."""
    numerals: bool | None = _param(_BOOL)
    profanity_filter: bool | None = _param(_BOOL)
    filler_words: bool | None = _param(_BOOL)
    dictation: bool | None = _param(_BOOL)
    """Turn spoken punctuation commands into marks; Deepgram needs ``punctuate`` with it."""
    diarize: bool | None = _param(_BOOL)
    """Deprecated in favour of ``diarize_model``."""
    diarize_model: str | None = _param(_Choice("latest", "v1"))
    """Also enables diarization. ``v2`` is rejected on streaming."""
    diarize_version: str | None = _param(_TEXT)
    """Legacy."""
    detect_entities: bool | None = _param(_BOOL)
    redact: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_as_redact,
        metadata=_meta(_Repeated(_REDACT)),
    )
    """What to redact; ``True``/``False`` are accepted and sent as ``true``/``false``."""
    keywords: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_Keyword()))
    )
    """``WORD`` or ``WORD:INTENSIFIER`` boosts for pre-Nova-3 models."""
    keyterm: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    """Nova-3 keyterm prompting; a multi-word phrase is one item."""
    search: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    replace: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_Replacement()))
    )
    """``FIND:REPLACEMENT`` items."""
    tag: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_Text(max_len=128)))
    )
    """Usage-reporting labels, at most 128 characters each."""
    extra: Mapping[str, str] | None = attrs.field(
        default=None, converter=_as_extra, metadata=_meta(_Extra())
    )
    """Metadata Deepgram echoes back in ``metadata.extra``."""
    callback: str | None = attrs.field(default=None, repr=_redact_url, metadata=_meta(_Callback()))
    """http(s) URL (a POST per response) or ws(s) URL; its credentials are hidden in repr."""
    callback_method: str | None = _param(_Choice("POST", "PUT", "GET", "DELETE"))
    version: str | None = _param(_TEXT)
    """Model version: ``latest``, a version string or a version UUID."""
    mip_opt_out: bool | None = _param(_BOOL)
    """Opt out of Deepgram's Model Improvement Program."""
    language_hint: tuple[str, ...] | None = attrs.field(
        default=None, converter=_as_tuple, metadata=_meta(_Repeated(_TEXT))
    )
    """BCP-47 hints for ``model=nova-3&language=multi``."""
    alternatives: int | None = _param(_POSITIVE)
    """Legacy: number of transcript alternatives."""
    tier: str | None = _param(_TEXT)
    """Deprecated; legacy models only."""
    log_data: bool | None = _param(_BOOL)
    """Deprecated alias superseded by ``mip_opt_out``."""
    vad_turnoff: int | None = _param(_NON_NEGATIVE)
    """Deprecated alias of ``endpointing``; Deepgram rejects it next to an int endpointing."""
    debug: bool | None = _param(_BOOL)
    """Ask the server for an ``Error`` text frame explaining why it closes."""
    params: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: _FrozenMap({}), converter=_as_params
    )
    """Parameters dgproto does not know yet, sent verbatim after the typed ones."""

    def __attrs_post_init__(self) -> None:
        self._check_fields()
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.utterance_end_ms is not None and self.interim_results is not True:
            raise ValueError(
                "LiveOptions.utterance_end_ms requires interim_results=True: Deepgram detects "
                f"utterance ends from interim results (got interim_results={self.interim_results})"
            )
        if self.vad_turnoff is not None and _is_int(self.endpointing):
            raise ValueError(
                "LiveOptions.vad_turnoff is a deprecated alias of endpointing and Deepgram "
                "rejects both as ints: set only endpointing"
            )
        rate = _FIXED_RATES.get(self.encoding or "")
        if rate is not None and self.sample_rate is not None and self.sample_rate != rate:
            raise ValueError(
                f"LiveOptions.sample_rate must be {rate} for encoding={self.encoding!r} "
                f"(a fixed-rate codec), got {self.sample_rate}"
            )

    @classmethod
    def from_query(cls, query: str) -> LiveOptions:
        """Parse and check a client's query string (the emulator's side of ``to_query``).

        A leading ``?`` is ignored and ``+`` means a space. Unknown keys go to ``params``. A
        list field collects every repetition of its key; for any other field the last value
        wins. Invalid values raise ``ValueError`` naming the field (an HTTP 400 for a server).
        """
        return cls(**cls._parse_query(query))


# --- Auth -------------------------------------------------------------------------------------

#: Each scheme and the constructor that makes it, for error messages.
_SCHEMES = {
    "token": "Auth.token",
    "bearer": "Auth.bearer",
    "subprotocol-token": "Auth.subprotocol",
    "subprotocol-bearer": "Auth.subprotocol",
    "none": "Auth.none",
}
#: RFC 7230 ``tchar``: a WebSocket subprotocol must be an HTTP token.
_TOKEN_CHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Visible ASCII: no CR/LF (header injection), no spaces, no controls, no non-ASCII.
_HEADER_CHARS = re.compile(r"[\x21-\x7e]+")


@attrs.frozen(kw_only=True, repr=False)
class Auth:
    """How the handshake proves who you are. Build it with a constructor, not ``Auth(...)``:

    - ``Auth.token(api_key)``: header ``Authorization: Token <key>``;
    - ``Auth.bearer(jwt)``: header ``Authorization: Bearer <jwt>`` (temporary tokens);
    - ``Auth.subprotocol(key, scheme="token"|"bearer")``: the browser form, WebSocket
      subprotocols ``[scheme, key]`` and no header;
    - ``Auth.none()``: nothing, for self-hosted servers without auth (the emulator, like
      Deepgram, wants a key unless started with ``EmulatorConfig(require_auth=False)``).

    The secret lives in the private ``_secret`` field. It never appears in ``repr``,
    ``str`` or an exception message (errors describe it without echoing it); only
    ``headers()``/``subprotocols()`` hand it out, for the handshake. ``attrs.asdict`` does
    expose it: treat an ``Auth`` like the key itself.
    """

    scheme: str
    """``"token"``, ``"bearer"``, ``"subprotocol-token"``, ``"subprotocol-bearer"``, ``"none"``."""
    _secret: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.scheme not in _SCHEMES:  # not echoed: a swapped argument could be the key
            raise ValueError(f"Auth scheme must be one of {', '.join(_SCHEMES)}")
        if self.scheme == "none":
            if self._secret is not None:
                raise ValueError("Auth.none: takes no secret")
            return
        what = f"{_SCHEMES[self.scheme]}: the secret"
        secret = self._secret
        if not isinstance(secret, str):
            raise ValueError(f"{what} must be a str, got {type(secret).__name__}")
        if not secret:
            raise ValueError(f"{what} is empty")
        allowed = _TOKEN_CHARS if self.scheme.startswith("subprotocol-") else _HEADER_CHARS
        if not allowed.fullmatch(secret):
            raise ValueError(
                f"{what} contains a character not allowed in an HTTP "
                f"{'token' if allowed is _TOKEN_CHARS else 'header'} (whitespace, CR/LF, a "
                "control or non-ASCII character, ...); it is not shown here"
            )

    @classmethod
    def token(cls, api_key: str) -> Auth:
        """A Deepgram API key sent as ``Authorization: Token <key>``."""
        return cls(scheme="token", secret=api_key)

    @classmethod
    def bearer(cls, jwt: str) -> Auth:
        """A temporary JWT (from ``/v1/auth/grant``) sent as ``Authorization: Bearer <jwt>``."""
        return cls(scheme="bearer", secret=jwt)

    @classmethod
    def subprotocol(cls, key: str, *, scheme: Literal["token", "bearer"] = "token") -> Auth:
        """The secret as WebSocket subprotocols ``[scheme, key]``, as browsers must send it."""
        if scheme not in ("token", "bearer"):
            raise ValueError("Auth.subprotocol scheme must be one of token, bearer")
        return cls(scheme=f"subprotocol-{scheme}", secret=key)

    @classmethod
    def none(cls) -> Auth:
        """No credentials: for self-hosted Deepgram, or the emulator with ``require_auth=False``."""
        return cls(scheme="none")

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Headers for the upgrade request, names in lower case."""
        if self.scheme in ("token", "bearer"):
            value = f"{self.scheme.capitalize()} {self._secret}"
            return [(b"authorization", value.encode("ascii"))]
        return []

    def subprotocols(self) -> list[str]:
        """Subprotocols to offer in ``Sec-WebSocket-Protocol``, in order."""
        if self.scheme.startswith("subprotocol-"):
            return [self.scheme.removeprefix("subprotocol-"), cast(str, self._secret)]
        return []

    def __repr__(self) -> str:
        if self.scheme == "none":
            return "Auth.none()"
        if self.scheme.startswith("subprotocol-"):
            scheme = self.scheme.removeprefix("subprotocol-")
            return f"Auth.subprotocol(<redacted>, scheme={scheme!r})"
        return f"Auth.{self.scheme}(<redacted>)"
