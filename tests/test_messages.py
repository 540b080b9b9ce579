"""JSON <-> event translation: real Deepgram payloads, the lenience policy, exact encodings."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto import _messages
from dgproto._events import (
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
from dgproto._messages import (
    decode_binary,
    decode_message,
    encode_close_stream,
    encode_configure,
    encode_finalize,
    encode_keepalive,
)

LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepgram"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "deepgram"
# Prefer the in-repo copy: a user's clone has no shared/ directory beside it.
FIXTURES = LOCAL_FIXTURES if LOCAL_FIXTURES.is_dir() else SHARED_FIXTURES

LISTEN_FILES = sorted(FIXTURES.glob("listen_v1_*.json"))
OTHER_ENDPOINT_FILES = sorted([*FIXTURES.glob("flux_v2_*.json"), *FIXTURES.glob("speak_v1_*.json")])
WIRE_9_WORDS = "listen_v1_results_final_speech_final_wire_capture.json"

FAST = settings(max_examples=60, deadline=None)


def read_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def decode_file(name: str) -> tuple[Event, Any]:
    text = read_text(name)
    return decode_message(text), json.loads(text)


def results_dict(**changes: Any) -> dict[str, Any]:
    """The real 9-word wire capture, decoded, with top-level keys replaced."""
    data: dict[str, Any] = json.loads(read_text(WIRE_9_WORDS))
    data.update(changes)
    return data


def decode_obj(obj: Any) -> Event:
    return decode_message(json.dumps(obj))


def malformed_error(obj: Any) -> str:
    event = decode_obj(obj)
    assert isinstance(event, MalformedMessage), event
    return event.error


# --------------------------------------------------------------------------- fixtures


def check_word(word: Word, w: Mapping[str, Any]) -> None:
    assert type(word) is Word
    assert word.word == w["word"]
    assert word.start == w["start"]
    assert type(word.start) is float
    assert word.end == w["end"]
    assert type(word.end) is float
    assert word.confidence == w["confidence"]
    assert type(word.confidence) is float
    assert word.punctuated_word == w.get("punctuated_word")
    assert word.speaker == w.get("speaker")
    assert word.language == w.get("language")
    assert word.raw == w


def check_results(event: Event, obj: Mapping[str, Any], *, fast: bool = True) -> None:
    assert type(event) is Results
    assert event.channel_index == tuple(obj["channel_index"])
    assert event.start == obj["start"]
    assert type(event.start) is float
    assert event.duration == obj["duration"]
    assert type(event.duration) is float
    assert event.is_final is obj.get("is_final", False)
    assert event.speech_final is obj.get("speech_final", False)
    assert event.from_finalize is obj.get("from_finalize", False)
    assert event.metadata == obj.get("metadata", {})
    assert event.entities == tuple(obj.get("entities", ()))
    assert event.raw == obj
    alternatives = obj["channel"]["alternatives"]
    assert len(event.alternatives) == len(alternatives)
    for alternative, a in zip(event.alternatives, alternatives, strict=True):
        assert type(alternative) is Alternative
        assert alternative.transcript == a["transcript"]
        assert alternative.confidence == a["confidence"]
        assert alternative.languages == tuple(a.get("languages", ()))
        assert alternative.raw == a
        assert len(alternative.words) == len(a["words"])
        for word, w in zip(alternative.words, a["words"], strict=True):
            check_word(word, w)
    assert event.transcript == alternatives[0]["transcript"]
    # The checked path agrees; real payloads (fast=True) must take the fast path.
    assert _messages._results_checked(obj) == event
    built = _messages._results_fast(obj)
    if fast:
        assert built == event
    else:
        assert built is None or built == event


def check_metadata(event: Event, obj: Mapping[str, Any]) -> None:
    assert type(event) is Metadata
    assert event.request_id == obj["request_id"]
    assert event.created == obj["created"]
    assert event.duration == obj["duration"]
    assert type(event.duration) is float
    assert event.channels == obj["channels"]
    assert event.sha256 == obj["sha256"]
    assert event.models == tuple(obj.get("models", ()))
    assert event.model_info == obj.get("model_info", {})
    assert event.raw == obj


def check_utterance_end(event: Event, obj: Mapping[str, Any]) -> None:
    assert type(event) is UtteranceEnd
    assert event.channel == tuple(obj["channel"])
    assert event.last_word_end == obj["last_word_end"]
    assert event.raw == obj


def check_speech_started(event: Event, obj: Mapping[str, Any]) -> None:
    assert type(event) is SpeechStarted
    assert event.channel == tuple(obj["channel"])
    assert event.timestamp == obj["timestamp"]
    assert event.raw == obj


CHECKERS = {
    "listen_v1_results_": check_results,
    "listen_v1_metadata_": check_metadata,
    "listen_v1_utterance_end_": check_utterance_end,
    "listen_v1_speech_started_": check_speech_started,
}


def test_fixture_set_is_complete() -> None:
    assert len(LISTEN_FILES) == 20
    for path in LISTEN_FILES:
        assert any(path.name.startswith(prefix) for prefix in CHECKERS), path.name


@pytest.mark.parametrize("path", LISTEN_FILES, ids=lambda p: p.name)
def test_every_listen_fixture_decodes_field_by_field(path: Path) -> None:
    event, obj = decode_file(path.name)
    (checker,) = [c for prefix, c in CHECKERS.items() if path.name.startswith(prefix)]
    checker(event, obj)


def test_wire_capture_words_in_detail() -> None:
    event, _ = decode_file(WIRE_9_WORDS)
    assert isinstance(event, Results)
    assert event.channel_index == (0, 1)
    assert (event.start, event.duration) == (12.08, 4.7700005)
    assert (event.is_final, event.speech_final, event.from_finalize) == (True, True, False)
    assert event.transcript == "This is the Oh, no. I meant all then."
    words = event.alternatives[0].words
    assert [w.word for w in words] == ["this", "is", "the", "oh", "no", "i", "meant", "all", "then"]
    assert words[3] == Word(
        word="oh", start=14.96, end=15.04, confidence=0.6854248, punctuated_word="Oh,"
    )
    assert words[-1].end == 16.58
    assert event.metadata["request_id"] == "01a03ac2-b34c-7433-9df5-62b0600b10bf"
    assert event.channel == 0
    assert event.end == 12.08 + 4.7700005


def test_2024_results_without_from_finalize_default_to_false() -> None:
    event, obj = decode_file(
        "listen_v1_results_interim_empty_2024_no_from_finalize_js_issue241.json"
    )
    assert "from_finalize" not in obj
    assert isinstance(event, Results)
    assert event.from_finalize is False
    assert event.transcript == ""
    assert event.alternatives[0].words == ()


def test_multilingual_languages_and_word_language() -> None:
    event, _ = decode_file("listen_v1_results_final_multilingual_languages_docs.json")
    assert isinstance(event, Results)
    assert event.alternatives[0].languages == ("es",)
    assert {w.language for w in event.alternatives[0].words} == {"es"}
    assert all(w.punctuated_word is None for w in event.alternatives[0].words)


def test_metadata_end_of_stream_models() -> None:
    event, _ = decode_file("listen_v1_metadata_end_of_stream_wire_capture.json")
    assert event == Metadata(
        request_id="01a03ac3-92a1-79f0-ad85-2cee59754422",
        created="2026-08-25T21:11:31.685Z",
        duration=44.259937,
        channels=1,
        sha256="incomplete",
        models=("7e3b5bdf-85ed-4fd2-9f7a-7721bbcad97b",),
    )
    assert isinstance(event, Metadata)
    assert event.model_info["7e3b5bdf-85ed-4fd2-9f7a-7721bbcad97b"]["arch"] == "nova-2"


def test_utterance_end_and_speech_started_channels_are_arrays() -> None:
    event, _ = decode_file("listen_v1_utterance_end_multichannel_python_pr258.json")
    assert event == UtteranceEnd(channel=(0, 2), last_word_end=1.175)
    event, _ = decode_file("listen_v1_speech_started_js_issue241.json")
    assert event == SpeechStarted(channel=(0, 1), timestamp=1.73)


# Flux (/v2/listen) and speak frames reuse a few v1 type names; everything else is unknown.
def expected_other_endpoint_class(frame: Mapping[str, Any]) -> type[Event]:
    kind = frame.get("type")
    if kind == "ConfigureSuccess":  # the same name on /v1/listen: decoded as such
        return ConfigureSuccess
    if kind == "SpeechStarted":  # /v2/speak's has no channel/timestamp: unusable as v1's
        return MalformedMessage
    return UnknownMessage


@pytest.mark.parametrize("path", OTHER_ENDPOINT_FILES, ids=lambda p: p.name)
def test_other_endpoint_fixtures_decode_without_error(path: Path) -> None:
    event, obj = decode_file(path.name)
    expected = expected_other_endpoint_class(obj)
    assert type(event) is expected
    if isinstance(event, UnknownMessage):
        assert event.type == obj.get("type")
        assert event.raw == obj
    for frame in obj.get("frames", ()):  # whole recorded sessions: every frame too
        text = frame if isinstance(frame, str) else json.dumps(frame)
        frame_obj = json.loads(text)
        assert type(decode_message(text)) is expected_other_endpoint_class(frame_obj)


def test_other_endpoint_files_are_present() -> None:
    names = {p.name for p in OTHER_ENDPOINT_FILES}
    assert "flux_v2_listen_turninfo_end_of_turn.json" in names
    assert "speak_v1_flushed_docs.json" in names


def test_flux_configure_success_is_read_as_configure_success() -> None:
    event, obj = decode_file("flux_v2_listen_configure_success.json")
    assert event == ConfigureSuccess(request_id="019f4c80-a061-72f2-9780-89f9950b1adb")
    assert isinstance(event, ConfigureSuccess)
    assert event.raw == obj


def test_recorded_flux_session_frames_all_decode() -> None:
    path = SHARED_FIXTURES / "flux_v2_listen_session_frames_dotnet_fixture.json"
    if not path.exists():
        pytest.skip("the shared fixture directory is not beside this clone")
    session = json.loads(path.read_text(encoding="utf-8"))
    assert len(session["frames"]) == 105
    kinds: set[type[Event]] = set()
    for text in session["frames"]:
        event = decode_message(text)
        assert type(event) is expected_other_endpoint_class(json.loads(text))
        kinds.add(type(event))
    assert sorted(k.__name__ for k in kinds) == ["ConfigureSuccess", "UnknownMessage"]


def test_http_error_body_is_unknown_message() -> None:
    event, obj = decode_file("http_error_401_invalid_auth_docs.json")
    assert event == UnknownMessage(type=None, raw=obj)


def test_in_repo_fixtures_match_the_shared_originals() -> None:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("the shared fixture directory is not beside this clone")
    copies = sorted(p for p in LOCAL_FIXTURES.iterdir() if p.name != "README.md")
    # The recorded Flux session is copied too: the Flux core tests read it.
    assert [p.name for p in copies] == sorted(p.name for p in SHARED_FIXTURES.iterdir())
    for local in copies:
        assert local.read_bytes() == (SHARED_FIXTURES / local.name).read_bytes(), local.name


# --------------------------------------------------------------------------- Results policy


def test_fast_path_fills_every_field_of_the_classes() -> None:
    # If a field is added to these classes, the fast path must learn to set it.
    assert set(_messages._WORD_SLOTS) == {a.name for a in attrs.fields(Word)}
    assert set(_messages._ALTERNATIVE_SLOTS) == {a.name for a in attrs.fields(Alternative)}
    assert set(_messages._RESULTS_SLOTS) == {a.name for a in attrs.fields(Results)}


def test_fast_built_events_behave_like_constructed_ones() -> None:
    event = decode_message(read_text(WIRE_9_WORDS))
    assert isinstance(event, Results)
    rebuilt = attrs.evolve(event)
    assert rebuilt == event
    assert hash(rebuilt) == hash(event)
    assert repr(rebuilt) == repr(event)
    assert "alternatives=(Alternative(transcript='This is the Oh, no." in repr(event)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.alternatives[0].words[0].word = "x"  # type: ignore[misc]


def test_fast_built_events_pickle_and_copy() -> None:
    event = decode_message(read_text(WIRE_9_WORDS))
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event
    assert attrs.asdict(event)["alternatives"][0]["words"][0]["word"] == "this"


def test_optional_flags_default_to_false_when_absent_or_null() -> None:
    data = results_dict()
    for key in ("is_final", "speech_final", "from_finalize"):
        del data[key]
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert (event.is_final, event.speech_final, event.from_finalize) == (False, False, False)
    event = decode_obj(results_dict(is_final=None, speech_final=None, from_finalize=True))
    assert isinstance(event, Results)
    assert (event.is_final, event.speech_final, event.from_finalize) == (False, False, True)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"start": "abc"}, "Results.start: expected a number, got str"),
        ({"start": True}, "Results.start: expected a number, got bool"),
        ({"start": None}, "Results.start: is null"),
        ({"duration": [1]}, "Results.duration: expected a number, got list"),
        ({"channel_index": 5}, "Results.channel_index: expected an array, got int"),
        ({"channel_index": [0.5, 1]}, "Results.channel_index[0]: expected an integer, got float"),
        ({"channel_index": [0, True]}, "Results.channel_index[1]: expected an integer, got bool"),
        ({"is_final": "true"}, "Results.is_final: expected true or false, got str"),
        ({"speech_final": 1}, "Results.speech_final: expected true or false, got int"),
        ({"from_finalize": {}}, "Results.from_finalize: expected true or false, got dict"),
        ({"channel": [0, 1]}, "Results.channel: expected an object, got list"),
        ({"channel": {}}, "Results.channel.alternatives: missing"),
        ({"channel": {"alternatives": {}}}, "Results.channel.alternatives: expected an array"),
        ({"channel": {"alternatives": [[]]}}, "alternatives[0]: expected an object, got list"),
        (
            {"channel": {"alternatives": [{"confidence": 0.5}]}},
            "Results.channel.alternatives[0].transcript: missing",
        ),
        (
            {"channel": {"alternatives": [{"transcript": 7, "confidence": 0.5}]}},
            "alternatives[0].transcript: expected a string, got int",
        ),
        (
            {"channel": {"alternatives": [{"transcript": "", "confidence": "high"}]}},
            "alternatives[0].confidence: expected a number, got str",
        ),
        (
            {"channel": {"alternatives": [{"transcript": "", "confidence": 0, "words": {}}]}},
            "alternatives[0].words: expected an array, got dict",
        ),
    ],
)
def test_unusable_required_fields_make_a_malformed_message(
    changes: dict[str, Any], error: str
) -> None:
    data = results_dict(**changes)
    text = json.dumps(data)
    event = decode_message(text)
    assert isinstance(event, MalformedMessage)
    assert error in event.error
    assert event.data == text


def test_missing_top_level_fields_are_named() -> None:
    for key in ("channel_index", "start", "duration", "channel"):
        data = results_dict()
        del data[key]
        assert malformed_error(data) == f"Results.{key}: missing"


def test_bad_words_are_named_by_path() -> None:
    data = results_dict()
    words = data["channel"]["alternatives"][0]["words"]
    words[3]["start"] = "14.96"
    assert (
        malformed_error(data)
        == "Results.channel.alternatives[0].words[3].start: expected a number, got str"
    )
    words[3]["start"] = 14.96
    del words[5]["confidence"]
    assert malformed_error(data) == "Results.channel.alternatives[0].words[5].confidence: missing"
    words[5] = "i"
    assert (
        malformed_error(data)
        == "Results.channel.alternatives[0].words[5]: expected an object, got str"
    )
    words[5] = {"word": None, "start": 1.0, "end": 1.0, "confidence": 1.0}
    assert malformed_error(data) == "Results.channel.alternatives[0].words[5].word: is null"


def test_huge_integer_times_are_malformed_not_a_crash() -> None:
    text = json.dumps(results_dict()).replace('"start": 12.08', '"start": 1' + "0" * 400)
    event = decode_message(text)
    assert isinstance(event, MalformedMessage)
    assert event.error == "Results.start: number too large for a float"


def test_safe_coercions() -> None:
    data = results_dict(channel_index=[1.0, 2], start=3, duration=2)
    alternative = data["channel"]["alternatives"][0]
    alternative["confidence"] = 1
    alternative["words"][0].update(start=14, end=15, confidence=1, speaker=2.0)
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert event.channel_index == (1, 2)
    assert type(event.channel_index[0]) is int
    assert (event.start, event.duration) == (3.0, 2.0)
    assert type(event.start) is float
    assert type(event.duration) is float
    assert type(event.alternatives[0].confidence) is float
    word = event.alternatives[0].words[0]
    assert (word.start, word.end, word.confidence, word.speaker) == (14.0, 15.0, 1.0, 2)
    assert type(word.start) is float
    assert type(word.speaker) is int


def test_wrong_typed_optional_fields_fall_back_to_defaults() -> None:
    data = results_dict(metadata="oops", entities="oops")
    alternative = data["channel"]["alternatives"][0]
    alternative["languages"] = ["en", 3]
    w0, w1, w2 = alternative["words"][:3]
    w0.update(punctuated_word=3, speaker="A", language=["en"])
    w1.update(speaker=True, language=None, speaker_confidence=0.5)
    w2.update(speaker=0.5)
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert event.metadata == {}
    assert event.entities == ()
    assert event.alternatives[0].languages == ()
    words = event.alternatives[0].words
    assert (words[0].punctuated_word, words[0].speaker, words[0].language) == (None, None, None)
    assert (words[1].speaker, words[1].punctuated_word) == (None, "is")
    assert words[2].speaker is None
    assert words[0].raw["speaker"] == "A"  # nothing is lost: raw keeps it
    assert event.transcript == "This is the Oh, no. I meant all then."


def test_absent_or_null_optional_fields() -> None:
    data = results_dict(metadata=None, entities=None)
    data["channel"]["alternatives"].append({"transcript": "x", "confidence": 0.5})
    data["channel"]["alternatives"].append(
        {"transcript": "y", "confidence": 0.5, "words": None, "languages": None}
    )
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert event.metadata == {}
    assert [a.words for a in event.alternatives[1:]] == [(), ()]
    assert [a.languages for a in event.alternatives[1:]] == [(), ()]
    del data["metadata"]
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert event.metadata == {}


def test_empty_alternatives_and_other_channel_index_shapes() -> None:
    event = decode_obj(results_dict(channel={"alternatives": []}, channel_index=[]))
    assert isinstance(event, Results)
    assert (event.alternatives, event.transcript, event.channel_index, event.channel) == (
        (),
        "",
        (),
        0,
    )
    event = decode_obj(results_dict(channel_index=[1, 2, 3]))
    assert isinstance(event, Results)
    assert event.channel_index == (1, 2, 3)


def test_entities_diarization_and_languages_take_the_fast_path() -> None:
    entity = {
        "label": "CARDINAL_NUM",
        "value": "one",
        "raw_value": "one",
        "confidence": 0.9,
        "start_word": 0,
        "end_word": 1,
    }
    data = results_dict(entities=[entity])
    alternative = data["channel"]["alternatives"][0]
    alternative["languages"] = ["en", "es"]
    for index, w in enumerate(alternative["words"]):
        w.update(speaker=index % 2, language="en")
    del alternative["words"][0]["punctuated_word"]
    fast = _messages._results_fast(data)
    assert fast is not None
    assert fast == _messages._results_checked(data)
    event = decode_obj(data)
    assert event == fast
    assert isinstance(event, Results)
    assert event.entities == (entity,)
    assert event.alternatives[0].languages == ("en", "es")
    assert [w.speaker for w in event.alternatives[0].words][:3] == [0, 1, 0]
    assert event.alternatives[0].words[0].punctuated_word is None


def test_entities_with_a_non_object_are_dropped() -> None:
    event = decode_obj(results_dict(entities=[{"label": "X"}, 3]))
    assert isinstance(event, Results)
    assert event.entities == ()


def odd_but_usable_results() -> Iterator[dict[str, Any]]:
    """Payloads the fast path declines (each for a different reason) but that decode."""
    yield results_dict(entities="x")
    yield results_dict(entities=[1])
    yield results_dict(channel_index=[0, 1, 2])
    data = results_dict()
    data["channel"]["alternatives"][0]["confidence"] = 1
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["words"] = None
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["languages"] = "en"
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["languages"] = ["en", None]
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["words"][2]["end"] = 15
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["words"][2]["punctuated_word"] = 1
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["words"][2]["speaker"] = "1"
    yield data
    data = results_dict()
    data["channel"]["alternatives"][0]["words"][2]["language"] = 1
    yield data
    data = results_dict()
    del data["channel"]["alternatives"][0]["words"]  # KeyError inside the fast path
    yield data


def fast_path_declines(data: dict[str, Any]) -> bool:
    try:
        return _messages._results_fast(data) is None
    except Exception:
        return True


@pytest.mark.parametrize("data", list(odd_but_usable_results()))
def test_fast_path_declines_odd_payloads_and_the_checked_path_decodes_them(
    data: dict[str, Any],
) -> None:
    assert fast_path_declines(data)
    event = decode_obj(data)
    assert isinstance(event, Results)
    assert event == _messages._results_checked(json.loads(json.dumps(data)))


def test_fast_path_exceptions_fall_back() -> None:
    with pytest.raises(KeyError):
        _messages._results_fast({"channel_index": [0, 1]})
    data = results_dict(channel=["alternatives"])
    assert malformed_error(data) == "Results.channel: expected an object, got list"


# --------------------------------------------------------------------------- other types


def test_metadata_is_lenient_about_every_field() -> None:
    event = decode_obj(
        {
            "type": "Metadata",
            "request_id": 5,
            "created": None,
            "duration": "long",
            "channels": 1.5,
            "sha256": ["x"],
            "models": "m",
            "model_info": [],
        }
    )
    assert event == Metadata(request_id=None)
    assert isinstance(event, Metadata)
    assert (event.models, event.model_info) == ((), {})
    event = decode_obj({"type": "Metadata", "duration": 3, "channels": 2.0, "models": ["a", 1]})
    assert isinstance(event, Metadata)
    assert (event.duration, event.channels, event.models) == (3.0, 2, ())
    assert type(event.duration) is float
    assert type(event.channels) is int
    event = decode_obj({"type": "Metadata", "duration": True, "channels": False})
    assert event == Metadata(request_id=None)
    big = '{"type":"Metadata","duration":1' + "0" * 400 + "}"
    assert decode_message(big) == Metadata(request_id=None)


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"type": "UtteranceEnd", "last_word_end": 1.0}, "UtteranceEnd.channel: missing"),
        (
            {"type": "UtteranceEnd", "channel": {"index": 0}, "last_word_end": 1.0},
            "UtteranceEnd.channel: expected an array, got dict",
        ),
        (
            {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": "1"},
            "UtteranceEnd.last_word_end: expected a number, got str",
        ),
        ({"type": "SpeechStarted", "channel": [0, 1]}, "SpeechStarted.timestamp: missing"),
        (
            {"type": "SpeechStarted", "channel": ["0"], "timestamp": 1.0},
            "SpeechStarted.channel[0]: expected an integer, got str",
        ),
    ],
)
def test_vad_messages_need_channel_and_time(obj: dict[str, Any], error: str) -> None:
    assert malformed_error(obj) == error


def test_configure_and_error_messages() -> None:
    assert decode_obj({"type": "ConfigureSuccess"}) == ConfigureSuccess()
    assert decode_obj(
        {"type": "ConfigureFailure", "request_id": "r", "code": "BAD", "description": "no"}
    ) == ConfigureFailure(request_id="r", code="BAD", description="no")
    assert decode_obj({"type": "ConfigureFailure", "code": 400}) == ConfigureFailure()
    closing = {
        "type": "Error",
        "variant": "Closing",
        "code": "NET-0001",
        "description": "Deepgram did not receive audio data",
    }
    event = decode_obj(closing)
    assert event == ServerError(
        variant="Closing", code="NET-0001", description="Deepgram did not receive audio data"
    )
    assert isinstance(event, ServerError)
    assert event.raw == closing
    schema = {"type": "Error", "variant": "SchemaError", "description": "d", "message": "m"}
    assert decode_obj(schema) == ServerError(variant="SchemaError", description="d", message="m")
    assert decode_obj({"type": "Error", "variant": 1, "message": None}) == ServerError()


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ({"type": "Warning", "description": "x"}, "Warning"),
        ({"type": "results"}, "results"),
        ({"type": "Connected", "sequence_id": 0}, "Connected"),
        ({}, None),
        ({"type": 5}, None),
        ({"type": None}, None),
        ({"type": ["Results"]}, None),
        ({"type": {"Results": 1}}, None),
    ],
)
def test_unknown_types_keep_the_whole_object(obj: dict[str, Any], kind: str | None) -> None:
    event = decode_obj(obj)
    assert event == UnknownMessage(type=kind, raw=obj)
    assert isinstance(event, UnknownMessage)
    assert event.raw == obj


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "not valid JSON: Expecting value"),
        ("{", "not valid JSON"),
        ('{"type":"Results"', "not valid JSON"),
        ('\ufeff{"type":"KeepAlive"}', "not valid JSON"),
        ('{"type":"Results"} trailing', "not valid JSON: Extra data"),
        ("[" * 100_000, "not valid JSON"),
        ("[]", "expected a JSON object, got list"),
        ("null", "expected a JSON object, got null"),
        ("3.5", "expected a JSON object, got float"),
        ('"Results"', "expected a JSON object, got str"),
    ],
)
def test_text_that_is_not_a_json_object_is_malformed(text: str, error: str) -> None:
    event = decode_message(text)
    assert isinstance(event, MalformedMessage)
    assert event.data == text
    assert event.error.startswith(error)
    assert "data=" not in repr(event)  # the payload stays out of the repr


@pytest.mark.parametrize("tail", ["", "\n", " \r\n\t ", "\n\u00a0", " x"])
def test_json_whitespace_after_a_message_is_not_parsed_twice(
    tail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what json.loads calls whitespace is skipped; anything else is its error."""
    calls: list[str] = []

    def counting_loads(text: str) -> Any:
        calls.append(text)
        return json.loads(text)

    monkeypatch.setattr(_messages, "_json_loads", counting_loads)  # the fast path's identity
    text = read_text(WIRE_9_WORDS).strip() + tail
    event = decode_message(text, counting_loads)
    if tail.strip(" \t\n\r"):
        assert calls == [text]  # json.loads itself decides (here: extra data)
        assert isinstance(event, MalformedMessage)
        assert event.error.startswith("not valid JSON: Extra data")
    else:
        assert calls == []
        check_results(event, json.loads(text))


