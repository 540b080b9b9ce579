"""JSON text <-> events: decode what Deepgram sends, encode the control messages we send.

Decoding never raises. Real servers drift (new message types, fields that change type),
and one odd message must not end a transcription session, so every input string becomes
an event:

* text that is not JSON, or JSON that is not an object -> ``MalformedMessage``;
* an object whose ``type`` is not a ``/v1/listen`` type, or has no string ``type``
  -> ``UnknownMessage`` (the whole object kept in ``raw``);
* a known type -> its event, by this policy:

  - **Required fields** (Results: ``channel_index``, ``start``, ``duration``,
    ``channel.alternatives`` and each alternative's ``transcript`` and ``confidence``, each
    word's ``word``, ``start``, ``end`` and ``confidence``; UtteranceEnd: ``channel``,
    ``last_word_end``; SpeechStarted: ``channel``, ``timestamp``) must be present, not
    null and usable, or the message becomes ``MalformedMessage`` whose ``error`` names the
    field (``Results.channel.alternatives[0].words[3].start: expected a number, got str``).
  - **Structure** (``alternatives[].words``): absent or null -> ``()``; present but not an
    array -> MalformedMessage (the words cannot be read, so say so).
  - **Flags** (``is_final``, ``speech_final``, ``from_finalize``): absent or null -> False
    (2024 servers send no ``from_finalize``); anything but true/false -> MalformedMessage,
    because guessing a flag would mislead finalize and utterance logic.
  - **Descriptive optional fields** (``punctuated_word``, ``speaker``, ``language``,
    ``languages``, ``metadata``, ``entities``, every Metadata, ConfigureSuccess,
    ConfigureFailure and Error field): absent, null or of the wrong type -> the field's
    default. The value is still in ``raw``. One odd optional field never costs you the
    transcript (in deepgram-python-sdk#590 a float ``speaker_confidence`` made every
    response unusable). An array with one wrong item counts as wrong as a whole.
  - Safe coercions only: an int where a float is expected becomes a float; an integral
    float where an int is expected becomes an int; JSON arrays become tuples. Booleans are
    never numbers.

Results are the hot path (several per second per channel), so they are built by a fast
path that checks exact JSON types and writes the slots of the frozen classes directly;
anything unusual falls back to the checked path, which builds the same event through the
normal constructors or says precisely what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._events import (
    Alternative,
    ConfigureFailure,
    ConfigureSuccess,
    Event,
    MalformedMessage,
    Metadata,
    Results,
    ServerError,
    SpeechStarted,
    UnknownMessage,
    UtteranceEnd,
    Word,
)

__all__ = [
    "Registry",
    "decode_binary",
    "decode_configure_failure",
    "decode_error",
    "decode_message",
    "decode_with",
    "encode_close_stream",
    "encode_configure",
    "encode_finalize",
    "encode_keepalive",
]

_EMPTY: Mapping[str, Any] = {}

# --------------------------------------------------------------------------- encoding

_KEEPALIVE = '{"type":"KeepAlive"}'
_FINALIZE = '{"type":"Finalize"}'
_CLOSE_STREAM = '{"type":"CloseStream"}'


def encode_keepalive() -> str:
    """``{"type":"KeepAlive"}``: resets Deepgram's ~10 s inactivity timer. Send as text."""
    return _KEEPALIVE


def encode_finalize(channel: int | None = None) -> str:
    """``{"type":"Finalize"}``, or ``{"type":"Finalize","channel":0}`` for one channel."""
    if channel is None:
        return _FINALIZE
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
        raise ValueError(f"channel must be None or an int >= 0, got {channel!r}")
    return f'{{"type":"Finalize","channel":{int(channel)}}}'


def encode_close_stream() -> str:
    """``{"type":"CloseStream"}``: flush, send Metadata, then close with 1000."""
    return _CLOSE_STREAM


