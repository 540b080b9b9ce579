"""LiveOptions (the /v1/listen query) and Auth (credentials): encoding, checks, parsing, secrecy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto._options import Auth, LiveOptions

ENCODINGS = (
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb",
    "opus", "ogg-opus", "speex", "g729",
)  # fmt: skip
REDACT = ("true", "false", "pci", "numbers", "aggressive_numbers", "ssn")
FIELD_NAMES = [f.name for f in attrs.fields(LiveOptions) if f.name != "params"]

# One valid value per field and the exact pairs it must produce, in declaration order.
EVERY_FIELD: list[tuple[str, Any, list[str]]] = [
    ("model", "nova-3", ["nova-3"]),
    ("language", "en-US", ["en-US"]),
    ("encoding", "linear16", ["linear16"]),
    ("sample_rate", 16000, ["16000"]),
    ("channels", 2, ["2"]),
    ("multichannel", True, ["true"]),
    ("interim_results", True, ["true"]),
    ("endpointing", 300, ["300"]),
    ("utterance_end_ms", 1000, ["1000"]),
    ("vad_events", True, ["true"]),
    ("punctuate", False, ["false"]),
    ("smart_format", True, ["true"]),
    ("no_delay", False, ["false"]),
    ("numerals", True, ["true"]),
    ("profanity_filter", False, ["false"]),
    ("filler_words", True, ["true"]),
    ("dictation", False, ["false"]),
    ("diarize", True, ["true"]),
    ("diarize_model", "latest", ["latest"]),
    ("diarize_version", "2021-07-14.0", ["2021-07-14.0"]),
    ("detect_entities", True, ["true"]),
    ("redact", ["pci", True], ["pci", "true"]),
    ("keywords", ["deepgram:2", "snuffleupagus"], ["deepgram:2", "snuffleupagus"]),
    ("keyterm", ["term one", "term two"], ["term one", "term two"]),
    ("search", ["epistemology"], ["epistemology"]),
    ("replace", ["monika:Monica"], ["monika:Monica"]),
    ("tag", ["a", "b"], ["a", "b"]),
    ("extra", {"k1": "v1", "k2": "v:2"}, ["k1:v1", "k2:v:2"]),
    ("callback", "https://example.com/cb", ["https://example.com/cb"]),
    ("callback_method", "PUT", ["PUT"]),
    ("version", "latest", ["latest"]),
    ("mip_opt_out", True, ["true"]),
    ("language_hint", ["en", "es"], ["en", "es"]),
    ("alternatives", 2, ["2"]),
    ("tier", "enhanced", ["enhanced"]),
    ("log_data", False, ["false"]),
    ("vad_turnoff", 500, ["500"]),
    ("debug", True, ["true"]),
]


def test_every_query_parameter_has_a_field_and_a_case_here() -> None:
    assert [name for name, _, _ in EVERY_FIELD] == FIELD_NAMES


# --- encoding ------------------------------------------------------------------------------------


def test_default_sends_nothing() -> None:
    options = LiveOptions()
    assert options.to_params() == []
    assert options.to_query() == ""
    assert all(getattr(options, name) is None for name in FIELD_NAMES)
    assert options.params == {}


@pytest.mark.parametrize(("name", "value", "texts"), EVERY_FIELD, ids=[c[0] for c in EVERY_FIELD])
def test_each_field_encodes(name: str, value: Any, texts: list[str]) -> None:
    extra_kwargs: dict[str, Any] = {"interim_results": True} if name == "utterance_end_ms" else {}
    options = LiveOptions(**{name: value}, **extra_kwargs)
    pairs = [pair for pair in options.to_params() if pair[0] == name]
    assert pairs == [(name, text) for text in texts]
    expected_query = "&".join(f"{k}={quote(v, safe='')}" for k, v in options.to_params())
    assert options.to_query() == expected_query


def test_every_field_at_once_in_declaration_order_then_params() -> None:
    kwargs = {name: value for name, value, _ in EVERY_FIELD if name != "vad_turnoff"}
    kwargs["endpointing"] = False  # vad_turnoff is only allowed next to endpointing=false
    kwargs["vad_turnoff"] = 500
    options = LiveOptions(**kwargs, params={"zeta": "1", "alpha": ["2", "3"]})
    keys = [key for key, _ in options.to_params()]
    deduplicated = list(dict.fromkeys(keys))
    assert deduplicated == [*FIELD_NAMES, "zeta", "alpha"]
    assert options.to_params()[-3:] == [("zeta", "1"), ("alpha", "2"), ("alpha", "3")]


def test_order_does_not_depend_on_keyword_order() -> None:
    a = LiveOptions(tag=["x"], model="nova-3", sample_rate=8000, encoding="mulaw")
    b = LiveOptions(encoding="mulaw", sample_rate=8000, model="nova-3", tag=["x"])
    assert a.to_query() == b.to_query() == "model=nova-3&encoding=mulaw&sample_rate=8000&tag=x"


def test_booleans_are_lowercase() -> None:
    query = LiveOptions(punctuate=True, smart_format=False).to_query()
    assert query == "punctuate=true&smart_format=false"
    assert "True" not in query
    assert "False" not in query


def test_endpointing_false_and_zero() -> None:
    assert LiveOptions(endpointing=False).to_query() == "endpointing=false"
    assert LiveOptions(endpointing=0).to_query() == "endpointing=0"
    assert LiveOptions(endpointing=10).to_query() == "endpointing=10"


def test_lists_repeat_the_key_in_item_order() -> None:
    options = LiveOptions(keyterm=["b", "a", "b"], redact=["pci", "ssn"])
    assert options.to_query() == "redact=pci&redact=ssn&keyterm=b&keyterm=a&keyterm=b"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("term two", "term%20two"),  # one phrase, not two terms
        ("café", "caf%C3%A9"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("a&b", "a%26b"),
        ("a=b", "a%3Db"),
        ("a#b", "a%23b"),
        ("a+b", "a%2Bb"),
        ("100%", "100%25"),
        ("a/b?c", "a%2Fb%3Fc"),
        ("a:b", "a%3Ab"),
        ("tilde~dash-dot._", "tilde~dash-dot._"),
    ],
)
def test_percent_encoding(value: str, encoded: str) -> None:
    assert LiveOptions(keyterm=[value]).to_query() == f"keyterm={encoded}"
    assert LiveOptions(keyterm=[value]).to_params() == [("keyterm", value)]


def test_colon_pairs_are_percent_encoded() -> None:
    options = LiveOptions(extra={"call": "a b"}, replace=["x:y"], keywords=["word:2"])
    assert options.to_query() == "keywords=word%3A2&replace=x%3Ay&extra=call%3Aa%20b"


def test_params_are_encoded_too() -> None:
    assert LiveOptions(params={"new param": "a&b"}).to_query() == "new%20param=a%26b"


# --- construction: shapes ------------------------------------------------------------------------


def test_lists_accept_any_iterable_and_store_tuples() -> None:
    assert LiveOptions(keyterm=["a", "b"]).keyterm == ("a", "b")
    assert LiveOptions(keyterm=("a",)).keyterm == ("a",)
    assert LiveOptions(keyterm=(x for x in "ab")).keyterm == ("a", "b")
    assert LiveOptions(tag=iter(["t"])).tag == ("t",)


def test_empty_lists_and_mappings_mean_not_sent() -> None:
    options = LiveOptions(keyterm=[], redact=(), extra={}, params={})
    assert options == LiveOptions()
    assert options.keyterm is None
    assert options.redact is None
    assert options.extra is None


def test_redact_booleans_become_wire_words() -> None:
    assert LiveOptions(redact=[True, False, "pci"]).redact == ("true", "false", "pci")
    assert LiveOptions(redact=[True]) == LiveOptions(redact=["true"])


def test_mappings_are_read_only_copies() -> None:
    extra = {"k": "v"}
    params: dict[str, str | list[str]] = {"p": ["1"]}
    options = LiveOptions(extra=extra, params=params)
    extra["k"] = "changed"
    params["q"] = "2"
    assert options.extra == {"k": "v"}
    assert options.params == {"p": ("1",)}
    with pytest.raises(TypeError):
        options.extra["k"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        options.params["p"] = ("x",)  # type: ignore[index]


def test_params_values_are_always_tuples() -> None:
    params: dict[str, Any] = {"one": "1", "many": ["a", "b"], "gen": iter(["g"])}
    options = LiveOptions(params=params)
    assert options.params == {"one": ("1",), "many": ("a", "b"), "gen": ("g",)}
    assert list(options.params) == ["one", "many", "gen"]
    assert len(options.params) == 3
    assert repr(options.params) == "{'one': ('1',), 'many': ('a', 'b'), 'gen': ('g',)}"
    assert LiveOptions(params={"x": "1"}) == LiveOptions(params={"x": ["1"]})


def test_params_empty_string_value_is_passed() -> None:
    assert LiveOptions(params={"flag": ""}).to_query() == "flag="


def test_frozen_hashable_and_evolvable() -> None:
    options = LiveOptions(model="nova-3", keyterm=["a"], extra={"k": "v"}, params={"p": "1"})
    same = LiveOptions(model="nova-3", keyterm=("a",), extra={"k": "v"}, params={"p": ["1"]})
    assert options == same
    assert hash(options) == hash(same)
    assert len({options, same, LiveOptions()}) == 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.model = "base"  # type: ignore[misc]
    evolved = attrs.evolve(options, model="base")
    assert evolved.model == "base"
    assert evolved.extra == {"k": "v"}
    with pytest.raises(ValueError, match="sample_rate"):
        attrs.evolve(options, sample_rate=0)


def test_params_mapping_equality_ignores_insertion_order_but_query_keeps_it() -> None:
    a = LiveOptions(params={"a": "1", "b": "2"})
    b = LiveOptions(params={"b": "2", "a": "1"})
    assert a == b
    assert hash(a) == hash(b)
    assert a.to_query() == "a=1&b=2"
    assert b.to_query() == "b=2&a=1"


def test_repr_shows_only_set_fields() -> None:
    assert repr(LiveOptions()) == "LiveOptions()"
    options = LiveOptions(model="nova-3", endpointing=False, keyterm=["a b"], params={"x": "1"})
    assert repr(options) == (
        "LiveOptions(model='nova-3', endpointing=False, keyterm=('a b',), params={'x': ('1',)})"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:hunter2@example.com/cb", "'https://<redacted>@example.com/cb'"),
        # query values too: a callback's ?token= is as secret as its userinfo (issue 10)
        ("wss://token-only@example.com/x?q=1", "'wss://<redacted>@example.com/x?q=<redacted>'"),
        ("https://example.com/cb?to=a@b", "'https://example.com/cb?to=<redacted>'"),
    ],
)
def test_callback_credentials_are_hidden_in_repr(url: str, shown: str) -> None:
    options = LiveOptions(callback=url)
    assert repr(options) == f"LiveOptions(callback={shown})"
    assert "hunter2" not in repr(options)
    assert options.callback == url
    assert options.to_params() == [("callback", url)]


# --- construction: every ValueError path ---------------------------------------------------------


INVALID: list[tuple[dict[str, Any], str, str]] = [
    # (kwargs, field named in the message, fragment of the allowed values)
    ({"encoding": "wav"}, "encoding", ", ".join(ENCODINGS)),
    ({"encoding": "LINEAR16"}, "encoding", "linear16"),
    ({"encoding": 16}, "encoding", "one of"),
    ({"sample_rate": 0}, "sample_rate", "positive int"),
    ({"sample_rate": -8000}, "sample_rate", "positive int"),
    ({"sample_rate": 16000.5}, "sample_rate", "positive int"),
    ({"sample_rate": 16000.0}, "sample_rate", "positive int"),
    ({"sample_rate": True}, "sample_rate", "positive int"),
    ({"sample_rate": "16000"}, "sample_rate", "positive int"),
    ({"channels": 0}, "channels", "positive int"),
    ({"channels": False}, "channels", "positive int"),
    ({"alternatives": 0}, "alternatives", "positive int"),
    ({"vad_turnoff": -1}, "vad_turnoff", "non-negative int"),
    ({"interim_results": "yes"}, "interim_results", "bool"),
    ({"interim_results": 1}, "interim_results", "bool"),
    ({"punctuate": "true"}, "punctuate", "bool"),
    ({"debug": 0}, "debug", "bool"),
    ({"endpointing": True}, "endpointing", "non-negative int (milliseconds) or False"),
    ({"endpointing": -1}, "endpointing", "or False"),
    ({"endpointing": 1.5}, "endpointing", "or False"),
    ({"endpointing": "10"}, "endpointing", "or False"),
    ({"utterance_end_ms": 0, "interim_results": True}, "utterance_end_ms", "positive int"),
    ({"utterance_end_ms": True, "interim_results": True}, "utterance_end_ms", "positive int"),
    ({"redact": ["foo"]}, "redact[0]", ", ".join(REDACT)),
    ({"redact": ["pci", "PCI"]}, "redact[1]", "aggressive_numbers"),
    ({"redact": [1]}, "redact[0]", "one of"),
    ({"redact": "pci"}, "redact", "not a single str"),
    ({"redact": True}, "redact", "a list"),
    ({"diarize_model": "v2"}, "diarize_model", "one of latest, v1"),
    ({"callback_method": "post"}, "callback_method", "one of POST, PUT, GET, DELETE"),
    ({"callback_method": "PATCH"}, "callback_method", "POST"),
    ({"model": ""}, "model", "non-empty str"),
    ({"model": 3}, "model", "non-empty str"),
    ({"language": "\ud800"}, "language", "non-empty str"),
    ({"version": b"latest"}, "version", "non-empty str"),
    ({"keyterm": "hello world"}, "keyterm", "not a single str"),
    ({"keyterm": b"hello"}, "keyterm", "not a single bytes"),
    ({"keyterm": 5}, "keyterm", "a list"),
    ({"keyterm": [""]}, "keyterm[0]", "non-empty str"),
    ({"keyterm": ["ok", 7]}, "keyterm[1]", "non-empty str"),
    ({"search": "x"}, "search", "not a single str"),
    ({"language_hint": "en"}, "language_hint", "not a single str"),
    ({"tag": ["x" * 129]}, "tag[0]", "at most 128 characters"),
    ({"tag": [""]}, "tag[0]", "at most 128 characters"),
    ({"keywords": ["word:boost"]}, "keywords[0]", "WORD:INTENSIFIER"),
    ({"keywords": ["word:"]}, "keywords[0]", "WORD:INTENSIFIER"),
    ({"keywords": [":2"]}, "keywords[0]", "WORD:INTENSIFIER"),
    ({"keywords": ["w:1e5"]}, "keywords[0]", "WORD:INTENSIFIER"),
    ({"keywords": [""]}, "keywords[0]", "WORD:INTENSIFIER"),
    ({"replace": ["nocolon"]}, "replace[0]", "FIND:REPLACEMENT"),
    ({"replace": [":replacement"]}, "replace[0]", "FIND:REPLACEMENT"),
    ({"extra": [("k", "v")]}, "extra", "mapping"),
    ({"extra": {"": "v"}}, "extra key", "non-empty str without ':'"),
    ({"extra": {"a:b": "v"}}, "extra key", "without ':'"),
    ({"extra": {1: "v"}}, "extra key", "without ':'"),
    ({"extra": {"k": 1}}, "extra['k']", "a str"),
    ({"extra": {"k": "\udc00"}}, "extra['k']", "a str"),
    ({"extra": {"k": "v" * 2047}}, "extra['k']", "at most 2048"),
    ({"params": ["a"]}, "params", "mapping"),
    ({"params": {"": "v"}}, "params key", "non-empty str"),
    ({"params": {5: "v"}}, "params key", "non-empty str"),
    ({"params": {"p": 5}}, "params['p']", "a str or a non-empty list of str"),
    ({"params": {"p": []}}, "params['p']", "non-empty list"),
    ({"params": {"p": b"v"}}, "params['p']", "a str or a non-empty list of str"),
    ({"params": {"p": ["a", 5]}}, "params['p']", "a str or a non-empty list of str"),
    ({"params": {"p": "\ud800"}}, "params['p']", "a str"),
    ({"params": {"model": "x"}, "model": "nova-3"}, "params['model']", "LiveOptions.model"),
    ({"utterance_end_ms": 1000}, "utterance_end_ms", "interim_results=True"),
    ({"utterance_end_ms": 1000, "interim_results": False}, "utterance_end_ms", "interim_results"),
    ({"vad_turnoff": 10, "endpointing": 10}, "vad_turnoff", "endpointing"),
    ({"vad_turnoff": 0, "endpointing": 0}, "vad_turnoff", "endpointing"),
    ({"encoding": "amr-nb", "sample_rate": 16000}, "sample_rate", "8000"),
    ({"encoding": "amr-wb", "sample_rate": 8000}, "sample_rate", "16000"),
]


@pytest.mark.parametrize(("kwargs", "field", "allowed"), INVALID, ids=lambda v: repr(v)[:40])
def test_invalid_values_raise_naming_the_field(
    kwargs: dict[str, Any], field: str, allowed: str
) -> None:
    with pytest.raises(ValueError, match=r"^LiveOptions\.") as info:
        LiveOptions(**kwargs)
    message = str(info.value)
    assert f"LiveOptions.{field}" in message
    assert allowed in message


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(ValueError, match="tag") as info:
        LiveOptions(tag=["y" * 5000])
    assert len(str(info.value)) < 200
    assert "..." in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:s3cr3tpw@example.com/x",
        "example.com/s3cr3tpw",
        "https://",
        "http://[::1/s3cr3tpw",
        "https://example.com/s3cr3tpw\ud800",
        "",
    ],
)
def test_bad_callback_is_not_echoed(url: str) -> None:
    with pytest.raises(ValueError, match=r"LiveOptions\.callback .*http, https, ws or wss") as e:
        LiveOptions(callback=url)
    assert "s3cr3tpw" not in str(e.value)


def test_callback_must_be_a_str() -> None:
    with pytest.raises(ValueError, match=r"LiveOptions\.callback must be a str URL, got bytes"):
        LiveOptions(callback=b"https://example.com")  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://h/x", "HTTPS://h", "ws://h:1/x", "wss://u:p@h/?a=b"])
def test_good_callbacks(url: str) -> None:
    assert LiveOptions(callback=url).callback == url


@pytest.mark.parametrize("keyword", ["word", "word:2", "word:-1.5", "word:.5", "word:3.", "a:b:2"])
def test_good_keywords(keyword: str) -> None:
    assert LiveOptions(keywords=[keyword]).keywords == (keyword,)


def test_good_replacements_and_extras() -> None:
    assert LiveOptions(replace=["um:"]).replace == ("um:",)
    assert LiveOptions(extra={"k": ""}).to_params() == [("extra", "k:")]
    assert LiveOptions(extra={"k": "v" * 2046}).extra == {"k": "v" * 2046}
    assert LiveOptions(tag=["x" * 128]).tag == ("x" * 128,)


def test_valid_combinations() -> None:
    assert LiveOptions(utterance_end_ms=1000, interim_results=True).utterance_end_ms == 1000
    assert LiveOptions(vad_turnoff=10, endpointing=False).vad_turnoff == 10
    assert LiveOptions(vad_turnoff=10).to_query() == "vad_turnoff=10"
    assert LiveOptions(encoding="amr-nb", sample_rate=8000).sample_rate == 8000
    assert LiveOptions(encoding="amr-wb", sample_rate=16000).sample_rate == 16000
    assert LiveOptions(encoding="amr-wb").sample_rate is None
    assert LiveOptions(sample_rate=44100).encoding is None


def test_params_may_carry_an_unset_typed_field_unchecked() -> None:
    # The escape hatch for values dgproto does not know yet, e.g. a brand-new encoding.
    options = LiveOptions(params={"encoding": "lyra"})
    assert options.encoding is None
    assert options.to_query() == "encoding=lyra"


def test_params_collision_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"params\['keyterm'\] collides .*LiveOptions\.keyterm"):
        LiveOptions(keyterm=["a"], params={"keyterm": "b"})


# --- from_query ----------------------------------------------------------------------------------


def test_from_query_basic() -> None:
    options = LiveOptions.from_query(
        "model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true"
        "&endpointing=false&keyterm=term%20one&keyterm=two+words&extra=a%3Ab&extra=c:d:e"
    )
    assert options == LiveOptions(
        model="nova-3",
        encoding="linear16",
        sample_rate=16000,
        interim_results=True,
        endpointing=False,
        keyterm=["term one", "two words"],
        extra={"a": "b", "c": "d:e"},
    )


def test_from_query_empty_and_question_mark() -> None:
    assert LiveOptions.from_query("") == LiveOptions()
    assert LiveOptions.from_query("?") == LiveOptions()
    assert LiveOptions.from_query("?model=base") == LiveOptions(model="base")
    assert LiveOptions.from_query("model=base&&") == LiveOptions(model="base")


def test_from_query_scalar_last_wins_list_accumulates() -> None:
    options = LiveOptions.from_query(
        "model=a&tag=1&model=b&tag=2&endpointing=false&endpointing=25&extra=k:1&extra=k:2"
    )
    assert options.model == "b"
    assert options.tag == ("1", "2")
    assert options.endpointing == 25
    assert options.extra == {"k": "2"}


def test_from_query_last_wins_even_over_an_invalid_earlier_value() -> None:
    assert LiveOptions.from_query("sample_rate=abc&sample_rate=8000").sample_rate == 8000


def test_from_query_unknown_keys_go_to_params() -> None:
    options = LiveOptions.from_query("zz=1&model=base&new_thing=a&new_thing=b&flag&Model=X")
    assert options.model == "base"
    assert options.params == {
        "zz": ("1",),
        "new_thing": ("a", "b"),
        "flag": ("",),
        "Model": ("X",),
    }
    assert list(options.params) == ["zz", "new_thing", "flag", "Model"]


def test_from_query_redact_and_ints() -> None:
    options = LiveOptions.from_query("redact=true&redact=pci&channels=002&vad_turnoff=0")
    assert options.redact == ("true", "pci")
    assert options.channels == 2
    assert options.vad_turnoff == 0


FROM_QUERY_ERRORS = [
    ("interim_results=True", "interim_results", "true or false"),
    ("interim_results=1", "interim_results", "true or false"),
    ("interim_results=", "interim_results", "true or false"),
    ("sample_rate=16000.5", "sample_rate", "positive int"),
    ("sample_rate=-1", "sample_rate", "positive int"),
    ("sample_rate=%2B5", "sample_rate", "positive int"),
    ("sample_rate=0", "sample_rate", "positive int"),
    ("sample_rate=", "sample_rate", "positive int"),
    ("sample_rate=%D9%A1%D9%A2", "sample_rate", "positive int"),  # Arabic-Indic digits
    ("sample_rate=" + "9" * 5000, "sample_rate", "positive int"),  # more than int() takes
    ("endpointing=true", "endpointing", "or False"),
    ("endpointing=False", "endpointing", "or False"),
    ("encoding=wav", "encoding", "linear16"),
    ("redact=pci&redact=everything", "redact[1]", "aggressive_numbers"),
    ("extra=novalue", "extra", "KEY:VALUE"),
    ("extra=:v", "extra key", "non-empty"),
    ("model=", "model", "non-empty str"),
    ("keyterm=", "keyterm[0]", "non-empty str"),
    ("utterance_end_ms=1000", "utterance_end_ms", "interim_results=True"),
    ("keywords=a:b", "keywords[0]", "WORD:INTENSIFIER"),
    ("callback=ftp%3A%2F%2Fh", "callback", "http, https"),
    ("=orphan", "params key", "non-empty"),
]


@pytest.mark.parametrize(("query", "field", "allowed"), FROM_QUERY_ERRORS)
def test_from_query_errors_name_the_field(query: str, field: str, allowed: str) -> None:
    with pytest.raises(ValueError, match=r"^LiveOptions\.") as info:
        LiveOptions.from_query(query)
    assert f"LiveOptions.{field}" in str(info.value)
    assert allowed in str(info.value)


def test_from_query_rejects_bad_utf8_and_non_str() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        LiveOptions.from_query("model=%FF")
    with pytest.raises(TypeError, match="bytes"):
        LiveOptions.from_query(b"model=base")  # type: ignore[arg-type]


def test_from_query_of_every_field() -> None:
    kwargs = {name: value for name, value, _ in EVERY_FIELD if name != "vad_turnoff"}
    options = LiveOptions(**kwargs, params={"x-new": ["1", "2"]})
    assert LiveOptions.from_query(options.to_query()) == options


# --- round trip (hypothesis) ---------------------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_no_colon = st.text(min_size=1, max_size=8).filter(lambda s: ":" not in s)
_texts = st.lists(_text, min_size=1, max_size=3)
_bools = st.booleans()
_positive = st.integers(min_value=1, max_value=10**12)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["nova-3", "nova-2-phonecall", "custom-id"]) | _text,
    "language": _text,
    "encoding": st.sampled_from(ENCODINGS),
    "sample_rate": _positive,
    "channels": _positive,
    "multichannel": _bools,
    "interim_results": _bools,
    "endpointing": st.just(False) | st.integers(min_value=0, max_value=10**6),
    "utterance_end_ms": _positive,
    "vad_events": _bools,
    "punctuate": _bools,
    "smart_format": _bools,
    "no_delay": _bools,
    "numerals": _bools,
    "profanity_filter": _bools,
    "filler_words": _bools,
    "dictation": _bools,
    "diarize": _bools,
    "diarize_model": st.sampled_from(["latest", "v1"]),
    "diarize_version": _text,
    "detect_entities": _bools,
    "redact": st.lists(st.sampled_from([*REDACT, True, False]), min_size=1, max_size=3),
    "keywords": st.lists(
        st.tuples(
            _no_colon,
            st.none() | st.from_regex(r"-?(?:[0-9]{1,3}(?:\.[0-9]{0,2})?)", fullmatch=True),
        ).map(lambda t: t[0] if t[1] is None else f"{t[0]}:{t[1]}"),
        min_size=1,
        max_size=3,
    ),
    "keyterm": _texts,
    "search": _texts,
    "replace": st.lists(
        st.tuples(_no_colon, st.text(max_size=8)).map(":".join), min_size=1, max_size=3
    ),
    "tag": st.lists(st.text(min_size=1, max_size=128), min_size=1, max_size=3),
    "extra": st.dictionaries(_no_colon, st.text(max_size=12), max_size=3),
    "callback": st.sampled_from(
        ["https://example.com/cb", "wss://u:p@h.example:8443/x?y=1&z=%20", "http://[::1]:80/"]
    ),
    "callback_method": st.sampled_from(["POST", "PUT", "GET", "DELETE"]),
    "version": _text,
    "mip_opt_out": _bools,
    "language_hint": _texts,
    "alternatives": _positive,
    "tier": _text,
    "log_data": _bools,
    "vad_turnoff": st.integers(min_value=0, max_value=10**6),
    "debug": _bools,
    "params": st.dictionaries(
        _text.filter(lambda k: k not in FIELD_NAMES),
        st.text(max_size=8) | st.lists(st.text(max_size=8), min_size=1, max_size=3),
        max_size=3,
    ),
}


def _valid(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Repair the cross-field rules so every drawn combination is valid."""
    if "utterance_end_ms" in kwargs:
        kwargs["interim_results"] = True
    if "vad_turnoff" in kwargs and type(kwargs.get("endpointing")) is int:  # 0 == False!
        del kwargs["vad_turnoff"]
    fixed = {"amr-nb": 8000, "amr-wb": 16000}.get(kwargs.get("encoding", ""))
    if fixed is not None and "sample_rate" in kwargs:
        kwargs["sample_rate"] = fixed
    return kwargs