def test_custom_loads_is_used() -> None:
    calls: list[str] = []

    def loads(text: str) -> Any:
        calls.append(text)
        return json.loads(text)

    text = read_text(WIRE_9_WORDS)
    event = decode_message(text, loads)
    assert calls == [text]
    check_results(event, json.loads(text))


def test_custom_loads_errors_and_mappings_never_escape() -> None:
    def explode(text: str) -> Any:
        raise RuntimeError("parser bug")

    event = decode_message("{}", explode)
    assert event == MalformedMessage(data="{}", error="not valid JSON: parser bug")

    # A read-only Mapping (not a dict) goes through the checked path and still decodes.
    obj = json.loads(read_text(WIRE_9_WORDS))
    event = decode_message("ignored", lambda _: MappingProxyType(obj))
    assert isinstance(event, Results)
    assert event == decode_message(read_text(WIRE_9_WORDS))

    class Hostile(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            raise LookupError("hostile mapping")

    event = decode_message("x", lambda _: Hostile(type="Results"))
    assert event == MalformedMessage(data="x", error="cannot decode: LookupError: hostile mapping")

    class Weird:
        def __eq__(self, other: object) -> bool:
            raise AssertionError("never compared")

        def __hash__(self) -> int:
            raise AssertionError("never hashed")

    event = decode_message("x", lambda _: {"type": Weird()})
    assert isinstance(event, UnknownMessage)
    assert event.type is None


def test_decode_binary() -> None:
    event = decode_binary(b"\x00\x01\x02")
    assert event == MalformedMessage(
        data=b"\x00\x01\x02",
        error="unexpected binary message (3 bytes); /v1/listen sends only text",
    )
    event = decode_binary(bytearray(b"ab"))  # type: ignore[arg-type]
    assert type(event.data) is bytes


# --------------------------------------------------------------------------- hypothesis

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
KNOWN_TYPES = [
    "Results",
    "Metadata",
    "UtteranceEnd",
    "SpeechStarted",
    "ConfigureSuccess",
    "ConfigureFailure",
    "Error",
]
FIELD_NAMES = [
    "channel_index",
    "start",
    "duration",
    "is_final",
    "speech_final",
    "from_finalize",
    "metadata",
    "entities",
    "channel",
    "last_word_end",
    "timestamp",
    "request_id",
    "created",
    "channels",
    "models",
    "model_info",
    "code",
    "description",
    "variant",
    "message",
]


def assert_decodes_quietly(text: str) -> Event:
    event = decode_message(text)
    assert isinstance(event, Event)
    if isinstance(event, MalformedMessage):
        assert event.data == text
        assert event.error
    return event


def plain_json_loads(text: str) -> Any:
    return json.loads(text)


@FAST
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    event = assert_decodes_quietly(text)
    # The default parser's shortcut gives exactly what json.loads itself gives.
    assert event == decode_message(text, plain_json_loads)


@pytest.mark.parametrize(
    "text",
    [
        ' {"type":"KeepAlive"}\n',
        '{"type":"Metadata","request_id":"r"}   ',
        '{"type":"Results"}',
        "[1, 2]",
        '"\\ud800"',
        "NaN",
        '{"a": 1} {"b": 2}',
        "",
    ],
)
def test_default_parser_matches_json_loads(text: str) -> None:
    assert decode_message(text) == decode_message(text, plain_json_loads)


def test_surrounding_whitespace_is_fine() -> None:
    event = decode_message(' \n{"type":"Metadata","request_id":"r"}\r\n')
    assert event == Metadata(request_id="r")


@FAST
@given(json_values)
def test_arbitrary_json_never_raises(value: Any) -> None:
    event = assert_decodes_quietly(json.dumps(value))
    assert event == decode_message(json.dumps(value), plain_json_loads)
    if not isinstance(value, dict):
        assert isinstance(event, MalformedMessage)


@FAST
@given(
    st.sampled_from(KNOWN_TYPES),
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8),
)
def test_known_types_with_arbitrary_fields_never_raise(kind: str, fields: dict[str, Any]) -> None:
    event = assert_decodes_quietly(json.dumps({**fields, "type": kind}))
    assert type(event) is not UnknownMessage


