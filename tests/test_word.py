"""``Word`` is tuple-backed for speed but behaves as the frozen attrs class it was."""

from __future__ import annotations

import copy
import pickle

import attrs
import pytest

from dgproto import Word


def make(**changes: object) -> Word:
    fields: dict[str, object] = {"word": "hi", "start": 0.5, "end": 0.75, "confidence": 0.9}
    fields.update(changes)
    return Word(**fields)  # type: ignore[arg-type]


def test_attributes_and_defaults() -> None:
    w = make(raw={"word": "hi"})
    assert (w.word, w.start, w.end, w.confidence) == ("hi", 0.5, 0.75, 0.9)
    assert (w.punctuated_word, w.speaker, w.language) == (None, None, None)
    assert w.raw == {"word": "hi"}
    assert make().raw == {}


def test_equality_and_hash_ignore_raw_as_the_attrs_class_did() -> None:
    assert make(raw={"a": 1}) == make(raw={"b": 2})
    assert hash(make(raw={"a": 1})) == hash(make())
    assert make() != make(speaker=1)
    assert make().__ne__(make()) is False
    plain = ("hi", 0.5, 0.75, 0.9, None, None, None, {})
    assert make() != plain
    assert plain != make()
    assert not make() == plain  # noqa: SIM201
    assert not plain == make()  # noqa: SIM201
    assert make().__eq__(object()) is NotImplemented
    assert make().__ne__(object()) is NotImplemented
    assert len({make(), make(raw={"x": 1}), make(language="en")}) == 2


def test_repr_is_the_attrs_repr_without_raw() -> None:
    assert repr(make(punctuated_word="Hi.", raw={"secret": 1})) == (
        "Word(word='hi', start=0.5, end=0.75, confidence=0.9, punctuated_word='Hi.', "
        "speaker=None, language=None)"
    )


def test_frozen_and_unordered() -> None:
    w = make()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        w.word = "x"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del w.word  # type: ignore[misc]
    with pytest.raises(TypeError):
        assert w < make()  # type: ignore[operator]
    with pytest.raises(TypeError):
        assert w >= make()  # type: ignore[operator]


def test_attrs_helpers_pickle_and_copy() -> None:
    w = make(speaker=2, raw={"speaker": 2})
    assert attrs.has(Word)
    assert [f.name for f in attrs.fields(Word)][-1] == "raw"
    moved = attrs.evolve(w, start=1.5)  # type: ignore[misc]
    assert isinstance(moved, Word)
    assert (moved.start, moved.speaker, moved.raw) == (1.5, 2, {"speaker": 2})
    assert attrs.asdict(w)["speaker"] == 2
    for clone in (pickle.loads(pickle.dumps(w)), copy.copy(w), copy.deepcopy(w)):
        assert type(clone) is Word
        assert clone == w
        assert clone.raw == w.raw


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        Word("hi", 0.5, 0.75, 0.9)  # type: ignore[misc]


def test_attribute_getters_without_cpythons_tuplegetter(monkeypatch: pytest.MonkeyPatch) -> None:
    from dgproto import _events

    assert _events._tuplegetter is not None  # CPython: namedtuple's C getter
    monkeypatch.setattr(_events, "_tuplegetter", None)
    getter = _events._tuple_field(2, "The word's ``end``.")
    assert isinstance(getter, property)
    assert getter.__get__(make(end=4.5)) == 4.5
