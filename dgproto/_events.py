"""Events a ``ListenConnection`` or a ``FluxConnection`` emits.

Naming follows h11 and aioquic: wire messages are nouns named after Deepgram's ``type``
(``Results``, ``Metadata``); lifecycle happenings are past tense (``Connected``,
``Closed``). Every event is a frozen, slotted attrs class with keyword-only fields.
Message events keep the whole decoded JSON in ``raw`` so a field dgproto does not model
yet is never lost.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._exceptions import RemoteProtocolError

__all__ = [
    "Alternative",
    "Closed",
    "CloseInitiator",
    "ConfigureFailure",
    "ConfigureSuccess",
    "Connected",
    "Event",
    "FinalizeComplete",
    "FinalizeReason",
    "FluxConnected",
    "HandshakeRejected",
    "MalformedMessage",
    "Metadata",
    "Reconnected",
    "Reconnecting",
    "Results",
    "ServerError",
    "ServerWarning",
    "SpeechStarted",
    "TurnEvent",
    "TurnInfo",
    "TurnWord",
    "UnknownMessage",
    "Utterance",
    "UtteranceEnd",
    "UtteranceReason",
    "Word",
]

_EMPTY: Mapping[str, Any] = {}

FinalizeReason = Literal["from_finalize", "covered", "timeout", "closed"]
CloseInitiator = Literal["client", "server", "timeout", "transport"]


@attrs.frozen(kw_only=True)
class Event:
    """Base class of every event. Match on the subclasses."""


# --------------------------------------------------------------------------- lifecycle


@attrs.frozen(kw_only=True)
class Connected(Event):
    """The server accepted the WebSocket upgrade (HTTP 101); the stream is open."""

    #: Deepgram's ``dg-request-id`` header: quote it in support requests.
    request_id: str | None
    #: The 101 response headers, lower-cased names, decoded as latin-1.
    headers: tuple[tuple[str, str], ...] = ()
    #: The subprotocol the server selected (``"token"`` or ``"bearer"`` for subprotocol auth).
    subprotocol: str | None = None


@attrs.frozen(kw_only=True)
class HandshakeRejected(Event):
    """The server answered the upgrade with an HTTP error instead of 101. ``Closed`` follows.

    Deepgram puts the reason in three places: the ``dg-error`` header, and a JSON body
    ``{"err_code", "err_msg", "request_id"}`` (503s use ``error_code``; newer bodies use
    ``category``/``message``, which land in ``err_code``/``err_msg`` too).
    """

    status_code: int
    request_id: str | None = None
    dg_error: str | None = None
    err_code: str | None = None
    err_msg: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def retryable(self) -> bool:
        """True when a later attempt can succeed: 408, 429 and 5xx."""
        return self.status_code in (408, 429) or self.status_code >= 500


@attrs.frozen(kw_only=True)
class FinalizeComplete(Event):
    """One per ``finalize()`` call, in call order.

    ``reason`` says why dgproto considers the flush done:

    * ``"from_finalize"``: a Results with ``from_finalize: true`` arrived.
    * ``"covered"``: final results now cover all audio sent before the Finalize.
    * ``"timeout"``: ``Config.finalize_timeout`` passed (Deepgram does not always reply).
    * ``"closed"``: the connection closed first.
    """

    channel: int | None
    reason: FinalizeReason


@attrs.frozen(kw_only=True)
class Closed(Event):
    """The connection is over. Always the last event, emitted exactly once.

    ``code`` is the WebSocket close code (1006 when no close frame was exchanged).
    ``error_code`` is Deepgram's code found in the close reason (``"NET-0001"``: no audio
    or KeepAlive for ~10 s; ``"NET-0000"``: server-side timeout; ``"DATA-0000"``: the
    payload is not decodable audio). ``retryable`` says whether opening a new stream can
    help. ``clean`` is true when a close frame was exchanged.
    """

    code: int
    reason: str = ""
    initiator: CloseInitiator
    error_code: str | None = None
    clean: bool = False
    retryable: bool = False
    #: Why the peer was at fault, when it was (bad frame, bad handshake, EOF mid-stream).
    error: RemoteProtocolError | None = attrs.field(default=None, eq=False)
    #: The session's Metadata message, if one arrived (it normally precedes the close).
    metadata: Metadata | None = attrs.field(default=None, eq=False, repr=False)


# --------------------------------------------------------------------------- wire messages


@attrs.frozen(kw_only=True)
class _WordFields:
    """Word's fields as an attrs class: their one definition, lent to ``Word`` below."""

    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str | None = None
    #: With ``diarize``: 0-based speaker number.
    speaker: int | None = None
    #: With ``language=multi``: the word's language.
    language: str | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