PATHS_INTO_RESULTS: list[tuple[Any, ...]] = [
    ("channel_index",),
    ("channel_index", 0),
    ("start",),
    ("duration",),
    ("is_final",),
    ("metadata",),
    ("channel",),
    ("channel", "alternatives"),
    ("channel", "alternatives", 0),
    ("channel", "alternatives", 0, "transcript"),
    ("channel", "alternatives", 0, "confidence"),
    ("channel", "alternatives", 0, "words"),
    ("channel", "alternatives", 0, "words", 4),
    ("channel", "alternatives", 0, "words", 4, "word"),
    ("channel", "alternatives", 0, "words", 4, "start"),
    ("channel", "alternatives", 0, "words", 4, "punctuated_word"),
    ("channel", "alternatives", 0, "words", 4, "speaker"),
]


@FAST
@given(st.sampled_from(PATHS_INTO_RESULTS), json_values)
def test_any_field_of_a_real_results_replaced_never_raises(
    path: tuple[Any, ...], value: Any
) -> None:
    data: Any = results_dict()
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    event = assert_decodes_quietly(json.dumps(data))
    assert isinstance(event, (Results, MalformedMessage))
    if isinstance(event, MalformedMessage):
        assert event.error.startswith("Results.")
    else:
        assert event == _messages._results_checked(json.loads(json.dumps(data)))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