def encode_configure(
    keyterms: Sequence[str] | None = None, features: Mapping[str, Any] | None = None
) -> str:
    """``{"type":"Configure","keyterms":[...],"features":{...}}``, absent keys omitted.

    ``keyterms`` replaces the stream's keyterm list; ``features`` toggles features such as
    ``{"numerals": true}``. The JSON is compact and ASCII-only, keys in the order given.
    """
    message: dict[str, Any] = {"type": "Configure"}
    if keyterms is None and features is None:
        raise ValueError("Configure needs keyterms or features (or both); got neither")
    if keyterms is not None:
        if isinstance(keyterms, (str, bytes)) or not isinstance(keyterms, Sequence):
            raise ValueError(
                f"keyterms must be a sequence of str (e.g. a list), got {type(keyterms).__name__}"
            )
        for index, term in enumerate(keyterms):
            if not isinstance(term, str):
                raise ValueError(f"keyterms[{index}] must be a str, got {type(term).__name__}")
        message["keyterms"] = list(keyterms)
    if features is not None:
        if not isinstance(features, Mapping):
            raise ValueError(
                f"features must be a mapping of str to JSON values, got {type(features).__name__}"
            )
        for key in features:
            if not isinstance(key, str):
                raise ValueError(f"features keys must be str, got {key!r}")
        message["features"] = dict(features)
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features must hold only finite JSON values: {exc}") from None


# --------------------------------------------------------------------------- decoding


_json_loads = json.loads
#: What json.loads skips after a value (its ``WHITESPACE`` pattern).
_JSON_SPACE = " \t\n\r"
# The scanner json.loads runs, minus its wrapping (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_binary(data: bytes) -> MalformedMessage:
    """A binary message: Deepgram sends only text on ``/v1/listen``, so it is malformed."""
    return MalformedMessage(
        data=bytes(data),
        error=f"unexpected binary message ({len(data)} bytes); /v1/listen sends only text",
    )


def decode_message(text: str, loads: Callable[[str], Any] = json.loads) -> Event:
    """Turn one complete text message into an event. Never raises (see the module doc).

    ``loads`` parses JSON (``json.loads`` by default; ``orjson.loads`` is faster).
    """
    try:
        if loads is _json_loads:
            # json.loads without its Python wrapping: when the C scanner consumes the text
            # from index 0 up to nothing but JSON whitespace, json.loads would return
            # exactly this. Anything else (leading whitespace, a BOM, an error, extra
            # data, bytes) goes to json.loads itself, so results and error messages are
            # always json.loads's own; a trailing newline is not parsed twice.
            try:
                data, end = _scan_once(text, 0)
            except Exception:
                end = -1
            if end != len(text) and (end < 0 or text[end:].strip(_JSON_SPACE)):
                data = loads(text)
        else:
            data = loads(text)
    except Exception as exc:  # any parser error, RecursionError on deep nesting, ...
        return MalformedMessage(data=text, error=f"not valid JSON: {exc}")
    if type(data) is dict:
        kind = data.get("type")
        if type(kind) is str and kind == "Results":
            try:
                results = _results_fast(data)
            except Exception:  # an unexpected shape: the checked path says what is wrong
                results = None
            if results is not None:
                return results
    return _decode_checked(text, data, _DECODERS)


Registry = Mapping[str, Callable[[Mapping[str, Any]], Event]]


def decode_with(text: str, loads: Callable[[str], Any], registry: Registry) -> Event:
    """Decode one text message with another endpoint's registry (``type`` -> decoder),
    under the same never-raise policy as ``decode_message``."""
    try:
        data = loads(text)
    except Exception as exc:  # any parser error, RecursionError on deep nesting, ...
        return MalformedMessage(data=text, error=f"not valid JSON: {exc}")
    return _decode_checked(text, data, registry)


def _decode_checked(text: str, data: Any, registry: Registry) -> Event:
    """Decode with full checks: every field is validated and every failure is named."""
    if not isinstance(data, Mapping):
        return MalformedMessage(data=text, error=f"expected a JSON object, got {_describe(data)}")
    try:
        kind = data.get("type")
        decoder = registry.get(kind) if isinstance(kind, str) else None
        if decoder is None:
            return UnknownMessage(type=kind if isinstance(kind, str) else None, raw=data)
        return decoder(data)
    except _Invalid as exc:
        return MalformedMessage(data=text, error=str(exc))
    except Exception as exc:  # a custom ``loads`` returned a Mapping that misbehaves
        return MalformedMessage(data=text, error=f"cannot decode: {type(exc).__name__}: {exc}")