_WORD_NAMES = tuple(f.name for f in attrs.fields(_WordFields))
#: The fields that take part in equality, hashing and the repr (all but ``raw``).
_WORD_COMPARED = len(_WORD_NAMES) - 1
_SHOWN = _WORD_NAMES[:_WORD_COMPARED]


class Word(tuple[Any, ...]):
    """One recognized word. Times are seconds of audio from the start of the stream.

    A Results carries one per word, so they are built by the thousand: a ``Word`` is a
    tuple underneath (one allocation, about a third of a slotted class's cost to build),
    with the attribute API, equality, hash and repr of a frozen attrs class that has
    the fields ``word, start, end, confidence, punctuated_word, speaker, language, raw``
    (``raw`` is left out of equality and the repr); ``attrs.evolve``, ``attrs.fields``
    and ``attrs.asdict`` work on it. Read it by attribute: the tuple order is internal.
    """

    __slots__ = ()
    __attrs_attrs__ = _WordFields.__attrs_attrs__
    __match_args__ = ()

    if TYPE_CHECKING:
        word: str
        start: float
        end: float
        confidence: float
        punctuated_word: str | None
        speaker: int | None
        language: str | None
        raw: Mapping[str, Any]

    def __new__(
        cls,
        *,
        word: str,
        start: float,
        end: float,
        confidence: float,
        punctuated_word: str | None = None,
        speaker: int | None = None,
        language: str | None = None,
        raw: Mapping[str, Any] = _EMPTY,
    ) -> Word:
        """Build a word (keyword arguments only, like the other events)."""
        fields = (word, start, end, confidence, punctuated_word, speaker, language, raw)
        return tuple.__new__(cls, fields)

    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]:
        """Pickle and copy by keyword, as the class is built."""
        return (), dict(zip(_WORD_NAMES, self, strict=True))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            # a plain tuple must not compare equal through tuple.__eq__
            return False if isinstance(other, tuple) else NotImplemented
        return self[:_WORD_COMPARED] == other[:_WORD_COMPARED]

    def __ne__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return True if isinstance(other, tuple) else NotImplemented
        return self[:_WORD_COMPARED] != other[:_WORD_COMPARED]

    def __hash__(self) -> int:
        return hash((Word, *self[:_WORD_COMPARED]))

    # not ordered, as the attrs classes are not: no tuple comparison leaks through
    def __lt__(self, other: object) -> bool:
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(_SHOWN, self[:_WORD_COMPARED], strict=True))
        return f"Word({inner})"

    def __setattr__(self, name: str, value: object) -> None:
        raise attrs.exceptions.FrozenInstanceError

    def __delattr__(self, name: str) -> None:
        raise attrs.exceptions.FrozenInstanceError


#: CPython's getter for a namedtuple's fields: C, and cheaper to read through than a
#: ``property`` (about 18 ns against 31 here; apps read every word's fields).
_tuplegetter: Any = getattr(collections, "_tuplegetter", None)


def _tuple_field(index: int, doc: str) -> Any:
    """A read-only attribute reading item ``index`` of a tuple subclass."""
    if _tuplegetter is not None:
        return _tuplegetter(index, doc)
    return property(itemgetter(index), doc=doc)  # an interpreter without it


# The attributes: C-level getters over the tuple (declared for type checkers above).
for _index, _name in enumerate(_WORD_NAMES):
    setattr(Word, _name, _tuple_field(_index, f"The word's ``{_name}``."))
del _index, _name