words_strategy = st.lists(
    st.fixed_dictionaries(
        {"word": st.text(max_size=10), "start": finite, "end": finite, "confidence": finite},
        optional={
            "punctuated_word": st.text(max_size=10),
            "speaker": st.integers(0, 20),
            "language": st.sampled_from(["en", "es", "fr"]),
        },
    ),
    max_size=12,
)
alternative_strategy = st.fixed_dictionaries(
    {"transcript": st.text(max_size=40), "confidence": finite, "words": words_strategy},
    optional={"languages": st.lists(st.sampled_from(["en", "es", "de"]), max_size=3)},
)
results_strategy = st.fixed_dictionaries(
    {
        "type": st.just("Results"),
        "channel_index": st.tuples(st.integers(0, 7), st.integers(1, 8)).map(list),
        "start": finite | st.integers(0, 10**6),
        "duration": finite,
        "channel": st.fixed_dictionaries(
            {"alternatives": st.lists(alternative_strategy, min_size=1, max_size=2)}
        ),
    },
    optional={
        "is_final": st.booleans(),
        "speech_final": st.booleans(),
        "from_finalize": st.booleans(),
        "metadata": st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
        "entities": st.lists(st.dictionaries(st.text(max_size=5), json_scalars), max_size=2),
        "tag": st.text(max_size=5),
    },
)