valid_options = st.fixed_dictionaries({}, optional=STRATEGIES).map(
    lambda kwargs: LiveOptions(**_valid(kwargs))
)


def test_every_field_has_a_strategy() -> None:
    assert set(STRATEGIES) == {*FIELD_NAMES, "params"}


@settings(max_examples=200, deadline=None)
@given(valid_options)
def test_round_trip(options: LiveOptions) -> None:
    query = options.to_query()
    parsed = LiveOptions.from_query(query)
    assert parsed == options
    assert hash(parsed) == hash(options)
    assert parsed.to_query() == query
    assert parsed.to_params() == options.to_params()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_from_query_raises_only_value_error(query: str) -> None:
    try:
        options = LiveOptions.from_query(query)
    except ValueError:
        return
    assert LiveOptions.from_query(options.to_query()) == options


# --- Auth ----------------------------------------------------------------------------------------

KEY = "0123456789abcdef0123456789abcdef01234567"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZw-_"


def test_token() -> None:
    auth = Auth.token(KEY)
    assert auth.headers() == [(b"authorization", f"Token {KEY}".encode())]
    assert auth.subprotocols() == []
    assert auth.scheme == "token"


def test_bearer() -> None:
    auth = Auth.bearer(JWT)
    assert auth.headers() == [(b"authorization", f"Bearer {JWT}".encode())]
    assert auth.subprotocols() == []
    assert auth.scheme == "bearer"


