"""Prototype (issue 13): what building the 9 ``Word`` objects of a Results costs, and what
other representations would cost. Not part of ``make bench``. CPU time, variants
interleaved (``_common.compare``).

* ``json.loads`` of the whole message (the scale);
* the old construction: a slotted frozen attrs class, ``object.__new__`` + the 8 slot
  setters (``_WordFields``, which still holds Word's field definitions);
* the same frozen attrs class without slots, filled through its ``__dict__``;
* a named tuple;
* today's ``Word``: a tuple subclass with attrs' API on top, built with one
  ``tuple.__new__`` (what ``_messages`` does; landed in issue 13).

Run: ``python -m benchmarks.proto_words``.
"""

from __future__ import annotations

import json
import time
from collections import namedtuple
from collections.abc import Callable

import attrs

from dgproto._events import Word, _WordFields
from dgproto._messages import _setters

from ._common import compare, dump_json
from .bench_decode import load_text

#: Word's own fields, in a frozen attrs class without slots.
DictWord = attrs.make_class(
    "DictWord",
    {f.name: attrs.field(default=f.default, eq=f.eq, repr=f.repr) for f in attrs.fields(Word)},
    frozen=True,
    slots=False,
    kw_only=True,
)
#: Word's own fields, as a named tuple.
TupleWord = namedtuple("TupleWord", [f.name for f in attrs.fields(Word)])


def variants(text: str) -> dict[str, Callable[[], object]]:
    words_in = json.loads(text)["channel"]["alternatives"][0]["words"]
    new = object.__new__
    set_word, set_start, set_end, set_conf, set_punct, set_speaker, set_lang, set_raw = _setters(
        _WordFields,
        ("word", "start", "end", "confidence", "punctuated_word", "speaker", "language", "raw"),
    )

    def slots() -> object:
        out = []
        for w in words_in:
            word = new(_WordFields)
            set_word(word, w["word"])
            set_start(word, w["start"])
            set_end(word, w["end"])
            set_conf(word, w["confidence"])
            set_punct(word, w.get("punctuated_word"))
            set_speaker(word, None)
            set_lang(word, None)
            set_raw(word, w)
            out.append(word)
        return out

    def dicts() -> object:
        out = []
        for w in words_in:
            word = new(DictWord)
            word.__dict__.update(
                word=w["word"],
                start=w["start"],
                end=w["end"],
                confidence=w["confidence"],
                punctuated_word=w.get("punctuated_word"),
                speaker=None,
                language=None,
                raw=w,
            )
            out.append(word)
        return out

    tuple_new = tuple.__new__

    def tuples() -> object:
        out = []
        for w in words_in:
            fields = (w["word"], w["start"], w["end"], w["confidence"])
            out.append(tuple_new(TupleWord, (*fields, w.get("punctuated_word"), None, None, w)))
        return out

    def words() -> object:
        out = []
        for w in words_in:
            fields = (w["word"], w["start"], w["end"], w["confidence"])
            out.append(tuple_new(Word, (*fields, w.get("punctuated_word"), None, None, w)))
        return out

    return {
        "json.loads (whole message)": lambda: json.loads(text),
        "9 Words: slot setters (before)": slots,
        "9 Words: dict-backed attrs": dicts,
        "9 Words: named tuple": tuples,
        "9 Words: tuple-backed Word (today)": words,
    }


def main() -> None:
    timings = compare(variants(load_text()), seconds=8.0, timer=time.thread_time)
    today = "9 Words: slot setters (before)"
    print(
        dump_json(
            {
                name: {**timings.row(name), "x_before": round(timings.ratio(name, today), 2)}
                for name in timings.names()
            }
        )
    )


if __name__ == "__main__":
    main()