@FAST
@given(results_strategy)
def test_well_formed_results_round_trip(data: dict[str, Any]) -> None:
    text = json.dumps(data)
    event = decode_message(text)
    check_results(event, json.loads(text), fast=False)


# --------------------------------------------------------------------------- encoding


def test_encode_constant_messages() -> None:
    assert encode_keepalive() == '{"type":"KeepAlive"}'
    assert encode_close_stream() == '{"type":"CloseStream"}'
    assert encode_finalize() == '{"type":"Finalize"}'
    assert encode_finalize(None) == '{"type":"Finalize"}'
    assert encode_finalize(0) == '{"type":"Finalize","channel":0}'
    assert encode_finalize(12) == '{"type":"Finalize","channel":12}'


@pytest.mark.parametrize("channel", [-1, True, 1.0, "0"])
def test_encode_finalize_rejects_bad_channels(channel: Any) -> None:
    with pytest.raises(ValueError, match=r"channel must be None or an int >= 0"):
        encode_finalize(channel)


def test_encode_configure_exact_text() -> None:
    assert (
        encode_configure(["Deepgram", "nova 3"], None)
        == '{"type":"Configure","keyterms":["Deepgram","nova 3"]}'
    )
    assert (
        encode_configure(None, {"numerals": True})
        == '{"type":"Configure","features":{"numerals":true}}'
    )
    assert (
        encode_configure(("a",), {"numerals": False, "smart_format": True})
        == '{"type":"Configure","keyterms":["a"],"features":{"numerals":false,"smart_format":true}}'
    )
    assert encode_configure(keyterms=[]) == '{"type":"Configure","keyterms":[]}'
    assert encode_configure(features={}) == '{"type":"Configure","features":{}}'
    assert encode_configure(["café"]) == '{"type":"Configure","keyterms":["caf\\u00e9"]}'
    assert (
        encode_configure(None, MappingProxyType({"n": {"x": [1, 2.5, None]}}))
        == '{"type":"Configure","features":{"n":{"x":[1,2.5,null]}}}'
    )