class _Invalid(Exception):
    """A required field is missing or unusable; the message becomes MalformedMessage."""


def _describe(value: object) -> str:
    """Name a decoded value's type for an error message (never its content)."""
    return "null" if value is None else type(value).__name__


def _present(obj: Mapping[str, Any], key: str, path: str) -> Any:
    """``obj[key]``, which must be present and not null."""
    value = obj.get(key)
    if value is None:
        raise _Invalid(f"{path}: missing" if key not in obj else f"{path}: is null")
    return value


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"{path}: expected an object, got {_describe(value)}")
    return value


def _array(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"{path}: expected an array, got {_describe(value)}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{path}: expected a string, got {_describe(value)}")
    return str(value)


def _opt_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def _number(value: Any, path: str) -> float:
    number = _opt_number(value)
    if number is None:
        if isinstance(value, int) and not isinstance(value, bool):
            raise _Invalid(f"{path}: number too large for a float")
        raise _Invalid(f"{path}: expected a number, got {_describe(value)}")
    return number


def _opt_int(value: Any) -> int | None:
    """A JSON integer (or an integral float) as an int; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _int_tuple(value: Any, path: str) -> tuple[int, ...]:
    items = _array(value, path)
    result = []
    for index, item in enumerate(items):
        number = _opt_int(item)
        if number is None:
            raise _Invalid(f"{path}[{index}]: expected an integer, got {_describe(item)}")
        result.append(number)
    return tuple(result)


def _flag(obj: Mapping[str, Any], key: str, path: str) -> bool:
    """An optional boolean: absent or null is False; any other non-boolean is invalid."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Invalid(f"{path}: expected true or false, got {_describe(value)}")
    return value


def _opt_str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


def _opt_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _str_tuple(value: Any) -> tuple[str, ...]:
    """An optional array of strings; anything else (or any non-string item) gives ()."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(str(item) for item in value)
    return ()


def _mapping_tuple(value: Any) -> tuple[Mapping[str, Any], ...]:
    """An optional array of objects; anything else (or any non-object item) gives ()."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, Mapping) for item in value):
        return tuple(value)
    return ()