def test_subprotocol_token_and_bearer() -> None:
    token = Auth.subprotocol(KEY)
    assert token.headers() == []
    assert token.subprotocols() == ["token", KEY]
    assert token.scheme == "subprotocol-token"
    bearer = Auth.subprotocol(JWT, scheme="bearer")
    assert bearer.headers() == []
    assert bearer.subprotocols() == ["bearer", JWT]
    assert bearer.scheme == "subprotocol-bearer"


def test_none() -> None:
    auth = Auth.none()
    assert auth.headers() == []
    assert auth.subprotocols() == []
    assert auth.scheme == "none"
    assert repr(auth) == str(auth) == "Auth.none()"


def test_header_names_are_lowercase_bytes() -> None:
    for name, value in Auth.token(KEY).headers():
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        assert name == name.lower()


ALL_AUTHS: list[tuple[str, Callable[[Any], Auth], str]] = [
    ("token", lambda s: Auth.token(s), "Auth.token(<redacted>)"),
    ("bearer", lambda s: Auth.bearer(s), "Auth.bearer(<redacted>)"),
    ("subprotocol", lambda s: Auth.subprotocol(s), "Auth.subprotocol(<redacted>, scheme='token')"),
    (
        "subprotocol-bearer",
        lambda s: Auth.subprotocol(s, scheme="bearer"),
        "Auth.subprotocol(<redacted>, scheme='bearer')",
    ),
]