@pytest.mark.parametrize(
    ("keyterms", "features", "error"),
    [
        (None, None, "needs keyterms or features"),
        ("Deepgram", None, "keyterms must be a sequence of str"),
        (b"Deepgram", None, "keyterms must be a sequence of str"),
        ({"a", "b"}, None, "keyterms must be a sequence of str"),
        (["a", 1], None, r"keyterms\[1\] must be a str, got int"),
        (None, [("numerals", True)], "features must be a mapping"),
        (None, {1: True}, "features keys must be str"),
        (None, {"x": float("nan")}, "features must hold only finite JSON values"),
        (None, {"x": object()}, "features must hold only finite JSON values"),
    ],
)
def test_encode_configure_rejects_bad_input(keyterms: Any, features: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        encode_configure(keyterms, features)


finite_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@FAST
@given(
    st.none() | st.lists(st.text(max_size=12), max_size=5),
    st.none() | st.dictionaries(st.text(max_size=8), finite_json_values, max_size=4),
)
def test_encode_configure_round_trips(
    keyterms: list[str] | None, features: dict[str, Any] | None
) -> None:
    if keyterms is None and features is None:
        return
    expected: dict[str, Any] = {"type": "Configure"}
    if keyterms is not None:
        expected["keyterms"] = keyterms
    if features is not None:
        expected["features"] = features
    text = encode_configure(keyterms, features)
    assert text.isascii()
    assert text == json.dumps(expected, separators=(",", ":"))
    assert json.loads(text) == expected


def test_encode_configure_keeps_floats_exact() -> None:
    assert encode_configure(None, {"x": 0.1}) == '{"type":"Configure","features":{"x":0.1}}'