@attrs.frozen(kw_only=True)
class Alternative:
    """One transcription hypothesis of a Results window (Deepgram sends one)."""

    transcript: str
    confidence: float
    words: tuple[Word, ...] = ()
    #: With ``language=multi``: the languages detected in this window.
    languages: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Results(Event):
    """A transcript for one window of audio on one channel.

    ``is_final`` windows never change again; concatenate them until ``speech_final``
    to build an utterance. ``channel_index`` is ``(channel, total_channels)``.
    """

    channel_index: tuple[int, ...]
    start: float
    duration: float
    is_final: bool
    speech_final: bool
    from_finalize: bool
    alternatives: tuple[Alternative, ...]
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)
    #: With ``detect_entities``: ``[{label, value, raw_value, confidence, start_word, end_word}]``.
    entities: tuple[Mapping[str, Any], ...] = attrs.field(default=(), eq=False, repr=False)
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)

    @property
    def transcript(self) -> str:
        """The first alternative's transcript ("" when there is none)."""
        return self.alternatives[0].transcript if self.alternatives else ""

    @property
    def channel(self) -> int:
        """The 0-based channel this window belongs to."""
        return self.channel_index[0] if self.channel_index else 0

    @property
    def end(self) -> float:
        """``start + duration``: where this window stops on the audio clock."""
        return self.start + self.duration


@attrs.frozen(kw_only=True)
class Metadata(Event):
    """The session summary Deepgram sends once, just before it closes the stream."""

    request_id: str | None
    created: str | None = None
    #: Seconds of audio the server processed.
    duration: float | None = None
    channels: int | None = None
    sha256: str | None = None
    models: tuple[str, ...] = ()
    model_info: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class UtteranceEnd(Event):
    """A gap of ``utterance_end_ms`` after the last word (needs ``interim_results``).

    ``channel`` is ``(index, total)`` here, a list on the wire, unlike Results' object.
    """

    channel: tuple[int, ...]
    last_word_end: float
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class SpeechStarted(Event):
    """Voice activity began at ``timestamp`` seconds (needs ``vad_events``)."""

    channel: tuple[int, ...]
    timestamp: float
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ConfigureSuccess(Event):
    """The server applied a ``Configure`` message.

    On Flux it echoes the settings now in force (deepgram-sdk 7.17
    ``ListenV2ConfigureSuccess``): ``thresholds`` (``eot_threshold``,
    ``eager_eot_threshold``, ``eot_timeout_ms``), ``keyterms``, ``language_hints``,
    ``numerals``, and, in real frames, ``profanity_filter``. On ``/v1/listen`` those
    stay unset and ``raw`` holds whatever came.
    """

    request_id: str | None = None
    thresholds: Mapping[str, float] = attrs.field(default=_EMPTY, eq=False)
    keyterms: tuple[str, ...] | None = None
    language_hints: tuple[str, ...] | None = None
    numerals: bool | None = None
    profanity_filter: bool | None = None
    sequence_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ConfigureFailure(Event):
    """The server refused a ``Configure`` message; the stream goes on unchanged."""

    request_id: str | None = None
    code: str | None = None
    description: str | None = None
    sequence_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ServerError(Event):
    """Deepgram's ``{"type": "Error"}`` text message.

    On ``/v1/listen``, ``variant="SchemaError"``: a client message was malformed and the
    stream goes on; ``variant="Closing"``: a close frame follows (sent with ``debug=true``).
    On Flux every Error is fatal (``code`` such as ``UNPARSABLE_CLIENT_MESSAGE`` or
    ``INTERNAL_SERVER_ERROR``): the server closes next, so ``Closed`` follows.
    """

    variant: str | None = None
    code: str | None = None
    description: str | None = None
    message: str | None = None
    sequence_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


# --------------------------------------------------------------------------- Flux (/v2/listen)


@attrs.frozen(kw_only=True)
class FluxConnected(Event):
    """Flux's first text message, ``{"type":"Connected","request_id","sequence_id":0}``.

    The handshake's own ``Connected`` event comes before it, at the HTTP 101.
    """

    request_id: str | None
    sequence_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class TurnWord:
    """One word of a Flux turn, already punctuated and cased (``"States,"``).

    deepgram-sdk 7.17 ``ListenV2TurnInfoWordsItem`` makes ``start`` and ``end`` optional;
    real frames carry both. Times are seconds of audio from the start of the stream.
    """

    word: str
    confidence: float
    start: float | None = None
    end: float | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