@pytest.mark.parametrize(("label", "make", "shown"), ALL_AUTHS, ids=[a[0] for a in ALL_AUTHS])
def test_repr_and_str_are_redacted(label: str, make: Any, shown: str) -> None:
    auth = make(KEY)
    assert repr(auth) == shown
    assert str(auth) == shown
    for text in (repr(auth), str(auth), f"{auth}", f"{auth!r}", repr([auth]), repr({"a": auth})):
        assert KEY not in text


@pytest.mark.parametrize(("label", "make", "shown"), ALL_AUTHS, ids=[a[0] for a in ALL_AUTHS])
@pytest.mark.parametrize(
    "secret",
    [
        "",
        "sk_live_1234567890\r\nX-Injected: yes",
        "sk_live_1234567890\n",
        "sk_live_12345\x00678",
        "sk_live_1234 567890",
        "sk_live_ключ_1234567",
        "sk_live_1234567890\x7f",
    ],
)
def test_bad_secret_raises_without_echoing_it(
    label: str, make: Any, shown: str, secret: str
) -> None:
    with pytest.raises(ValueError, match=r"^Auth\.\w+: the secret") as info:
        make(secret)
    _assert_not_leaked(info.value, secret)


@pytest.mark.parametrize(("label", "make", "shown"), ALL_AUTHS, ids=[a[0] for a in ALL_AUTHS])
@pytest.mark.parametrize("secret", [None, b"sk_live_1234567890", 1234567890])
def test_non_str_secret_raises_without_echoing_it(
    label: str, make: Any, shown: str, secret: object
) -> None:
    with pytest.raises(ValueError, match="must be a str") as info:
        make(secret)
    _assert_not_leaked(info.value, "1234567890")