# --------------------------------------------------------------------------- Results


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot setters of a frozen attrs class: they bypass its raising ``__setattr__``."""
    return tuple(cls.__dict__[name].__set__ for name in names)


# The fast path fills every slot of these classes; a test checks these names against
# attrs.fields() so a field added to the class cannot be silently left unset.
_WORD_SLOTS = (
    "word",
    "start",
    "end",
    "confidence",
    "punctuated_word",
    "speaker",
    "language",
    "raw",
)
_ALTERNATIVE_SLOTS = ("transcript", "confidence", "words", "languages", "raw")
_RESULTS_SLOTS = (
    "channel_index",
    "start",
    "duration",
    "is_final",
    "speech_final",
    "from_finalize",
    "alternatives",
    "metadata",
    "entities",
    "raw",
)

_new = object.__new__
#: ``Word`` is a tuple of its fields in ``_WORD_SLOTS`` order: one C call builds one.
_new_tuple = tuple.__new__
(
    _set_a_transcript,
    _set_a_confidence,
    _set_a_words,
    _set_a_languages,
    _set_a_raw,
) = _setters(Alternative, _ALTERNATIVE_SLOTS)
(
    _set_r_channel_index,
    _set_r_start,
    _set_r_duration,
    _set_r_is_final,
    _set_r_speech_final,
    _set_r_from_finalize,
    _set_r_alternatives,
    _set_r_metadata,
    _set_r_entities,
    _set_r_raw,
) = _setters(Results, _RESULTS_SLOTS)


def _results_fast(d: Mapping[str, Any]) -> Results | None:
    """Build a Results when every field has its exact usual JSON type, else None.

    Written for speed: exact ``type() is`` checks, no per-word function calls, slots
    written directly. Any exception or ``None`` sends the message to ``_results_checked``.
    """
    channel_index = d["channel_index"]
    start = d["start"]
    duration = d["duration"]
    is_final = d.get("is_final", False)
    speech_final = d.get("speech_final", False)
    from_finalize = d.get("from_finalize", False)
    metadata = d.get("metadata", _EMPTY)
    entities = d.get("entities")
    alternatives_in = d["channel"]["alternatives"]
    if (
        type(channel_index) is not list
        or len(channel_index) != 2
        or not (type(channel_index[0]) is type(channel_index[1]) is int)
        or not (type(start) is type(duration) is float)
        or not (type(is_final) is type(speech_final) is type(from_finalize) is bool)
        or type(metadata) is not dict
        or type(alternatives_in) is not list
    ):
        return None
    if entities is None:
        entities = ()
    else:
        if type(entities) is not list:
            return None
        entities = tuple(entities)
        for entity in entities:
            if type(entity) is not dict:
                return None
    alternatives: list[Alternative] = []
    for a in alternatives_in:
        transcript = a["transcript"]
        confidence = a["confidence"]
        words_in = a["words"]
        languages = a.get("languages")
        if (
            type(transcript) is not str
            or type(confidence) is not float
            or type(words_in) is not list
        ):
            return None
        if languages is None:
            languages = ()
        else:
            if type(languages) is not list:
                return None
            languages = tuple(languages)
            for tag in languages:
                if type(tag) is not str:
                    return None
        words: list[Word] = []
        append = words.append
        for w in words_in:
            text = w["word"]
            w_start = w["start"]
            w_end = w["end"]
            w_confidence = w["confidence"]
            punctuated = w.get("punctuated_word")
            if type(text) is not str or not (
                type(w_start) is type(w_end) is type(w_confidence) is float
            ):
                return None
            if punctuated is None:
                extra = len(w) - 4
            elif type(punctuated) is str:
                extra = len(w) - 5
            else:
                return None
            speaker = language = None
            if extra:  # diarize's speaker, multi's language, or a field we do not model
                speaker = w.get("speaker")
                language = w.get("language")
                if (speaker is not None and type(speaker) is not int) or (
                    language is not None and type(language) is not str
                ):
                    return None
            append(
                _new_tuple(
                    Word, (text, w_start, w_end, w_confidence, punctuated, speaker, language, w)
                )
            )
        alternative = _new(Alternative)
        _set_a_transcript(alternative, transcript)
        _set_a_confidence(alternative, confidence)
        _set_a_words(alternative, tuple(words))
        _set_a_languages(alternative, languages)
        _set_a_raw(alternative, a)
        alternatives.append(alternative)
    results = _new(Results)
    _set_r_channel_index(results, (channel_index[0], channel_index[1]))
    _set_r_start(results, start)
    _set_r_duration(results, duration)
    _set_r_is_final(results, is_final)
    _set_r_speech_final(results, speech_final)
    _set_r_from_finalize(results, from_finalize)
    _set_r_alternatives(results, tuple(alternatives))
    _set_r_metadata(results, metadata)
    _set_r_entities(results, entities)
    _set_r_raw(results, d)
    return results


def _results_checked(d: Mapping[str, Any]) -> Results:
    """Build a Results field by field, raising ``_Invalid`` naming any unusable field."""
    channel = _object(_present(d, "channel", "Results.channel"), "Results.channel")
    alternatives_in = _array(
        _present(channel, "alternatives", "Results.channel.alternatives"),
        "Results.channel.alternatives",
    )
    return Results(
        channel_index=_int_tuple(
            _present(d, "channel_index", "Results.channel_index"), "Results.channel_index"
        ),
        start=_number(_present(d, "start", "Results.start"), "Results.start"),
        duration=_number(_present(d, "duration", "Results.duration"), "Results.duration"),
        is_final=_flag(d, "is_final", "Results.is_final"),
        speech_final=_flag(d, "speech_final", "Results.speech_final"),
        from_finalize=_flag(d, "from_finalize", "Results.from_finalize"),
        alternatives=tuple(
            _alternative(item, f"Results.channel.alternatives[{index}]")
            for index, item in enumerate(alternatives_in)
        ),
        metadata=_opt_mapping(d.get("metadata")),
        entities=_mapping_tuple(d.get("entities")),
        raw=d,
    )


def _alternative(value: Any, path: str) -> Alternative:
    a = _object(value, path)
    words_in = a.get("words")
    words_in = () if words_in is None else _array(words_in, f"{path}.words")
    return Alternative(
        transcript=_string(_present(a, "transcript", f"{path}.transcript"), f"{path}.transcript"),
        confidence=_number(_present(a, "confidence", f"{path}.confidence"), f"{path}.confidence"),
        words=tuple(_word(item, f"{path}.words[{index}]") for index, item in enumerate(words_in)),
        languages=_str_tuple(a.get("languages")),
        raw=a,
    )


def _word(value: Any, path: str) -> Word:
    w = _object(value, path)
    return Word(
        word=_string(_present(w, "word", f"{path}.word"), f"{path}.word"),
        start=_number(_present(w, "start", f"{path}.start"), f"{path}.start"),
        end=_number(_present(w, "end", f"{path}.end"), f"{path}.end"),
        confidence=_number(_present(w, "confidence", f"{path}.confidence"), f"{path}.confidence"),
        punctuated_word=_opt_str(w.get("punctuated_word")),
        speaker=_opt_int(w.get("speaker")),
        language=_opt_str(w.get("language")),
        raw=w,
    )


# --------------------------------------------------------------------------- other types


def _decode_metadata(d: Mapping[str, Any]) -> Metadata:
    return Metadata(
        request_id=_opt_str(d.get("request_id")),
        created=_opt_str(d.get("created")),
        duration=_opt_number(d.get("duration")),
        channels=_opt_int(d.get("channels")),
        sha256=_opt_str(d.get("sha256")),
        models=_str_tuple(d.get("models")),
        model_info=_opt_mapping(d.get("model_info")),
        raw=d,
    )


def _decode_utterance_end(d: Mapping[str, Any]) -> UtteranceEnd:
    return UtteranceEnd(
        channel=_int_tuple(_present(d, "channel", "UtteranceEnd.channel"), "UtteranceEnd.channel"),
        last_word_end=_number(
            _present(d, "last_word_end", "UtteranceEnd.last_word_end"),
            "UtteranceEnd.last_word_end",
        ),
        raw=d,
    )


def _decode_speech_started(d: Mapping[str, Any]) -> SpeechStarted:
    return SpeechStarted(
        channel=_int_tuple(
            _present(d, "channel", "SpeechStarted.channel"), "SpeechStarted.channel"
        ),
        timestamp=_number(
            _present(d, "timestamp", "SpeechStarted.timestamp"), "SpeechStarted.timestamp"
        ),
        raw=d,
    )


def _decode_configure_success(d: Mapping[str, Any]) -> ConfigureSuccess:
    return ConfigureSuccess(request_id=_opt_str(d.get("request_id")), raw=d)


def decode_configure_failure(d: Mapping[str, Any]) -> ConfigureFailure:
    """``ConfigureFailure``, shared with Flux (which adds ``sequence_id``)."""
    return ConfigureFailure(
        request_id=_opt_str(d.get("request_id")),
        code=_opt_str(d.get("code")),
        description=_opt_str(d.get("description")),
        sequence_id=_opt_int(d.get("sequence_id")),
        raw=d,
    )


def decode_error(d: Mapping[str, Any]) -> ServerError:
    """``Error``, shared with Flux (whose Errors are fatal and carry ``sequence_id``)."""
    return ServerError(
        variant=_opt_str(d.get("variant")),
        code=_opt_str(d.get("code")),
        description=_opt_str(d.get("description")),
        message=_opt_str(d.get("message")),
        sequence_id=_opt_int(d.get("sequence_id")),
        raw=d,
    )


_DECODERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "Results": _results_checked,
    "Metadata": _decode_metadata,
    "UtteranceEnd": _decode_utterance_end,
    "SpeechStarted": _decode_speech_started,
    "ConfigureSuccess": _decode_configure_success,
    "ConfigureFailure": decode_configure_failure,
    "Error": decode_error,
}