#: The ``TurnInfo.event`` values Flux documents; a newer one is kept as is.
TurnEvent = str


@attrs.frozen(kw_only=True)
class TurnInfo(Event):
    """Flux's turn report: where the current turn stands, with its cumulative transcript.

    ``event`` is ``"StartOfTurn"``, ``"Update"``, ``"EagerEndOfTurn"``, ``"TurnResumed"``,
    ``"EndOfTurn"``, or a newer string kept as is. A voice agent starts a reply on
    ``EagerEndOfTurn``, cancels it on ``TurnResumed`` and commits on ``EndOfTurn``.
    ``trigger`` (on ``EndOfTurn`` only, deepgram-sdk 7.17): ``"model"``, ``"manual"``
    (``ForceEndTurn``), ``"timeout"`` (``eot_timeout_ms``), or a newer value.
    ``sequence_id`` counts every server message; a gap is not an error.
    """

    event: TurnEvent
    turn_index: int
    audio_window_start: float
    audio_window_end: float
    transcript: str
    words: tuple[TurnWord, ...] = ()
    end_of_turn_confidence: float | None = None
    sequence_id: int | None = None
    request_id: str | None = None
    trigger: str | None = None
    #: With ``flux-general-multi``: detected languages, most frequent first.
    languages: tuple[str, ...] = ()
    #: The language hints in force for this turn.
    languages_hinted: tuple[str, ...] = ()
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ServerWarning(Event):
    """Flux's ``{"type":"Warning","code","description"}``: never fatal, the stream goes on."""

    code: str | None = None
    description: str | None = None
    request_id: str | None = None
    sequence_id: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class UnknownMessage(Event):
    """A JSON message of a type dgproto does not know. Never fatal: forward compatibility."""

    type: str | None
    raw: Mapping[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class MalformedMessage(Event):
    """A message that is not a JSON object (or a binary message). The stream goes on."""

    data: str | bytes = attrs.field(repr=False)
    error: str


# --------------------------------------------------------------------------- reconnecting


@attrs.frozen(kw_only=True)
class Reconnecting(Event):
    """A socket of a reconnecting stream ended (``closed``); another will be tried.

    Emitted by the adapters' ``connect(..., reconnect=...)`` only, before waiting
    ``delay`` seconds for attempt number ``attempt`` (1 for the first try of an outage).
    """

    attempt: int
    delay: float
    closed: Closed


@attrs.frozen(kw_only=True)
class Reconnected(Event):
    """The new socket is open and the audio not yet finalized is queued on it again.

    ``replayed_seconds`` is how much audio was replayed. ``dropped_seconds`` is how much
    could not be: audio pushed out of the replay by ``ReconnectPolicy.replay_seconds``
    during a long outage. It stays in the timeline (later timestamps are right) but was
    never transcribed; this field is the only place that loss is reported.
    """

    attempt: int
    request_id: str | None
    replayed_seconds: float
    dropped_seconds: float = 0.0


# --------------------------------------------------------------------------- utterances

UtteranceReason = Literal["speech_final", "utterance_end", "finalize", "timeout", "closed"]


@attrs.frozen(kw_only=True)
class Utterance(Event):
    """The user stopped speaking on ``channel``: what they said, once per utterance.

    Built by dgproto from the final ``Results`` (it always comes after them). ``reason``
    says what ended it: ``"speech_final"`` (Deepgram's endpointing), ``"utterance_end"``
    (an ``UtteranceEnd`` message), ``"finalize"`` (a ``finalize()`` completed),
    ``"timeout"`` (``Config.utterance_timeout`` passed with no end signal: Deepgram does
    not always send one; or its words reached ``Config.utterance_max_seconds``) or
    ``"closed"`` (the stream ended). ``transcript`` is never empty.
    """

    channel: int
    #: The finals' transcripts joined with spaces, as Deepgram punctuated them.
    transcript: str
    #: Audio clock: the first word's start and the last word's end.
    start: float
    end: float
    reason: UtteranceReason
    #: The final ``Results`` with words this utterance was built from, in order.
    results: tuple[Results, ...] = attrs.field(default=(), eq=False, repr=False)