def _assert_not_leaked(error: BaseException, secret: str) -> None:
    for text in (str(error), repr(error), *map(str, error.args)):
        if secret:
            assert secret not in text
        if len(secret.strip()) >= 8:
            assert secret.strip() not in text
        assert "X-Injected" not in text
    assert error.__cause__ is None


@pytest.mark.parametrize("secret", ["abc/def", "abc=", "a,b", "a;b", 'a"b'])
def test_subprotocol_secret_must_be_an_http_token(secret: str) -> None:
    with pytest.raises(ValueError, match="HTTP token") as info:
        Auth.subprotocol(secret)
    assert secret not in str(info.value)
    # The same characters are fine in a header value.
    assert Auth.token(secret).headers()[0][1] == f"Token {secret}".encode()


def test_subprotocol_scheme_must_be_token_or_bearer_and_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="token, bearer") as info:
        Auth.subprotocol("key", scheme=KEY)  # type: ignore[arg-type]
    assert KEY not in str(info.value)


def test_direct_construction_is_checked_without_echo() -> None:
    with pytest.raises(ValueError, match="Auth scheme must be one of token, bearer") as info:
        Auth(scheme=KEY, secret="x")
    assert KEY not in str(info.value)
    with pytest.raises(ValueError, match=r"Auth\.none: takes no secret") as info:
        Auth(scheme="none", secret=KEY)
    assert KEY not in str(info.value)
    assert Auth(scheme="token", secret=KEY) == Auth.token(KEY)


def test_equality_and_hash() -> None:
    assert Auth.token(KEY) == Auth.token(KEY)
    assert hash(Auth.token(KEY)) == hash(Auth.token(KEY))
    assert Auth.token(KEY) != Auth.token(KEY + "0")
    assert Auth.token(KEY) != Auth.bearer(KEY)
    assert Auth.token(KEY) != Auth.subprotocol(KEY)
    assert Auth.none() == Auth.none()


def test_secret_field_is_private_and_frozen() -> None:
    auth = Auth.token(KEY)
    names = [field.name for field in attrs.fields(Auth)]
    assert names == ["scheme", "_secret"]
    assert not hasattr(auth, "secret")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        auth.scheme = "none"  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
# The marker keeps a generated secret from equalling fixed text such as "Auth.subprotocol".
@given(st.text(min_size=8, max_size=64).map(lambda s: "SeCrEt" + s))
def test_no_secret_ever_leaks(secret: str) -> None:
    for _, make, _ in ALL_AUTHS:
        try:
            auth = make(secret)
        except ValueError as error:
            _assert_not_leaked(error, secret)
        else:
            assert secret not in repr(auth)
            assert secret not in str(auth)
